#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::decision::Units;
use crate::targeting::Attributes;
use crate::{Engine, Subject};

fn snapshot(flags: Value) -> crate::Snapshot {
    serde_json::from_value(json!({
        "schema": 1, "environment": "test", "version": 1,
        "published_at": "2026-11-21T10:00:00Z", "published_by": "t",
        "experiments": [{
            "id": "e", "key": "checkout", "status": "running",
            "variants": [
                {"id": "a", "key": "control", "ranges": [[0, 4999]]},
                {"id": "b", "key": "treatment", "ranges": [[5000, 9999]]}
            ]
        }],
        "flags": flags,
    }))
    .unwrap()
}

fn engine(flags: Value) -> Engine {
    Engine::new(snapshot(flags)).unwrap()
}

fn problems(flags: Value) -> Vec<String> {
    Engine::new(snapshot(flags))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn toggle(extra: Value) -> Value {
    let mut flag = json!({
        "key": "new-nav", "type": "boolean",
        "variants": [{"key": "on", "value": true}, {"key": "off", "value": false}],
        "off_variant": "off",
        "fallthrough": {"variant": "off"}
    });
    flag.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    flag
}

/// `(variant key, reason)` of flag `key` for `uid` with `attributes`.
fn value(
    engine: &Engine,
    key: &str,
    uid: Option<&str>,
    attributes: &[(&str, &str)],
) -> (String, Reason) {
    let units: Units = uid
        .map(|u| ("user".to_owned(), u.to_owned()))
        .into_iter()
        .collect();
    let attributes: Attributes = attributes
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match engine
        .evaluate_flag(&Subject::new(&units, &attributes, 0), key)
        .unwrap()
    {
        FlagOutcome::Value(v) => (v.variant.key.clone(), v.reason),
        FlagOutcome::TargetingKeyMissing(_) => ("<no unit>".to_owned(), Reason::Static),
    }
}

fn rollout(traffic: i64) -> Value {
    toggle(json!({"rules": [
        {"targeting": [{"conditions": [{"attribute": "plan", "operator": "eq", "value": "staff"}]}],
         "serve": {"variant": "on"}},
        {"serve": {"rollout": {"traffic": traffic, "split": [{"variant": "on", "weight": 10000}]}}}
    ]}))
}

#[test]
fn rules_are_tried_in_order_and_the_fallthrough_takes_the_rest() {
    let engine = engine(json!([rollout(0)]));
    assert_eq!(
        value(&engine, "new-nav", Some("u1"), &[("plan", "staff")]),
        ("on".into(), Reason::TargetingMatch)
    );
    assert_eq!(
        value(&engine, "new-nav", Some("u1"), &[]),
        ("off".into(), Reason::Static)
    );
    let (units, attributes) = (Units::new(), Attributes::new());
    let nobody = Subject::new(&units, &attributes, 0);
    assert!(engine.evaluate_flag(&nobody, "nope").is_none());
}

#[test]
fn raising_a_rollout_keeps_everyone_already_in() {
    let at = |traffic: i64| {
        let engine = engine(json!([rollout(traffic)]));
        (0..2000)
            .map(|i| value(&engine, "new-nav", Some(&format!("u{i}")), &[]).0 == "on")
            .collect::<Vec<bool>>()
    };
    let (ten, twenty) = (at(1000), at(2000));
    let count = |v: &[bool]| v.iter().filter(|x| **x).count();
    assert!((150..250).contains(&count(&ten)), "{}", count(&ten));
    assert!((330..470).contains(&count(&twenty)), "{}", count(&twenty));
    for (i, (before, after)) in ten.iter().zip(&twenty).enumerate() {
        assert!(!before || *after, "u{i} was in at 10% and out at 20%");
    }
    // The gate is the experiments' own: in exactly when gate(salt, unit) < traffic.
    let engine = engine(json!([rollout(1000)]));
    for i in 0..200 {
        let uid = format!("u{i}");
        let inside = crate::bucket::draw("new-nav", &uid).gate < 1000;
        let (variant, reason) = value(&engine, "new-nav", Some(&uid), &[]);
        assert_eq!(variant == "on", inside, "{uid}");
        if inside {
            assert_eq!(reason, Reason::Split);
        }
    }
}

#[test]
fn a_rollout_splits_by_weight_and_needs_the_unit() {
    let flag = toggle(json!({"fallthrough": {"rollout": {"split": [
        {"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}
    ]}}}));
    let engine = engine(json!([flag]));
    for i in 0..200 {
        let uid = format!("u{i}");
        let bucket = crate::bucket::draw("new-nav", &uid).bucket;
        let wanted = if bucket < 2500 { "on" } else { "off" };
        assert_eq!(
            value(&engine, "new-nav", Some(&uid), &[]),
            (wanted.to_owned(), Reason::Split)
        );
    }
    assert_eq!(value(&engine, "new-nav", None, &[]).0, "<no unit>");
}

#[test]
fn the_kill_switch_serves_the_off_variant_to_everyone() {
    let mut flag = rollout(10_000);
    flag["enabled"] = json!(false);
    let engine = engine(json!([flag]));
    for uid in ["u1", "u2", "u3"] {
        assert_eq!(
            value(&engine, "new-nav", Some(uid), &[("plan", "staff")]),
            ("off".into(), Reason::Disabled)
        );
    }
    assert_eq!(
        value(&engine, "new-nav", None, &[]),
        ("off".into(), Reason::Disabled)
    );
}

#[test]
fn an_experiment_decides_and_its_assignment_comes_along() {
    let flag = toggle(json!({"fallthrough": {"experiment": {
        "key": "checkout", "variants": {"control": "off", "treatment": "on"}
    }}}));
    let engine = engine(json!([flag]));
    let mut seen = BTreeMap::new();
    for i in 0..100 {
        let uid = format!("u{i}");
        let units: Units = [("user".to_owned(), uid.clone())].into();
        let attributes = Attributes::new();
        let subject = Subject::new(&units, &attributes, 0);
        let Some(FlagOutcome::Value(v)) = engine.evaluate_flag(&subject, "new-nav") else {
            panic!("no value");
        };
        let assigned = engine.assign(&subject);
        let experiment_variant = &assigned[0].variant.key;
        assert_eq!(v.assignment.unwrap().variant.key, *experiment_variant);
        let wanted = if experiment_variant == "treatment" {
            "on"
        } else {
            "off"
        };
        assert_eq!((v.variant.key.as_str(), v.reason), (wanted, Reason::Split));
        *seen.entry(wanted).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    // Without a unit the experiment enrols nobody: the fallthrough serves the off variant.
    assert_eq!(
        value(&engine, "new-nav", None, &[]),
        ("off".into(), Reason::Split)
    );
}

#[test]
fn every_mistake_is_named() {
    let found = problems(json!([
        {"key": "checkout", "type": "string", "variants": [{"key": "a", "value": 1}],
         "off_variant": "zz", "fallthrough": {"variant": "a", "rollout": {"split": []}}},
        {"key": "n", "type": "number", "variants": [{"key": "a", "value": 1}, {"key": "a", "value": 2}],
         "off_variant": "a",
         "rules": [{"serve": {"rollout": {"traffic": 10001, "split": [{"variant": "b", "weight": 4000}]}}}],
         "fallthrough": {"experiment": {"key": "checkout", "variants": {"control": "a", "other": "a"}}}},
        {"key": "n", "type": "json", "variants": [{"key": "x", "value": [1]}], "off_variant": "x",
         "fallthrough": {"experiment": {"key": "missing", "variants": {}}}}
    ]));
    let wanted = [
        "flags[0].key: \"checkout\" is already an experiment's key",
        "flags[0].variants[0].value: a string flag's value must be a string, not 1",
        "flags[0].off_variant: no variant \"zz\" in this flag",
        "flags[0].fallthrough: serve exactly one of",
        "flags[1].variants[1].key: duplicate variant key \"a\"",
        "flags[1].rules[0].serve.rollout.traffic: traffic 10001 is outside 0..=10000",
        "flags[1].rules[0].serve.rollout.split[0].variant: no variant \"b\" in this flag",
        "flags[1].rules[0].serve.rollout.split: weights add up to 4000, not 10000",
        "flags[1].fallthrough.experiment.variants: experiment variant \"treatment\" maps to no flag variant",
        "flags[1].fallthrough.experiment.variants.other: experiment \"checkout\" has no variant \"other\"",
        "flags[2].key: duplicate flag key \"n\"",
        "flags[2].variants[0].value: a json flag's value must be a JSON object, not [1]",
        "flags[2].fallthrough.experiment.key: no experiment \"missing\"",
    ];
    for w in wanted {
        assert!(
            found.iter().any(|f| f.starts_with(w)),
            "missing {w:?} in {found:#?}"
        );
    }
    assert_eq!(found.len(), wanted.len(), "{found:#?}");
}

#[test]
fn the_bulk_etag_follows_the_version_and_the_context() {
    let tag = bulk_etag("prod", 7, r#"{"targetingKey":"u"}"#);
    assert!(
        tag.starts_with("\"7-") && tag.ends_with('"') && tag.len() == 20,
        "{tag}"
    );
    assert_eq!(tag, bulk_etag("prod", 7, r#"{"targetingKey":"u"}"#));
    assert_ne!(tag, bulk_etag("prod", 8, r#"{"targetingKey":"u"}"#));
    assert_ne!(tag, bulk_etag("prod", 7, r#"{"targetingKey":"v"}"#));
    assert_ne!(tag, bulk_etag("staging", 7, r#"{"targetingKey":"u"}"#));
}

#[test]
fn ofrep_access_is_checked_and_keys_match_by_hash() {
    let mut snapshot = snapshot(json!([]));
    snapshot.ofrep.allowed_origins = vec![
        "https://app.example.com".into(),
        "http://127.0.0.1:8080".into(),
        "https://app.example.com/path".into(),
        "app.example.com".into(),
    ];
    let key_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    snapshot.ofrep.client_key_hashes = vec![key_hash.into(), "beef".into()];
    let found: Vec<String> = Engine::new(snapshot.clone())
        .unwrap_err()
        .iter()
        .map(|p| p.path.clone())
        .collect();
    assert_eq!(
        found,
        [
            "ofrep.allowed_origins[2]",
            "ofrep.allowed_origins[3]",
            "ofrep.client_key_hashes[1]"
        ]
    );
    assert!(is_client_key(&snapshot.ofrep, "test"), "sha256(\"test\")");
    assert!(!is_client_key(&snapshot.ofrep, "tes"));
}

#[test]
fn a_draft_serves_only_a_force_token_and_forcing_wins_over_rules() {
    let engine = engine(json!([
        toggle(json!({"draft": true, "fallthrough": {"variant": "on"}})),
        toggle(json!({"key": "live", "rules": [
            {"targeting": [{"conditions": [{"attribute": "plan", "operator": "eq", "value": "staff"}]}],
             "serve": {"variant": "on"}}
        ]}))
    ]));
    let units: Units = [("user".to_owned(), "u1".to_owned())].into();
    let attributes: Attributes = [("plan".to_owned(), "staff".to_owned())].into();
    let unforced = Subject::new(&units, &attributes, 0);
    assert!(engine.evaluate_flag(&unforced, "new-nav").is_none());
    let served: Vec<&str> = engine
        .evaluate_flags(&unforced, None)
        .iter()
        .map(|o| o.flag().key.as_str())
        .collect();
    assert_eq!(served, ["live"], "a draft is left out of every answer");

    let forced: crate::force::Forced = [
        ("new-nav".to_owned(), "off".to_owned()),
        ("live".to_owned(), "off".to_owned()),
    ]
    .into();
    let previewing = Subject {
        forced: Some(&forced),
        ..unforced
    };
    for key in ["new-nav", "live"] {
        match engine.evaluate_flag(&previewing, key).unwrap() {
            FlagOutcome::Value(v) => {
                assert_eq!(
                    (v.variant.key.as_str(), v.reason),
                    ("off", Reason::TargetingMatch)
                );
                assert!(v.assignment.is_none(), "a forced value records no exposure");
            }
            FlagOutcome::TargetingKeyMissing(_) => panic!("{key} needs no unit"),
        }
    }
    // A token naming no variant of the flag forces nothing: the draft stays hidden.
    let wrong: crate::force::Forced = [("new-nav".to_owned(), "blue".to_owned())].into();
    let subject = Subject {
        forced: Some(&wrong),
        ..unforced
    };
    assert!(engine.evaluate_flag(&subject, "new-nav").is_none());
}
