//! Delegation: the `act` claim (RFC 8693 §4.1), read strictly and within bounds.
//!
//! `act` names the party acting for the subject; a nested `act` inside it names the party
//! that acted before, and so on. The outermost `act.sub` is the *current actor*, the only
//! one to authorize on (route `actors`); the whole chain, outermost first, is for audit and
//! attribution (`X-Auth-Delegation-Chain`). This is the seeds' `get_current_actor` and
//! `get_delegation_chain`, decided once at verification: a token whose `act` cannot be
//! read is refused rather than passed on with a chain the upstream might misread.

use serde_json::Value;

use crate::refusal::Reason;

/// The deepest `act` nesting accepted: a chain of at most this many actors.
pub const MAX_DEPTH: usize = 8;

/// The actors of a token, outermost (current) first; empty without `act`. Each `act` must
/// be an object with a non-empty `sub` string free of control characters, nested at most
/// [`MAX_DEPTH`] deep: anything else is [`Reason::InvalidActClaim`].
pub fn chain(act: Option<&Value>) -> Result<Vec<Box<str>>, Reason> {
    let mut actors = Vec::new();
    let mut current = act;
    while let Some(value) = current {
        if actors.len() == MAX_DEPTH {
            return Err(Reason::InvalidActClaim);
        }
        let Value::Object(act) = value else { return Err(Reason::InvalidActClaim) };
        match act.get("sub") {
            Some(Value::String(sub)) if !sub.trim().is_empty() && !sub.chars().any(char::is_control) => {
                actors.push(sub.as_str().into());
            }
            _ => return Err(Reason::InvalidActClaim),
        }
        current = act.get("act");
    }
    Ok(actors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An `act` of `depth` actors, `actor-0` outermost.
    fn nested(depth: usize) -> Option<Value> {
        (0..depth).rev().fold(None, |inner, n| {
            let mut act = json!({ "sub": format!("actor-{n}") });
            if let Some(inner) = inner {
                act["act"] = inner;
            }
            Some(act)
        })
    }

    #[test]
    fn chains_of_every_allowed_depth_read_outermost_first() {
        for depth in [0, 1, 3, MAX_DEPTH] {
            let got = chain(nested(depth).as_ref()).unwrap();
            let want: Vec<Box<str>> = (0..depth).map(|n| format!("actor-{n}").into()).collect();
            assert_eq!(got, want, "depth {depth}");
        }
    }

    #[test]
    fn a_chain_deeper_than_the_bound_is_refused() {
        assert_eq!(chain(nested(MAX_DEPTH + 1).as_ref()), Err(Reason::InvalidActClaim));
    }

    #[test]
    fn an_act_without_a_usable_sub_is_refused() {
        for act in [
            json!("mcp_server"),
            json!(["mcp_server"]),
            json!({}),
            json!({ "sub": 7 }),
            json!({ "sub": "" }),
            json!({ "sub": "  " }),
            json!({ "sub": "a\nb" }),
            json!({ "sub": "ok", "act": "nested string" }),
            json!({ "sub": "ok", "act": { "client_id": "no sub" } }),
            Value::Null,
        ] {
            assert_eq!(chain(Some(&act)), Err(Reason::InvalidActClaim), "{act}");
        }
    }

    #[test]
    fn other_members_of_act_are_ignored() {
        let act = json!({ "sub": "mcp", "iss": "https://issuer.example/", "client_id": "x" });
        assert_eq!(chain(Some(&act)).unwrap(), vec![Box::from("mcp")]);
    }
}
