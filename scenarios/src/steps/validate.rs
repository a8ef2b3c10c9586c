//! Static checks of a scenario's steps: everything that can be known before the run.

use super::spec::{Calc, Expr, NetSpec, Sel, Span, Step};
use crate::scenario::SystemKind;

type Problem = (String, String);

/// Checks `steps` for `system` with `servers` servers. Errors are (place, problem), the place
/// being a path like `steps[2].loop.steps[0]`.
pub fn validate_steps(steps: &[Step], system: SystemKind, servers: usize) -> Result<(), Problem> {
    let v = Validator { system, servers };
    v.block(steps, "steps")
}

struct Validator {
    system: SystemKind,
    servers: usize,
}

fn problem(place: &str, what: impl Into<String>) -> Result<(), Problem> {
    Err((place.to_string(), what.into()))
}

impl Validator {
    fn block(&self, steps: &[Step], place: &str) -> Result<(), Problem> {
        for (i, s) in steps.iter().enumerate() {
            self.step(s, &format!("{place}[{i}]"))?;
        }
        Ok(())
    }

    fn expr(&self, e: &Expr, place: &str) -> Result<(), Problem> {
        match e {
            Expr::Int(_) => Ok(()),
            Expr::Calc(c) => match &**c {
                Calc::Add([a, b]) | Calc::Sub([a, b]) | Calc::Mul([a, b]) | Calc::Mod([a, b]) => {
                    self.expr(a, place)?;
                    self.expr(b, place)
                }
                Calc::RandBelow(n) => self.expr(n, place),
                Calc::Len(_) => Ok(()),
            },
            Expr::Name(s) if s == "random" || (s.starts_with('$') && s.len() > 1) => Ok(()),
            Expr::Name(s) => problem(
                place,
                format!("{s:?} is neither a number, \"random\" nor a \"$variable\""),
            ),
        }
    }

    fn sel(&self, s: &Sel, place: &str) -> Result<(), Problem> {
        match s {
            Sel::Id(i) if *i >= self.servers => {
                problem(place, format!("server {i} does not exist (the cluster has servers 0..{})", self.servers))
            }
            Sel::Id(_) => Ok(()),
            Sel::Name(n) if n == "all" || (n.starts_with('$') && n.len() > 1) => Ok(()),
            Sel::Name(n) => problem(place, format!("{n:?} is not a server selector (a number, \"all\", \"$var\", {{\"random\": ...}} or {{\"next\": ...}})")),
            Sel::Random(r) => {
                for e in &r.except {
                    self.sel(e, place)?;
                }
                if let Some(c) = &r.count {
                    self.expr(c, place)?;
                }
                Ok(())
            }
            Sel::Next(n) => self.sel(&n.next, place),
            Sel::All(_) => Ok(()),
            Sel::Client(c) => self.expr(&c.client, place),
        }
    }

    fn positive(&self, ms: f64, place: &str) -> Result<(), Problem> {
        if ms.is_finite() && ms > 0.0 {
            Ok(())
        } else {
            problem(place, format!("within_ms must be positive, got {ms}"))
        }
    }

    fn span(&self, s: &Span, place: &str) -> Result<(), Problem> {
        let ok = match *s {
            Span::Fixed(ms) => ms.is_finite() && ms >= 0.0,
            Span::Range([lo, hi]) => lo.is_finite() && hi.is_finite() && lo >= 0.0 && lo <= hi,
        };
        if ok {
            Ok(())
        } else {
            problem(
                place,
                "a duration must be a non-negative number of ms or a range [lo, hi] with lo <= hi",
            )
        }
    }

    fn kv_only(&self, place: &str, name: &str) -> Result<(), Problem> {
        if self.system == SystemKind::Kv {
            Ok(())
        } else {
            problem(
                place,
                format!(
                    "`{name}` is a KV step; this scenario's system is {:?}",
                    self.system
                ),
            )
        }
    }

