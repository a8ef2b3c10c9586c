//! Reading the numbers back out of a violation's detail text (the checkers' messages in
//! `raft/checks.rs`, `raft/durable.rs`, `kv/tester.rs`), and the trace's payload shapes.

use serde_json::Value;

/// The decimal number right after the `nth` (0-based) occurrence of `key` in `s`.
pub fn num_after(s: &str, key: &str, nth: usize) -> Option<u64> {
    let (i, _) = s.match_indices(key).nth(nth)?;
    let rest = &s[i + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The hexadecimal number right after the `nth` occurrence of `key` (e.g. `"entry 0x"`).
pub fn hex_after(s: &str, key: &str, nth: usize) -> Option<u64> {
    let (i, _) = s.match_indices(key).nth(nth)?;
    let rest = &s[i + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    u64::from_str_radix(&digits, 16).ok()
}

/// The Rust-debug string literal right after `key` (`key "x 3 36 y"` → `x 3 36 y`).
pub fn quoted_after(s: &str, key: &str) -> Option<String> {
    let i = s.find(key)? + key.len();
    let rest = s[i..].strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// A Raft message's kind and body, inside a KV `{"Raft":..}` wrapper or not.
pub fn raft_msg(msg: &Value) -> Option<(&str, &Value)> {
    let m = msg.get("Raft").unwrap_or(msg);
    let obj = m.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    let (k, v) = obj.iter().next()?;
    Some((k.as_str(), v))
}

/// The `u64` field `key` of `v`.
pub fn u(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// A granted vote: `(request_term, granted)` of a `RequestVoteReply` body.
pub fn vote_reply(body: &Value) -> Option<(u64, bool)> {
    let term = u(body, "request_term").or_else(|| u(body, "term"))?;
    Some((term, body.get("vote_granted")?.as_bool()?))
}

/// A durable `(current_term, voted_for)` write among a step's outputs.
pub fn hard_states(out: &[Value]) -> impl Iterator<Item = (u64, Option<u64>)> + '_ {
    out.iter().filter_map(|o| {
        let h = o.get("persist")?.get("HardState")?;
        Some((u(h, "current_term")?, u(h, "voted_for")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_strings_come_back_out_of_details() {
        let d = "s4, leader of term 13, lacks entry 4 (term 5, entry 0xc7c37b24b1b877d) committed in term 11";
        assert_eq!(num_after(d, "leader of term ", 0), Some(13));
        assert_eq!(num_after(d, "(term ", 0), Some(5));
        assert_eq!(num_after(d, "term ", 2), Some(11));
        assert_eq!(hex_after(d, "entry 0x", 0), Some(0xc7c37b24b1b877d));
        assert_eq!(num_after(d, "nowhere ", 0), None);
        let k = r#"client 3's append "x 3 \"36\" y" appears 2 times"#;
        assert_eq!(quoted_after(k, "append ").as_deref(), Some(r#"x 3 "36" y"#));
    }
}
