//! Evaluating the step language's values: expressions, server selectors and durations,
//! against a thread's variables and the world.

use super::spec::{Calc, Expr, Pool, Sel, Span};
use rand::Rng;
use sim::network::ms_to_us;
use sim::{Failure, Node, NodeId, Time, World};
use std::collections::BTreeMap;

/// Per-thread variables, global lists, and the server count, for evaluating expressions.
pub struct Env<'a> {
    pub vars: &'a mut BTreeMap<String, i64>,
    pub lists: &'a mut BTreeMap<String, Vec<u64>>,
    pub servers: usize,
}

impl Env<'_> {
    /// The value of an expression.
    pub fn eval<N: Node>(&mut self, world: &mut World<N>, e: &Expr) -> Result<i64, Failure> {
        match e {
            Expr::Int(n) => Ok(*n),
            Expr::Name(s) if s == "random" => Ok(world.rng().random_range(1..i64::MAX)),
            Expr::Name(s) => {
                let name = s.strip_prefix('$').unwrap_or(s);
                self.vars.get(name).copied().ok_or_else(|| {
                    Failure::new("scenario", vec![], format!("variable ${name} is not set"))
                })
            }
            Expr::Calc(c) => {
                let overflow = || {
                    Failure::new(
                        "scenario",
                        vec![],
                        format!("arithmetic overflow or division by zero in {c:?}"),
                    )
                };
                match &**c {
                    Calc::Add([a, b]) => self
                        .eval(world, a)?
                        .checked_add(self.eval(world, b)?)
                        .ok_or_else(overflow),
                    Calc::Sub([a, b]) => self
                        .eval(world, a)?
                        .checked_sub(self.eval(world, b)?)
                        .ok_or_else(overflow),
                    Calc::Mul([a, b]) => self
                        .eval(world, a)?
                        .checked_mul(self.eval(world, b)?)
                        .ok_or_else(overflow),
                    Calc::Mod([a, b]) => self
                        .eval(world, a)?
                        .checked_rem_euclid(self.eval(world, b)?)
                        .ok_or_else(overflow),
                    Calc::RandBelow(n) => {
                        let n = self.eval(world, n)?;
                        if n <= 0 {
                            return Err(overflow());
                        }
                        Ok(world.rng().random_range(0..n))
                    }
                    Calc::Len(list) => Ok(self.lists.get(list).map_or(0, Vec::len) as i64),
                }
            }
        }
    }

    /// The servers a selector names, in order.
    pub fn select<N: Node>(
        &mut self,
        world: &mut World<N>,
        sel: &Sel,
    ) -> Result<Vec<NodeId>, Failure> {
        let n = self.servers;
        match sel {
            Sel::Id(i) if *i < n => Ok(vec![*i]),
            Sel::Id(i) => Err(Failure::new(
                "scenario",
                vec![],
                format!("server {i} does not exist"),
            )),
            Sel::Name(s) if s == "all" => Ok((0..n).collect()),
            Sel::Name(s) => {
                let v = self.eval(world, &Expr::Name(s.clone()))?;
                usize::try_from(v)
                    .ok()
                    .filter(|i| *i < n)
                    .map(|i| vec![i])
                    .ok_or_else(|| {
                        Failure::new("scenario", vec![], format!("{s} = {v} is not a server"))
                    })
            }
            Sel::Next(next) => {
                let base = self.select(world, &next.next)?;
                let [b] = base[..] else {
                    return Err(Failure::new(
                        "scenario",
                        vec![],
                        "`next` needs exactly one base server",
                    ));
                };
                Ok(vec![(b as i64 + next.by).rem_euclid(n as i64) as usize])
            }
            Sel::All(a) => Ok((0..n).filter(|&i| in_pool(world, i, a.all)).collect()),
            Sel::Client(c) => {
                let i = self.eval(world, &c.client)?;
                let id = usize::try_from(i)
                    .ok()
                    .map(|i| n + i)
                    .filter(|&id| id < world.len());
                id.map(|id| vec![id]).ok_or_else(|| {
                    Failure::new("scenario", vec![], format!("client {i} does not exist"))
                })
            }
            Sel::Random(r) => {
                let mut except = Vec::new();
                for e in &r.except {
                    except.extend(self.select(world, e)?);
                }
                let mut pool: Vec<NodeId> = (0..n)
                    .filter(|i| !except.contains(i))
                    .filter(|&i| in_pool(world, i, r.random))
                    .collect();
                let count = match &r.count {
                    Some(c) => usize::try_from(self.eval(world, c)?).unwrap_or(0),
                    None => 1,
                };
                let mut out = Vec::new();
                while out.len() < count && !pool.is_empty() {
                    let k = world.rng().random_range(0..pool.len());
                    if r.repeat {
                        out.push(pool[k]);
                    } else {
                        out.push(pool.swap_remove(k));
                    }
                }
                if let Some(only) = r.only {
                    out.retain(|&i| in_pool(world, i, only));
                }
                Ok(out)
            }
        }
    }
}

fn in_pool<N: Node>(world: &World<N>, i: NodeId, pool: Pool) -> bool {
    match pool {
        Pool::Server => true,
        Pool::Connected => !world.isolated(i),
        Pool::Disconnected => world.isolated(i),
        Pool::Up => world.is_up(i),
        Pool::Down => !world.is_up(i),
    }
}

/// A duration drawn from a span.
pub fn draw_span<N: Node>(world: &mut World<N>, span: &Span) -> Time {
    match *span {
        Span::Fixed(ms) => ms_to_us(ms),
        Span::Range([lo, hi]) => {
            let (lo, hi) = (ms_to_us(lo), ms_to_us(hi));
            if hi > lo {
                world.rng().random_range(lo..hi)
            } else {
                lo
            }
        }
    }
}
