//! The enrolment steps around bucketing: force tokens, allow-lists, bots, holdout,
//! prerequisites, fallback units and audiences, checked against independent bucket draws.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cleave_core::bucket::draw;
use cleave_core::force::Forced;
use cleave_core::{Attributes, Explanation, Subject, Units};
use common::{assigned, engine, exp, problems, units, variant_by_bucket, why};
use serde_json::json;

#[test]
fn an_allow_listed_unit_gets_its_variant_whatever_its_bucket() {
    let e = engine(
        json!({}),
        json!([exp(
            "qa",
            json!({"traffic": 0, "variants": [
                {"id": "a", "key": "control", "ranges": [[0, 4999]]},
                {"id": "b", "key": "treatment", "ranges": [[5000, 9999]], "allow": ["qa-1", "qa-2"]}
            ]})
        )]),
    );
    let attrs = Attributes::new();
    let qa = units(&[("user", "qa-1")]);
    let s = Subject::new(&qa, &attrs, 0);
    assert_eq!(
        assigned(&e, &s).get("qa").map(String::as_str),
        Some("treatment")
    );
    assert_eq!(
        why(&e, &s, "qa"),
        Explanation::AllowListed {
            variant: "treatment"
        }
    );
    let other = units(&[("user", "someone")]);
    let s = Subject::new(&other, &attrs, 0);
    assert!(assigned(&e, &s).is_empty(), "traffic 0 enrols nobody else");
}

#[test]
fn the_holdout_excludes_its_slice_from_every_experiment() {
    let e = engine(
        json!({"holdout": {"salt": "h2026", "unit": "user", "ranges": [[0, 999]]}}),
        json!([exp("a", json!({})), exp("b", json!({}))]),
    );
    let attrs = Attributes::new();
    let mut held = 0;
    for i in 0..2000 {
        let id = format!("u{i}");
        let u = units(&[("user", &id)]);
        let s = Subject::new(&u, &attrs, 0);
        let bucket = draw("holdout:h2026", &id).bucket;
        let got = assigned(&e, &s);
        if bucket < 1000 {
            held += 1;
            assert!(got.is_empty(), "{id} is held out");
            assert_eq!(
                why(&e, &s, "a"),
                Explanation::Holdout {
                    holdout_bucket: bucket
                }
            );
        } else {
            assert_eq!(got.len(), 2, "{id}");
            assert_eq!(got["a"], variant_by_bucket("a", &id));
        }
    }
    assert!(
        (120..=280).contains(&held),
        "about 10% held out, got {held}"
    );
}

#[test]
fn bots_follow_the_bot_policy() {
    let attrs = Attributes::new();
    let u = units(&[("user", "crawler-1")]);
    let bot = Subject {
        bot: true,
        ..Subject::new(&u, &attrs, 0)
    };
    let excluded = engine(json!({}), json!([exp("a", json!({}))]));
    assert!(
        assigned(&excluded, &bot).is_empty(),
        "bots are excluded by default"
    );
    assert_eq!(why(&excluded, &bot, "a"), Explanation::Bot);
    let control = engine(
        json!({"bot_policy": "control"}),
        json!([exp(
            "a",
            json!({"variants": [
                {"id": "b", "key": "treatment", "ranges": [[0, 9999]]},
                {"id": "a", "key": "control", "ranges": []}
            ]})
        )]),
    );
    assert_eq!(
        assigned(&control, &bot).get("a").map(String::as_str),
        Some("control")
    );
    let include = engine(
        json!({"bot_policy": "include"}),
        json!([exp("a", json!({}))]),
    );
    assert_eq!(
        assigned(&include, &bot)["a"],
        variant_by_bucket("a", "crawler-1")
    );
}

#[test]
fn prerequisites_gate_on_another_experiments_variant() {
    let e = engine(
        json!({}),
        json!([
            exp("checkout", json!({})),
            exp(
                "upsell",
                json!({"prerequisites": [{"experiment": "checkout", "variants": ["treatment"]}]})
            ),
            exp(
                "zz-chain",
                json!({"prerequisites": [{"experiment": "upsell", "variants": ["control"]}]})
            )
        ]),
    );
    let attrs = Attributes::new();
    for i in 0..300 {
        let id = format!("u{i}");
        let u = units(&[("user", &id)]);
        let s = Subject::new(&u, &attrs, 0);
        let got = assigned(&e, &s);
        let upsell_ok = variant_by_bucket("checkout", &id) == "treatment";
        assert_eq!(got.contains_key("upsell"), upsell_ok, "{id}");
        let chain_ok = upsell_ok && variant_by_bucket("upsell", &id) == "control";
        assert_eq!(got.contains_key("zz-chain"), chain_ok, "{id}");
        if !upsell_ok {
            assert_eq!(
                why(&e, &s, "upsell"),
                Explanation::Prerequisite {
                    requires: "checkout"
                }
            );
        }
        // Filtering to one experiment still evaluates what it depends on.
        let only = ["zz-chain".to_owned()].into();
        let filtered = Subject {
            only: Some(&only),
            ..s
        };
        assert_eq!(assigned(&e, &filtered).contains_key("zz-chain"), chain_ok);
    }
}