    fn raft_only(&self, place: &str, name: &str) -> Result<(), Problem> {
        if self.system == SystemKind::Raft {
            Ok(())
        } else {
            problem(
                place,
                format!(
                    "`{name}` is a Raft step; this scenario's system is {:?}",
                    self.system
                ),
            )
        }
    }

    fn step(&self, s: &Step, place: &str) -> Result<(), Problem> {
        match s {
            Step::SleepMs(span) => self.span(span, &format!("{place}.sleep_ms")),
            Step::Loop(l) => {
                if let Some(t) = &l.times {
                    self.expr(t, &format!("{place}.loop.times"))?;
                }
                self.block(&l.steps, &format!("{place}.loop.steps"))
            }
            Step::If(c) => {
                let conds = [&c.below, &c.at_least, &c.equals].iter().filter(|e| e.is_some()).count();
                if conds > 1 {
                    return problem(&format!("{place}.if"), "give at most one of below, at_least, equals");
                }
                for e in [&c.below, &c.at_least, &c.equals].into_iter().flatten() {
                    self.expr(e, &format!("{place}.if"))?;
                }
                self.block(&c.then, &format!("{place}.if.then"))?;
                self.block(&c.otherwise, &format!("{place}.if.else"))
            }
            Step::Choose(choices) => {
                if choices.is_empty() {
                    return problem(&format!("{place}.choose"), "needs at least one choice");
                }
                for (i, c) in choices.iter().enumerate() {
                    let p = format!("{place}.choose[{i}]");
                    if !(c.weight.is_finite() && c.weight > 0.0) {
                        return problem(&p, format!("weight must be positive, got {}", c.weight));
                    }
                    self.block(&c.steps, &format!("{p}.steps"))?;
                }
                Ok(())
            }
            Step::Spawn(sp) => {
                self.expr(&sp.count, &format!("{place}.spawn.count"))?;
                self.block(&sp.steps, &format!("{place}.spawn.steps"))
            }
            Step::Attempts(a) => {
                if a.times == 0 {
                    return problem(&format!("{place}.attempts.times"), "must be at least 1");
                }
                self.block(&a.steps, &format!("{place}.attempts.steps"))
            }
            Step::Set(vars) => {
                for (k, e) in vars {
                    if k.is_empty() {
                        return problem(&format!("{place}.set"), "empty variable name");
                    }
                    self.expr(e, &format!("{place}.set.{k}"))?;
                }
                Ok(())
            }
            Step::Pick(p) => self.sel(&p.from, &format!("{place}.pick.from")),
            Step::Count(c) => self.sel(&c.of, &format!("{place}.count.of")),
            Step::Fail(_) | Step::Abort(_) | Step::Join {} | Step::Now(_) => Ok(()),
            Step::KvLeader(_) => self.kv_only(place, "kv_leader"),
            Step::MaxTerm(_) => self.raft_only(place, "max_term"),
            Step::PartitionRandom { groups } if *groups == 0 => problem(&format!("{place}.partition_random.groups"), "must be at least 1"),
            Step::StopThreads {} | Step::Note(_) | Step::Heal {} | Step::PartitionRandom { .. } | Step::LongReordering(_) | Step::Mark(_) => Ok(()),
            Step::Crash(sel) | Step::Restart(sel) | Step::Disconnect(sel) | Step::Connect(sel) => self.sel(sel, place),
            Step::Clock(c) => {
                let place = format!("{place}.clock");
                self.sel(&c.node, &format!("{place}.node"))?;
                if c.drift_ppm.is_none() && c.jump_ms.is_none() {
                    return problem(&place, "give drift_ppm, jump_ms or both");
                }
                if let Some(ppm) = c.drift_ppm {
                    sim::clock::check_drift(ppm).or_else(|e| problem(&format!("{place}.drift_ppm"), e))?;
                }
                match c.jump_ms {
                    Some(j) if !(j.is_finite() && j.abs() <= 1e9) => problem(&format!("{place}.jump_ms"), format!("must be a number of ms within ±1e9, got {j}")),
                    _ => Ok(()),
                }
            }
            Step::Cut(c) => {
                self.sel(&c.from, &format!("{place}.cut.from"))?;
                self.sel(&c.to, &format!("{place}.cut.to"))
            }
            Step::Partition(groups) => {
                for (g, group) in groups.iter().enumerate() {
                    for (i, s) in group.iter().enumerate() {
                        self.sel(s, &format!("{place}.partition[{g}][{i}]"))?;
                    }
                }
                Ok(())
            }
            Step::Network(NetSpec::Preset(p)) if p == "reliable" || p == "unreliable" => Ok(()),
            Step::Network(NetSpec::Preset(p)) => problem(&format!("{place}.network"), format!("unknown preset {p:?} (use \"reliable\", \"unreliable\" or a full network object)")),
            Step::Network(NetSpec::Config(c)) => c.validate().or_else(|e| problem(&format!("{place}.network"), e)),
            Step::CheckRpcs(c) | Step::CheckBytes(c) => {
                for e in c.min.iter().chain(c.max.iter()) {
                    self.expr(e, place)?;
                }
                Ok(())
            }
            Step::CheckOneLeader(_) => self.raft_only(place, "check_one_leader"),
            Step::CheckNoLeader {} => self.raft_only(place, "check_no_leader"),
            Step::CheckTerms(_) => self.raft_only(place, "check_terms"),
            Step::One(o) => {
                self.raft_only(place, "one")?;
                self.expr(&o.cmd, &format!("{place}.one.cmd"))?;
                self.expr(&o.servers, &format!("{place}.one.servers"))
            }
            Step::Submit(sb) => {
                self.raft_only(place, "submit")?;
                self.sel(&sb.on, &format!("{place}.submit.on"))?;
                self.expr(&sb.cmd, &format!("{place}.submit.cmd"))
            }
            Step::WaitCommitted(w) => {
                self.raft_only(place, "wait_committed")?;
                let p = format!("{place}.wait_committed");
                self.expr(&w.index, &p)?;
                self.expr(&w.servers, &p)?;
                for e in w.term.iter().chain(w.cmd.iter()) {
                    self.expr(e, &p)?;
                }
                if !(w.within_ms.is_finite() && w.within_ms > 0.0) {
                    return problem(&p, format!("within_ms must be positive, got {}", w.within_ms));
                }
                Ok(())
            }
            Step::CheckCommitted(c) => {
                self.raft_only(place, "check_committed")?;
                self.expr(&c.index, place)?;
                self.expr(&c.servers, place)
            }
            Step::CheckCollected(c) => {
                self.raft_only(place, "check_collected")?;
                self.expr(&c.servers, place)
            }
            Step::CheckPersistedSize { .. } => self.raft_only(place, "check_persisted_size"),
            Step::CheckCaughtUp(w) => {
                self.raft_only(place, "check_caught_up")?;
                self.positive(w.within_ms, place)
            }
            Step::KvClientsStart(_) => self.kv_only(place, "kv_clients_start"),
            Step::KvClientsStop {} => self.kv_only(place, "kv_clients_stop"),
            Step::KvClientsWait(w) | Step::KvCheckAppends(w) | Step::KvCheckReplicas(w) => {
                self.kv_only(
                    place,
                    "kv_clients_wait / kv_check_appends / kv_check_replicas",
                )?;
                self.positive(w.within_ms, place)
            }
            Step::KvOp(op) => {
                self.kv_only(place, "kv_op")?;
                self.expr(&op.client, &format!("{place}.kv_op.client"))?;
                self.positive(op.within_ms, place)
            }
            Step::KvWait(w) => {
                self.kv_only(place, "kv_wait")?;
                self.expr(&w.client, place)?;
                self.positive(w.within_ms, place)
            }
            Step::KvExpectPending { client } => {
                self.kv_only(place, "kv_expect_pending")?;
                self.expr(client, place)
            }
            Step::KvCheckSize(_) => self.kv_only(place, "kv_check_size"),
        }
    }
}
