#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;

/// A snapshot that sets every field the format carries, nested conditions included.
fn everything() -> Snapshot {
    let mut snapshot: Snapshot = serde_json::from_value(json!({
        "schema": 1, "environment": "prod", "version": 12,
        "published_at": "2026-11-21T10:00:00Z", "published_by": "alice",
        "audiences": [{"key": "beta", "targeting": [{"conditions": [
            {"attribute": "plan", "operator": "in", "value": ["pro", 3, true]}
        ]}]}],
        "context_schema": [
            {"name": "plan", "source": "cookie", "key": "plan", "type": "string", "default": "free"},
            {"name": "app", "source": "header", "key": "x-app", "type": "semver", "required": true},
            {"name": "ua", "source": "header", "key": "user-agent", "type": "user_agent"}
        ],
        "holdout": {"salt": "h", "unit": "account", "ranges": [[0, 99], [500, 599]]},
        "bot_policy": "control", "anonymous_exposures": "any",
        "origins": {"beta": "https://beta.example.com", "main": "https://example.com/base"},
        "ofrep": {"allowed_origins": ["https://app.example.com"], "client_key_hashes": ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]},
        "flags": [
            {
                "key": "dark-mode", "type": "boolean", "enabled": false, "unit": "account", "salt": "dm",
                "variants": [{"key": "on", "value": true}, {"key": "off", "value": false}],
                "off_variant": "off",
                "rules": [
                    {"targeting": [{"conditions": [{"audience": "beta"}]}], "serve": {"variant": "on"}},
                    {"serve": {"rollout": {"traffic": 2500, "split": [{"variant": "on", "weight": 10000}]}}}
                ],
                "fallthrough": {"experiment": {"key": "checkout", "variants": {"control": "off", "treatment": "on", "away": "off"}}}
            },
            {
                "key": "limits", "type": "json",
                "variants": [{"key": "base", "value": {"n": 1.5, "l": ["a"]}}],
                "off_variant": "base", "fallthrough": {"variant": "base"}
            }
        ],
        "experiments": [
            {
                "id": "e1", "key": "checkout", "status": "running", "unit": "user",
                "fallback_unit": "anon", "salt": "s1", "traffic": 5000,
                "start_at": "2026-11-01T00:00:00Z", "end_at": "2026-12-01T00:00:00Z",
                "layer": {"key": "l", "salt": "ls", "ranges": [[0, 4999]]},
                "targeting": [
                    {"conditions": [
                        {"attribute": "country", "operator": "eq", "value": "US"},
                        {"any": [{"audience": "beta"}, {"not": {"attribute": "app", "operator": "semver_gte", "value": "2.0.0"}}]}
                    ]},
                    {"conditions": [{"all": [{"attribute": "x", "operator": "exists"}]}]}
                ],
                "routes": {"include": ["/shop/*"], "exclude": ["/shop/admin"]},
                "route_all_methods": true,
                "variants": [
                    {"id": "v1", "key": "control", "ranges": [[0, 4999]], "allow": ["qa-1"]},
                    {"id": "v2", "key": "treatment", "payload": {"b": [1, 2.5, null], "a": {"s": "é\"\\n"}},
                     "ranges": [[5000, 7499], [7500, 9999]],
                     "route": {"origin": "beta", "rewrite": "/new{path}"}},
                    {"id": "v3", "key": "away", "payload": "text", "ranges": [],
                     "route": {"redirect": "https://example.com/x", "status": 307}}
                ]
            },
            {
                "id": "e2", "key": "later", "status": "paused", "traffic": 0,
                "prerequisites": [{"experiment": "checkout", "variants": ["treatment"]}],
                "variants": [{"id": "v", "key": "only", "payload": 7, "ranges": [[0, 9999]]}]
            },
            {
                "id": "e3", "key": "odd", "status": "draft",
                "targeting": [{"conditions": [{"attribute": "n", "operator": "future_op", "value": {"k": 1}}]}],
                "variants": []
            }
        ]
    }))
    .unwrap();
    snapshot.consent = Some(super::super::Consent {
        source: AttributeSource::Cookie,
        name: "cookie_consent".into(),
        value: "yes".into(),
        without: super::super::WithoutConsent::None,
    });
    snapshot.identity = serde_json::from_value(json!([
        {"unit": "account", "source": "cookie", "name": "session", "jwt": {
            "algorithm": "ES256", "claim": "acct", "issuer": "https://id.example.com",
            "audience": "shop", "leeway_s": 30,
            "keys": [{"kid": "k1", "kty": "EC", "crv": "P-256",
                "x": "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA",
                "y": "ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P0A"}]
        }},
        {"unit": "team", "source": "header", "name": "x-team"}
    ]))
    .unwrap();
    snapshot
}

#[test]
fn every_field_round_trips() {
    let snapshot = everything();
    let bytes = encode_binary(&snapshot);
    assert_eq!(&bytes[..4], b"CLVB");
    assert_eq!(decode_binary(&bytes).unwrap(), snapshot);
    // The JSON a worker serves back is byte-for-byte what the JSON body decodes to.
    assert_eq!(
        serde_json::to_string(&decode_binary(&bytes).unwrap()).unwrap(),
        serde_json::to_string(&snapshot).unwrap()
    );
}

#[test]
fn the_engine_built_from_a_sidecar_is_the_one_built_from_json() {
    let mut snapshot = everything();
    snapshot.experiments.truncate(2);
    let json = serde_json::to_vec(&snapshot).unwrap();
    let from_json = crate::Engine::decode(&json).unwrap();
    let from_binary = crate::Engine::decode_binary(&encode_binary(&snapshot)).unwrap();
    assert_eq!(from_binary.snapshot(), from_json.snapshot());
    assert_eq!(
        from_binary.experiment("checkout").unwrap().variants[1]
            .payload
            .as_json(),
        r#"{"a":{"s":"é\"\\n"},"b":[1,2.5,null]}"#
    );
}

#[test]
fn a_sidecar_is_refused_unless_it_is_exactly_this_format() {
    let bytes = encode_binary(&everything());
    assert_eq!(
        decode_binary(b"{\"schema\":1}"),
        Err(BinaryError::NotASidecar)
    );
    assert_eq!(decode_binary(b"CLVB\x01"), Err(BinaryError::NotASidecar));
    let mut newer = bytes.clone();
    newer[4] = u8::try_from(BINARY_FORMAT + 1).unwrap();
    assert_eq!(
        decode_binary(&newer),
        Err(BinaryError::Format(BINARY_FORMAT + 1))
    );
    for cut in [9, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            matches!(decode_binary(&bytes[..cut]), Err(BinaryError::Malformed(_))),
            "cut at {cut}"
        );
    }
    let mut longer = bytes;
    longer.push(0);
    assert_eq!(
        decode_binary(&longer),
        Err(BinaryError::Malformed(
            "1 bytes after the snapshot".to_owned()
        ))
    );
}

#[test]
fn a_payload_that_is_not_json_is_refused() {
    let mut snapshot = everything();
    snapshot.experiments.truncate(1);
    let doc = Doc::from(&snapshot);
    let mut bad = doc;
    bad.experiments[0].variants[1].payload = "{not json".to_owned();
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&BINARY_FORMAT.to_le_bytes());
    let bytes = postcard::to_extend(&bad, bytes).unwrap();
    assert!(matches!(
        decode_binary(&bytes),
        Err(BinaryError::Malformed(_))
    ));
}
