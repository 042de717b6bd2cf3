//! What the worker tells the origin (docs/contracts.md §5): the `cleave-assignments` RFC 8941 dictionary
//! and the HMAC that lets the origin trust it.

use hmac::{Hmac, Mac};
use sfv::{DictSerializer, KeyRef, StringRef};
use sha2::Sha256;

use crate::decision::Assignment;

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
