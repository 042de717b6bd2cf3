//! What the worker tells the origin (docs/contracts.md §5): the `cleave-assignments` RFC 8941 dictionary
//! and the HMAC that lets the origin trust it.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sfv::{Decimal, DictSerializer, Integer, KeyRef, StringRef};
use sha2::Sha256;

use crate::decision::Assignment;
use crate::flags::FlagValue;

/// Encodes assignments as an sf-dictionary of experiment key -> variant key (sf-string), e.g.
/// `checkout-button-color="treatment", hero="control"`. `None` when there are none (the header
/// is then omitted).
pub fn assignments_header(assignments: &[Assignment<'_>]) -> Option<String> {
    let mut dict = DictSerializer::new();
    for a in assignments {
        // Keys were validated against the key grammar, a subset of sf-key and sf-string; a key
        // that somehow is not is left out rather than mis-encoded.
        if let (Ok(key), Ok(value)) = (
            KeyRef::from_str(&a.experiment.key),
            StringRef::from_str(&a.variant.key),
        ) {
            let _params = dict.bare_item(key, value);
        }
    }
    dict.finish()
}

/// `hex(HMAC-SHA256(key, unit ++ "\n" ++ snapshot ++ "\n" ++ assignments))`, where `snapshot` is
/// the exact `cleave-snapshot` value and `assignments` the exact `cleave-assignments` value
/// (empty when absent).
pub fn sign(key: &[u8], unit: &str, snapshot: &str, assignments: &str) -> String {
    // HMAC accepts keys of any length, so this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(unit.as_bytes());
    mac.update(b"\n");
    mac.update(snapshot.as_bytes());
    mac.update(b"\n");
    mac.update(assignments.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Encodes flag values as an sf-dictionary of flag key -> value, e.g.
/// `new-nav=?1, theme="blue", limit=20.5`: booleans as sf-boolean, strings as sf-string,
/// numbers as sf-integer or sf-decimal. A value RFC 8941 cannot carry exactly is left out —
/// a string outside printable ASCII, a number with more than three decimals or of 10^12 or
/// more, any `json` flag — and the origin can ask OFREP for it. `None` when nothing travels.
pub fn flags_header(values: &[FlagValue<'_>]) -> Option<String> {
    let mut dict = DictSerializer::new();
    for v in values {
        let Ok(key) = KeyRef::from_str(&v.flag.key) else {
            continue;
        };
        match v.variant.value.to_value() {
            Value::Bool(b) => {
                let _params = dict.bare_item(key, b);
            }
            Value::String(text) => {
                if let Ok(text) = StringRef::from_str(&text) {
                    let _params = dict.bare_item(key, text);
                }
            }
            Value::Number(n) => {
                if let Some(i) = n.as_i64().and_then(|i| Integer::try_from(i).ok()) {
                    let _params = dict.bare_item(key, i);
                } else if let Some(d) = n.as_f64().and_then(exact_decimal) {
                    let _params = dict.bare_item(key, d);
                }
            }
            _ => {}
        }
    }
    dict.finish()
}

/// `x` as an sf-decimal when that is exact (at most three decimals, under 10^12).
fn exact_decimal(x: f64) -> Option<Decimal> {
    let scaled = x * 1000.0;
    let exact = x.abs() < 1e12 && scaled.round() == scaled;
    exact.then(|| Decimal::try_from(x).ok()).flatten()
}

/// `hex(HMAC-SHA256(key, "flags\n" ++ unit ++ "\n" ++ snapshot ++ "\n" ++ flags))` with the
/// key of [`sign`], `flags` the exact `cleave-flags` value. The `flags` line keeps it from
/// ever verifying as an assignments signature (an sf-dictionary holds no newline).
pub fn sign_flags(key: &[u8], unit: &str, snapshot: &str, flags: &str) -> String {
    sign_labelled(key, b"flags", unit, snapshot, flags)
}

/// Encodes the units a decision used as an sf-dictionary of unit type -> id (sf-string), with
/// the parameter `verified` on ids from a verified identity source, e.g.
/// `user="3f2a…", account="42";verified`. An id RFC 8941 cannot carry is left out.
pub fn units_header<'u>(
    units: impl IntoIterator<Item = (&'u str, &'u str, bool)>,
) -> Option<String> {
    let mut dict = DictSerializer::new();
    for (unit, id, verified) in units {
        if let (Ok(key), Ok(id)) = (KeyRef::from_str(unit), StringRef::from_str(id)) {
            let params = dict.bare_item(key, id);
            if verified {
                let _params = params.parameter(KeyRef::constant("verified"), true);
            }
        }
    }
    dict.finish()
}

/// The `cleave-units-signature`: [`sign_flags`]'s form with the line `units`, over the exact
/// `cleave-units` value.
pub fn sign_units(key: &[u8], unit: &str, snapshot: &str, units: &str) -> String {
    sign_labelled(key, b"units", unit, snapshot, units)
}

fn sign_labelled(key: &[u8], label: &[u8], unit: &str, snapshot: &str, value: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    for part in [label, unit.as_bytes(), snapshot.as_bytes()] {
        mac.update(part);
        mac.update(b"\n");
    }
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a client header must not reach the origin because it could pass for one of
/// cleave's own: its name, lower-cased with `_` read as `-`, starts with `cleave-`. Rack, PHP,
/// CGI and WSGI read `_` and `-` alike, so `cleave_unit` would arrive as `cleave-unit`.
pub fn is_reserved_header(name: &str) -> bool {
    const PREFIX: &[u8] = b"cleave-";
    let name = name.as_bytes();
    name.len() >= PREFIX.len()
        && name
            .iter()
            .zip(PREFIX)
            .all(|(&c, &p)| c.to_ascii_lowercase() == p || (c == b'_' && p == b'-'))
}

/// Hop-by-hop headers (RFC 9110 §7.6.1, and the older ones proxies still meet), which apply
/// to one connection and are never forwarded.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a request header is hop-by-hop: one of [`HOP_BY_HOP`] or named by the request's
/// `Connection` header. A WebSocket handshake keeps `Upgrade` (and `Connection: upgrade`)
/// so it reaches the origin as a handshake.
pub fn is_hop_by_hop(name: &str, connection: Option<&str>, websocket: bool) -> bool {
    // Compared without allocating: this runs for every header of every proxied request.
    let is = |other: &str| name.eq_ignore_ascii_case(other);
    if websocket && (is("upgrade") || is("connection")) {
        return false;
    }
    HOP_BY_HOP.iter().any(|h| is(h))
        || connection.is_some_and(|c| {
            c.split(',')
                .map(str::trim)
                .any(|listed| !listed.is_empty() && is(listed))
        })
}

/// Whether a request asks for a WebSocket: `Upgrade: websocket` on a GET.
pub fn is_websocket_upgrade(method: &str, upgrade: Option<&str>) -> bool {
    method.eq_ignore_ascii_case("GET")
        && upgrade.is_some_and(|u| {
            u.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;
    use std::collections::BTreeMap;

    #[test]
    fn encodes_an_sf_dictionary_in_key_order() {
        let engine = Engine::decode(include_bytes!(
            "../../tests/fixtures/assignment-snapshot.json"
        ))
        .unwrap();
        let units = BTreeMap::from([("user".to_owned(), "u-2".to_owned())]);
        let attributes = BTreeMap::new();
        let only = ["split".to_owned(), "three-way".to_owned()].into();
        let subject = crate::Subject {
            only: Some(&only),
            ..crate::Subject::new(&units, &attributes, 1_800_000_000_000)
        };
        let header = assignments_header(&engine.assign(&subject)).unwrap();
        assert_eq!(header, r#"split="treatment", three-way="a""#);
    }

    #[test]
    fn no_assignments_means_no_header() {
        assert_eq!(assignments_header(&[]), None);
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // Reference computed independently: python3 -c 'import hmac,hashlib;
        // print(hmac.new(b"k", b"u1\n7\na=\"b\"", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(b"k", "u1", "7", r#"a="b""#),
            "d69ad48dc3bd3574e94c749fbbf84905a18bcec225fa805a99cfff586a95b171"
        );
    }

    #[test]
    fn flags_travel_when_rfc_8941_carries_them_exactly() {
        let flag = |key: &str, kind: &str, value: serde_json::Value| {
            serde_json::json!({
                "key": key, "type": kind, "off_variant": "only", "fallthrough": {"variant": "only"},
                "variants": [{"key": "only", "value": value}]
            })
        };
        let snapshot: crate::Snapshot = serde_json::from_value(serde_json::json!({
            "schema": 1, "environment": "t", "version": 1, "published_at": "", "published_by": "",
            "flags": [
                flag("new-nav", "boolean", serde_json::json!(true)),
                flag("theme", "string", serde_json::json!("blue")),
                flag("accent", "string", serde_json::json!("bleu é")),
                flag("limit", "number", serde_json::json!(20.5)),
                flag("ratio", "number", serde_json::json!(0.12345)),
                flag("seats", "number", serde_json::json!(-12)),
                flag("layout", "json", serde_json::json!({"cols": 3})),
                flag("off", "boolean", serde_json::json!(false)),
            ]
        }))
        .unwrap();
        let engine = Engine::new(snapshot).unwrap();
        let units = BTreeMap::new();
        let attributes = BTreeMap::new();
        let values: Vec<_> = engine
            .evaluate_flags(&crate::Subject::new(&units, &attributes, 0), None)
            .into_iter()
            .filter_map(|o| match o {
                crate::flags::FlagOutcome::Value(v) => Some(v),
                crate::flags::FlagOutcome::TargetingKeyMissing(_) => None,
            })
            .collect();
        assert_eq!(
            flags_header(&values).unwrap(),
            r#"new-nav, theme="blue", limit=20.5, seats=-12, off=?0"#
        );
        assert_eq!(flags_header(&[]), None);
    }

    #[test]
    fn the_flags_signature_matches_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"k",
        //   b"flags\nu1\n7\nnew-nav=?1, theme=\"blue\"", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign_flags(b"k", "u1", "7", r#"new-nav=?1, theme="blue""#),
            "27208155d4863eec41525fcc2f83535fd8a0f9ed4453d407898c4b4ad8edea8b"
        );
    }

    #[test]
    fn units_travel_marked_when_verified_and_signed_apart() {
        let header = units_header([("user", "u1", false), ("account", "42", true)]).unwrap();
        assert_eq!(header, r#"user="u1", account="42";verified"#);
        // An id a header cannot carry is left out, not mangled.
        assert_eq!(
            units_header([("user", "u1", false), ("team", "é", false)]).unwrap(),
            r#"user="u1""#
        );
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"k",
        //   b"units\nu1\n7\nuser=\"u1\", account=\"42\";verified", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign_units(b"k", "u1", "7", &header),
            "d2b69e34efc1ea1e066658dce432750dddd827421cb1ee74bbaae3b2fa624b3c"
        );
        assert_ne!(
            sign_units(b"k", "u1", "7", &header),
            sign_flags(b"k", "u1", "7", &header)
        );
    }

    #[test]
    fn reserved_names_are_read_as_a_framework_would() {
        for name in [
            "cleave-unit",
            "Cleave-Assignments",
            "cleave_assignments",
            "Cleave_Snapshot",
            "CLEAVE_SIGNATURE",
            "cleave-",
            "cleave_",
        ] {
            assert!(is_reserved_header(name), "{name}");
        }
        for name in [
            "cleave",
            "cleaver",
            "x-cleave-unit",
            "cookie",
            "cleave.unit",
        ] {
            assert!(!is_reserved_header(name), "{name}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        for name in [
            "Keep-Alive",
            "proxy-connection",
            "TE",
            "transfer-encoding",
            "upgrade",
        ] {
            assert!(is_hop_by_hop(name, None, false), "{name}");
        }
        assert!(is_hop_by_hop("x-private", Some("close, X-Private"), false));
        assert!(!is_hop_by_hop("x-other", Some("close, X-Private"), false));
        assert!(!is_hop_by_hop("accept", Some(""), false));
        // A WebSocket handshake keeps what makes it one, and still loses the rest.
        assert!(!is_hop_by_hop("upgrade", Some("upgrade"), true));
        assert!(!is_hop_by_hop("connection", Some("upgrade"), true));
        assert!(is_hop_by_hop("keep-alive", Some("upgrade"), true));
        assert!(is_websocket_upgrade("GET", Some("WebSocket")));
        assert!(!is_websocket_upgrade("POST", Some("websocket")));
        assert!(!is_websocket_upgrade("GET", Some("h2c")));
    }
}
