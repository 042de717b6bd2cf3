//! What each fuzz target checks. The targets in `fuzz_targets/` feed libFuzzer's inputs here;
//! `tests/corpus.rs` replays the committed corpus and every past finding through the same
//! functions on stable Rust, so `scripts/test.sh` keeps them fixed. A check panics only when a
//! property fails; the code under test must never panic on any input.
#![allow(clippy::panic)]

use std::collections::BTreeMap;

use cleave_core::force;
use cleave_core::headers;
use cleave_core::routing::{redirect_location, RequestRoute, Routing};
use cleave_core::sticky::Sticky;
use cleave_core::{Attributes, Engine, Subject, Units};
use cleave_worker::{decide_request, identity};

/// The key the token targets sign and verify with.
const KEY: &[u8] = b"fuzz-signing-key";
/// A fixed clock, inside the validity of the committed token seeds.
const NOW_MS: i64 = 1_795_000_000_000;

/// Any bytes as a snapshot: decoding never panics, and a snapshot that decodes assigns
/// without panicking and encodes a header that parses back to the same assignments.
pub fn snapshot_decode(data: &[u8]) {
    let Ok(engine) = Engine::decode(data) else {
        return;
    };
    let unit_types: Vec<String> = engine
        .snapshot()
        .experiments
        .iter()
        .map(|e| e.unit.clone())
        .chain(["user".to_owned()])
        .collect();
    for id in ["u1", "", "user-123", "用户"] {
        let units: Units = unit_types
            .iter()
            .map(|t| (t.clone(), id.to_owned()))
            .collect();
        check_header(&engine, &units, &Attributes::new());
        check_routes(&engine, &units);
    }
}

/// Scoping to a route only ever removes assignments, never changes one; the routing actions
/// of what remains name only allowed origins.
fn check_routes(engine: &Engine, units: &Units) {
    let attributes = Attributes::new();
    let everywhere = engine.assign(&Subject::new(units, &attributes, NOW_MS));
    for path in ["/", "/shop/x", "/old", "/a/b/c?d"] {
        let route = RequestRoute {
            host: "www.example.com",
            path,
        };
        let scoped = engine.assign(&Subject {
            route: Some(route),
            ..Subject::new(units, &attributes, NOW_MS)
        });
        for a in &scoped {
            assert!(
                everywhere
                    .iter()
                    .any(|b| b.experiment.key == a.experiment.key && b.variant.key == a.variant.key),
                "{} changed under a route",
                a.experiment.key
            );
        }
        let routing = Routing::of(&scoped, true, false);
        if let Some(origin) = routing.origin {
            assert!(
                engine.snapshot().origins.contains_key(origin),
                "origin {origin:?} not allowed"
            );
        }
        if let Some((target, status)) = routing.redirect {
            assert!(cleave_core::routing::REDIRECT_STATUSES.contains(&status));
            assert!(redirect_location(target, Some("q=1")).contains("q=1"));
        }
    }
}

/// Experiment and variant keys from the input, built into a snapshot: whatever keys the engine
/// accepts, the `cleave-assignments` header is a valid RFC 8941 dictionary that says exactly
/// which variant each experiment assigned (nothing can be injected into the header).
pub fn assignments_header(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut keys = text.split('\n');
    let experiments: Vec<serde_json::Value> = (0..4)
        .filter_map(|i| {
            let key = keys.next()?;
            let variant = keys.next().unwrap_or("control");
            Some(serde_json::json!({
                "id": format!("e{i}"), "key": key, "status": "running",
                "variants": [{"id": format!("v{i}"), "key": variant, "ranges": [[0, 9999]]}],
            }))
        })
        .collect();
    let snapshot = serde_json::json!({
        "schema": 1, "environment": "fuzz", "version": 1,
        "published_at": "2026-11-21T10:00:00Z", "published_by": "fuzz",
        "experiments": experiments,
    });
    let Ok(engine) = Engine::decode(snapshot.to_string().as_bytes()) else {
        return;
    };
    let units: Units = [("user".to_owned(), "u1".to_owned())].into();
    check_header(&engine, &units, &Attributes::new());
}

/// Force and sticky tokens: any text is refused or accepted without panicking, and an accepted
/// force token's pairs mint a token that verifies to the same pairs.
pub fn tokens(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    // As sent (almost always refused at the signature), and as a correctly signed body, so
    // the fuzzer reaches the parsing behind the signature check.
    check_tokens(&text);
    check_tokens(&sealed(b"cleave-force:v2\n", &text));
    check_tokens(&sealed(b"cleave-sticky:v1\n", &text));
}

