//! The scenario's `"clocks"` section: validation and this seed's draw (the engine's
//! `ClockProfile` does the drawing), and the checks that keep lease settings honest.

use crate::scenario::{KvSettings, ReadSetting, Scenario};
use serde_json::Value;
use sim::rng::{stream, Purpose};
use sim::{Fault, NodeSpec, Time};

/// Checks the `clocks` section; errors are (place, problem).
pub fn validate(sc: &Scenario) -> Result<(), (String, String)> {
    let Some(p) = &sc.clocks else {
        return Ok(());
    };
    p.validate(sc.nodes())
        .map_err(|(field, problem)| (format!("clocks.{field}"), problem))?;
    if p.until_ms > sc.duration_ms {
        return Err((
            "clocks.until_ms".into(),
            format!(
                "{} is after the end of the run ({} ms)",
                p.until_ms, sc.duration_ms
            ),
        ));
    }
    Ok(())
}

/// The lease settings of a KV section: a drift bound below 100% (the lease is shortened by
/// it; at 100% nothing is left).
pub fn validate_lease(k: &KvSettings) -> Result<(), (String, String)> {
    if k.max_drift_ppm >= 1_000_000 {
        return Err((
            "kv.max_drift_ppm".into(),
            format!(
                "must be below 1000000 (a bound of 100% leaves no lease), got {}",
                k.max_drift_ppm
            ),
        ));
    }
    if k.max_drift_ppm != crate::scenario::DEFAULT_MAX_DRIFT_PPM && k.read != ReadSetting::Lease {
        return Err((
            "kv.max_drift_ppm".into(),
            "is the bound of lease reads: it needs \"read\": \"lease\"".into(),
        ));
    }
    Ok(())
}

/// This seed's clocks: sets each node's clock in `nodes`, returns the drawn jumps (faults)
/// and what was drawn (for the summary and the trace header), or nothing without `clocks`.
pub fn draw(
    sc: &Scenario,
    seed: u64,
    nodes: &mut [NodeSpec],
) -> Option<(Vec<(Time, Fault)>, Value)> {
    let p = sc.clocks.as_ref()?;
    let d = p.draw(sc.servers, sc.clients, &mut stream(seed, Purpose::Clocks));
    for (spec, clock) in nodes.iter_mut().zip(d.clocks) {
        spec.clock = clock;
    }
    Some((d.faults, d.drawn))
}

#[cfg(test)]
#[path = "clocks_tests.rs"]
mod tests;