#[test]
fn prerequisite_mistakes_and_cycles_are_refused() {
    let found = problems(
        json!({}),
        json!([
            exp(
                "a",
                json!({"prerequisites": [{"experiment": "b", "variants": ["control"]}]})
            ),
            exp(
                "b",
                json!({"prerequisites": [{"experiment": "c", "variants": ["treatment"]}]})
            ),
            exp(
                "c",
                json!({"prerequisites": [{"experiment": "a", "variants": ["control"]}]})
            ),
            exp(
                "d",
                json!({"prerequisites": [
                    {"experiment": "nope", "variants": ["control"]},
                    {"experiment": "a", "variants": ["purple"]}
                ]})
            )
        ]),
    );
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found
        .iter()
        .any(|p| p.contains("unknown experiment \"nope\"")));
    assert!(found
        .iter()
        .any(|p| p.contains("\"a\" has no variant \"purple\"")));
    assert!(
        found.iter().any(|p| p.contains("cycle: a -> b -> c -> a")),
        "{found:#?}"
    );
}

#[test]
fn a_fallback_unit_is_hashed_when_the_primary_is_missing() {
    let e = engine(
        json!({}),
        json!([exp("onboarding", json!({"fallback_unit": "anonymous"}))]),
    );
    let attrs = Attributes::new();
    let anon = units(&[("anonymous", "anon-7")]);
    let s = Subject::new(&anon, &attrs, 0);
    assert_eq!(
        assigned(&e, &s)["onboarding"],
        variant_by_bucket("onboarding", "anon-7")
    );
    match why(&e, &s, "onboarding") {
        Explanation::Assigned { unit, .. } => assert_eq!(unit, "anonymous"),
        other => panic!("{other:?}"),
    }
    let both = units(&[("anonymous", "anon-7"), ("user", "u-1")]);
    let s = Subject::new(&both, &attrs, 0);
    assert_eq!(
        assigned(&e, &s)["onboarding"],
        variant_by_bucket("onboarding", "u-1")
    );
    let neither = units(&[("account", "x")]);
    assert_eq!(
        why(&e, &Subject::new(&neither, &attrs, 0), "onboarding"),
        Explanation::NoUnit
    );
}

#[test]
fn a_force_token_overrides_targeting_traffic_and_missing_units() {
    let e = engine(
        json!({}),
        json!([exp(
            "a",
            json!({"traffic": 0, "targeting": [
                {"conditions": [{"attribute": "country", "operator": "eq", "value": "NZ"}]}
            ]})
        )]),
    );
    let attrs = Attributes::new();
    let none = Units::new();
    let forced: Forced = [
        ("a".to_owned(), "treatment".to_owned()),
        ("gone".to_owned(), "x".to_owned()),
    ]
    .into();
    let s = Subject {
        forced: Some(&forced),
        ..Subject::new(&none, &attrs, 0)
    };
    assert_eq!(assigned(&e, &s)["a"], "treatment");
    assert_eq!(
        why(&e, &s, "a"),
        Explanation::Forced {
            variant: "treatment"
        }
    );
    let unknown: Forced = [("a".to_owned(), "purple".to_owned())].into();
    let s = Subject {
        forced: Some(&unknown),
        ..Subject::new(&none, &attrs, 0)
    };
    assert!(
        assigned(&e, &s).is_empty(),
        "an unknown variant is not forced"
    );
}

#[test]
fn audiences_are_resolved_and_checked() {
    let e = engine(
        json!({"audiences": [{"key": "nz-pro", "targeting": [{"conditions": [
            {"attribute": "country", "operator": "eq", "value": "NZ"},
            {"attribute": "plan", "operator": "eq", "value": "pro"}
        ]}]}]}),
        json!([exp(
            "a",
            json!({"targeting": [{"conditions": [{"audience": "nz-pro"}]}]})
        )]),
    );
    let u = units(&[("user", "u1")]);
    let yes: Attributes = [("country", "NZ"), ("plan", "pro")]
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let no: Attributes = [("country", "NZ")]
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    assert!(assigned(&e, &Subject::new(&u, &yes, 0)).contains_key("a"));
    assert_eq!(
        why(&e, &Subject::new(&u, &no, 0), "a"),
        Explanation::NotTargeted
    );
    let found = problems(
        json!({"audiences": [{"key": "x", "targeting": [{"conditions": [{"audience": "y"}]}]}]}),
        json!([exp(
            "a",
            json!({"targeting": [{"conditions": [{"audience": "missing"}]}]})
        )]),
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].contains("audiences cannot reference"));
    assert!(found[1].contains("unknown audience \"missing\""));
}

#[test]
fn layer_members_must_share_fallback_units() {
    let found = problems(
        json!({}),
        json!([
            exp(
                "a",
                json!({"layer": {"key": "l", "salt": "l", "ranges": [[0, 4999]]}})
            ),
            exp(
                "b",
                json!({"fallback_unit": "anonymous", "layer": {"key": "l", "salt": "l", "ranges": [[5000, 9999]]}})
            )
        ]),
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("hashes on unit type"));
}