/// `base64url(body) "." base64url(HMAC-SHA256(KEY, context ++ body))`, the token format of
/// `cleave_core` (README, "QA force tokens"), written out here so bodies can be fuzzed.
fn sealed(context: &[u8], body: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(KEY) else {
        return String::new();
    };
    mac.update(context);
    mac.update(body.as_bytes());
    let signature = mac.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(body),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

fn check_tokens(text: &str) {
    let max = force::DEFAULT_MAX_LIFETIME_MS;
    if let Ok(forced) = force::verify(KEY, text, "fuzz", NOW_MS, max) {
        let claims = force::read(KEY, text)
            .unwrap_or_else(|e| panic!("a verified token does not read back: {e:?}"));
        assert_eq!(claims.environment, "fuzz");
        assert!(claims.expires_ms - claims.issued_ms <= max, "{claims:?}");
        assert!(claims.expires_ms > NOW_MS, "{claims:?}");
        let again = force::mint(KEY, &claims)
            .unwrap_or_else(|e| panic!("re-minting accepted claims {claims:?} failed: {e:?}"));
        assert_eq!(
            force::verify(KEY, &again, "fuzz", NOW_MS, max).ok(),
            Some(forced)
        );
    }
    if let Ok(sticky) = Sticky::open(KEY, text) {
        let resealed = sticky.seal(KEY).ok().flatten();
        if let Some(resealed) = resealed {
            let reopened = Sticky::open(KEY, &resealed).map(|s| s.len());
            assert_eq!(reopened.ok(), Some(sticky.len()));
        }
    }
    let _ = force::verify(KEY, text, "fuzz", i64::MAX, i64::MAX);
    let _ = force::verify(KEY, text, "fuzz", i64::MIN, 0);
}

/// A decide request as a GET query, a POST body and a cookie header: parsed or refused with a
/// message, never a panic, and what is accepted stays inside the documented limits.
pub fn decide_request(data: &[u8]) {
    use decide_request::limits;
    let text = String::from_utf8_lossy(data);
    let parsed = [
        decide_request::parse_query(&text),
        decide_request::from_json(data),
    ];
    for request in parsed.into_iter().flatten() {
        assert!(request.units.len() <= limits::UNITS, "{request:?}");
        assert!(request
            .units
            .values()
            .all(|id| id.len() <= limits::UNIT_ID_BYTES));
        assert!(request.attributes.len() <= limits::ATTRIBUTES);
        assert!(request
            .experiments
            .as_ref()
            .is_none_or(|e| e.len() <= limits::EXPERIMENT_FILTER));
        for token in [&request.force, &request.sticky].into_iter().flatten() {
            assert!(token.len() <= limits::TOKEN_BYTES);
        }
        if let Some(page) = &request.url {
            assert!(page.path.starts_with('/'), "{page:?}");
            assert!(!page.path.contains(['?', '#']), "{page:?}");
        }
    }
    if let Some(uid) = identity::uid_from_cookies(&text) {
        assert!(
            !uid.is_empty() && uid.len() <= 64,
            "cleave_uid {uid:?} trusted"
        );
        assert!(uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}

fn check_header(engine: &Engine, units: &Units, attributes: &Attributes) {
    let assignments = engine.assign(&Subject::new(units, attributes, NOW_MS));
    let expected: BTreeMap<&str, &str> = assignments
        .iter()
        .map(|a| (a.experiment.key.as_str(), a.variant.key.as_str()))
        .collect();
    let Some(header) = headers::assignments_header(&assignments) else {
        assert!(expected.is_empty(), "no header for {expected:?}");
        return;
    };
    let parsed = sfv::Parser::new(&header)
        .parse::<sfv::Dictionary>()
        .unwrap_or_else(|e| panic!("{header:?} is not an RFC 8941 dictionary: {e}"));
    let decoded: BTreeMap<String, String> = parsed
        .iter()
        .map(|(key, entry)| match entry {
            sfv::ListEntry::Item(sfv::Item {
                bare_item: sfv::BareItem::String(value),
                ..
            }) => (key.as_str().to_owned(), value.as_str().to_owned()),
            other => panic!("{header:?}: {key} is not a string: {other:?}"),
        })
        .collect();
    let decoded: BTreeMap<&str, &str> = decoded
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(decoded, expected, "{header:?}");
}

/// Any text as a variant's redirect target: a snapshot carrying it is either refused or holds
/// a target no browser reads as another host than it says (no backslash, control character
/// or whitespace; a same-host path never starts with `//`).
pub fn redirect_targets(data: &[u8]) {
    let target = String::from_utf8_lossy(data);
    let snapshot = serde_json::json!({
        "schema": 1, "environment": "fuzz", "version": 1,
        "published_at": "2026-11-21T10:00:00Z", "published_by": "fuzz",
        "experiments": [{
            "id": "e", "key": "landing", "status": "running",
            "routes": {"include": ["/landing"]},
            "variants": [{"id": "v", "key": "b", "ranges": [[0, 9999]],
                          "route": {"redirect": target}}],
        }],
    });
    let Ok(engine) = Engine::decode(snapshot.to_string().as_bytes()) else {
        return;
    };
    let accepted = &engine.snapshot().experiments[0].variants[0];
    let target = accepted
        .route
        .as_ref()
        .and_then(|r| r.redirect.as_deref())
        .unwrap_or_default();
    assert!(
        !cleave_core::routing::has_ambiguous_characters(target),
        "{target:?} accepted"
    );
    let relative = target.starts_with('/');
    assert!(
        !relative || !target[1..].starts_with(['/', '\\']),
        "{target:?} accepted"
    );
    assert!(
        relative || target.starts_with("https://") || target.starts_with("http://"),
        "{target:?} accepted"
    );
}

/// Any bytes as a KV pointer: parsing, the expiry checks and the signed messages never panic,
/// and a pointer that is fresh has an expiry that reads and lies ahead.
pub fn pointer(data: &[u8]) {
    let Ok(pointer) = serde_json::from_slice::<cleave_core::pointer::Pointer>(data) else {
        return;
    };
    let _ = cleave_core::pointer::signed_expiry_message("fuzz", &pointer);
    let _ = pointer.expiry_signature_bytes();
    let _ = pointer.signature_bytes();
    let _ = pointer.may_replace(Some(pointer.version.saturating_add(1)));
    for now in [i64::MIN, 0, NOW_MS, i64::MAX] {
        if pointer.check_fresh(now).is_ok() {
            let expires = pointer.expires_ms();
            assert!(
                expires.as_ref().is_ok_and(|&at| at > now),
                "fresh at {now} with {expires:?}"
            );
        }
    }
}
