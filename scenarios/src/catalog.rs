//! The bug catalog: every deliberate bug of the Raft and KV layers, by id, with the rule it
//! breaks. Scenario files name bugs by id (`"bugs": ["vote-not-persisted"]`) and `sim power`
//! measures how often the checks catch each one.

use std::fmt;

/// One catalog bug: a switch in the `raft` crate (usable under Raft and under the KV
/// service) or in the `kv` crate (KV scenarios only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CatalogBug {
    /// A Raft protocol bug.
    Raft(raft::Bug),
    /// A KV service or clerk bug.
    Kv(kv::Bug),
}

impl CatalogBug {
    /// Every bug, Raft first, in catalog order.
    pub fn all() -> Vec<CatalogBug> {
        let raft = raft::Bug::ALL.iter().map(|b| CatalogBug::Raft(*b));
        raft.chain(kv::Bug::ALL.iter().map(|b| CatalogBug::Kv(*b)))
            .collect()
    }

    /// The stable id, e.g. "vote-not-persisted".
    pub fn id(self) -> &'static str {
        match self {
            CatalogBug::Raft(b) => b.id(),
            CatalogBug::Kv(b) => b.id(),
        }
    }

    /// The layer and area, e.g. "raft/election", "kv/service", "kv/clerk".
    pub fn layer(self) -> String {
        match self {
            CatalogBug::Raft(b) => format!("raft/{}", b.area().name()),
            CatalogBug::Kv(b) => format!("kv/{}", b.layer().name()),
        }
    }

    /// One line naming the rule it breaks.
    pub fn rule(self) -> &'static str {
        match self {
            CatalogBug::Raft(b) => b.rule(),
            CatalogBug::Kv(b) => b.rule(),
        }
    }

    /// Whether only KV scenarios can run the bug: it lives in the KV service or clerk, or it
    /// breaks a rule of the reads Raft serves the KV service (ReadIndex), which the Raft
    /// tester never asks for. Other Raft bugs run under both Raft and KV scenarios.
    pub fn kv_only(self) -> bool {
        match self {
            CatalogBug::Kv(_) => true,
            CatalogBug::Raft(b) => b.area() == raft::Area::Read,
        }
    }
}

impl fmt::Display for CatalogBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for CatalogBug {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(b) = s.parse::<raft::Bug>() {
            return Ok(CatalogBug::Raft(b));
        }
        if let Ok(b) = s.parse::<kv::Bug>() {
            return Ok(CatalogBug::Kv(b));
        }
        Err(format!(
            "unknown bug {s:?} (`sim power --list` prints the catalog)"
        ))
    }
}

/// The switches a list of bug ids turns on, split by crate. The error names the bad id.
pub fn switches(ids: &[String]) -> Result<(raft::Bugs, kv::Bugs), String> {
    let mut raft_bugs = raft::Bugs::NONE;
    let mut kv_bugs = kv::Bugs::NONE;
    for id in ids {
        match id.parse::<CatalogBug>()? {
            CatalogBug::Raft(b) => raft_bugs = raft_bugs.with(b),
            CatalogBug::Kv(b) => kv_bugs = kv_bugs.with(b),
        }
    }
    Ok((raft_bugs, kv_bugs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_layers_and_parse_back() {
        let all = CatalogBug::all();
        let mut ids: Vec<&str> = all.iter().map(|b| b.id()).collect();
        for b in &all {
            assert_eq!(b.id().parse::<CatalogBug>().unwrap(), *b);
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "a Raft and a KV bug share an id");
    }

    #[test]
    fn switches_split_by_crate_and_reject_unknown_ids() {
        let ids = vec!["commit-old-terms".to_string(), "stale-reads".to_string()];
        let (r, k) = switches(&ids).unwrap();
        assert!(r.has(raft::Bug::CommitOldTerms) && r.iter().count() == 1);
        assert!(k.has(kv::Bug::StaleReads) && k.iter().count() == 1);
        let err = switches(&["nope".to_string()]).unwrap_err();
        assert!(err.contains("\"nope\""), "{err}");
    }
}
