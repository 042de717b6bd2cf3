//! Sticky assignments: a visitor drawn on an experiment's fallback unit keeps the variant when
//! the primary unit appears, within one phase, for their own fallback id only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cleave_core::force::Forced;
use cleave_core::sticky::{Sticky, StickyError, MAX_ENTRIES};
use cleave_core::{Attributes, Engine, Explanation, Subject, Units};
use common::{assigned, engine, exp, units, variant_by_bucket, why};
use serde_json::{json, Value};

const KEY: &[u8] = b"sticky-signing-key";

fn onboarding(more: Value) -> Engine {
    let mut fields = json!({"fallback_unit": "anonymous"});
    if let (Some(f), Some(m)) = (fields.as_object_mut(), more.as_object()) {
        f.extend(m.clone());
    }
    engine(json!({}), json!([exp("onboarding", fields)]))
}

/// What an anonymous visit records, through a sealed token as a caller would store it.
fn record_visit(e: &Engine, anon: &str) -> Sticky {
    let attrs = Attributes::new();
    let u = units(&[("anonymous", anon)]);
    let mut sticky = Sticky::default();
    sticky.record(
        |k| e.experiment(k).is_some(),
        &u,
        &e.assign(&Subject::new(&u, &attrs, 0)),
    );
    let token = sticky.seal(KEY).unwrap().expect("an entry was recorded");
    Sticky::open(KEY, &token).unwrap()
}

fn with_sticky<'a>(units: &'a Units, attrs: &'a Attributes, sticky: &'a Sticky) -> Subject<'a> {
    Subject {
        sticky: Some(sticky),
        ..Subject::new(units, attrs, 0)
    }
}

/// Anonymous ids whose variant would flip at login to user `u-<n>` without a record.
fn flipping_visitors(count: usize) -> Vec<(String, String)> {
    (0..)
        .map(|n| (format!("anon-{n}"), format!("u-{n}")))
        .filter(|(a, u)| variant_by_bucket("onboarding", a) != variant_by_bucket("onboarding", u))
        .take(count)
        .collect()
}

#[test]
fn a_visitor_keeps_their_variant_when_they_log_in() {
    let e = onboarding(json!({}));
    let attrs = Attributes::new();
    for (anon, user) in flipping_visitors(50) {
        let before = variant_by_bucket("onboarding", &anon);
        let sticky = record_visit(&e, &anon);
        let both = units(&[("anonymous", &anon), ("user", &user)]);
        // Without the record the login flips the variant; with it the variant stays.
        assert_ne!(
            assigned(&e, &Subject::new(&both, &attrs, 0))["onboarding"],
            before
        );
        let s = with_sticky(&both, &attrs, &sticky);
        assert_eq!(assigned(&e, &s)["onboarding"], before, "{anon}");
        assert_eq!(
            why(&e, &s, "onboarding"),
            Explanation::Sticky { variant: before }
        );
        // The kept assignment is recorded again, so the record survives the next visit.
        let mut next = sticky.clone();
        next.record(|k| e.experiment(k).is_some(), &both, &e.assign(&s));
        assert_eq!(next, sticky);
    }
}

#[test]
fn a_record_counts_for_its_own_phase_and_fallback_id_only() {
    let e = onboarding(json!({}));
    let attrs = Attributes::new();
    let (anon, user) = flipping_visitors(1).remove(0);
    let sticky = record_visit(&e, &anon);
    let by_user = variant_by_bucket("onboarding", &user);
    // another visitor's anonymous id: the record is not theirs
    let other = units(&[("anonymous", "someone-else"), ("user", &user)]);
    assert_eq!(
        assigned(&e, &with_sticky(&other, &attrs, &sticky))["onboarding"],
        by_user
    );
    // no fallback id at all
    let only_user = units(&[("user", &user)]);
    assert_eq!(
        assigned(&e, &with_sticky(&only_user, &attrs, &sticky))["onboarding"],
        by_user
    );
    // a new phase (rotated salt) reshuffles everyone, sticky or not
    let rotated = onboarding(json!({"salt": "onboarding-2"}));
    let both = units(&[("anonymous", &anon), ("user", &user)]);
    assert_eq!(
        assigned(&rotated, &with_sticky(&both, &attrs, &sticky))["onboarding"],
        variant_by_bucket("onboarding-2", &user)
    );
}

#[test]
fn targeting_still_applies_but_the_traffic_gate_does_not() {
    let (anon, user) = flipping_visitors(1).remove(0);
    let sticky = record_visit(&onboarding(json!({})), &anon);
    let both = units(&[("anonymous", &anon), ("user", &user)]);
    let targeted = onboarding(json!({"targeting": [{"conditions": [
        {"attribute": "plan", "operator": "eq", "value": "pro"}
    ]}]}));
    let free: Attributes = [("plan".to_owned(), "free".to_owned())].into();
    assert_eq!(
        why(&targeted, &with_sticky(&both, &free, &sticky), "onboarding"),
        Explanation::NotTargeted
    );
    // Ramping traffic down never takes a kept variant away.
    let ramped = onboarding(json!({"traffic": 0}));
    let attrs = Attributes::new();
    assert!(assigned(&ramped, &Subject::new(&both, &attrs, 0)).is_empty());
    assert_eq!(
        assigned(&ramped, &with_sticky(&both, &attrs, &sticky))["onboarding"],
        variant_by_bucket("onboarding", &anon)
    );
}

#[test]
fn a_kept_experiment_holds_its_layer() {
    let layered = |key: &str, range: [u16; 2]| {
        exp(
            key,
            json!({"fallback_unit": "anonymous", "layer": {"key": "home", "salt": "home",
                   "ranges": [range]}}),
        )
    };
    let e = engine(
        json!({}),
        json!([layered("hero", [0, 4999]), layered("promo", [5000, 9999])]),
    );
    let attrs = Attributes::new();
    let layer_bucket = |id: &str| cleave_core::bucket::draw("layer:home", id).bucket;
    // a visitor in hero's slice while anonymous, in promo's slice by user id
    let (anon, user) = (0..)
        .map(|n| (format!("anon-{n}"), format!("u-{n}")))
        .find(|(a, u)| layer_bucket(a) < 5000 && layer_bucket(u) >= 5000)
        .unwrap();
    let sticky = record_visit(&e, &anon);
    let both = units(&[("anonymous", &anon), ("user", &user)]);
    let plain = assigned(&e, &Subject::new(&both, &attrs, 0));
    assert_eq!(plain.keys().collect::<Vec<_>>(), ["promo"]);
    let kept = assigned(&e, &with_sticky(&both, &attrs, &sticky));
    assert_eq!(kept.keys().collect::<Vec<_>>(), ["hero"]);
    assert!(matches!(
        why(&e, &with_sticky(&both, &attrs, &sticky), "promo"),
        Explanation::OutsideLayer { .. }
    ));
}

#[test]
fn only_fallback_draws_are_recorded() {
    let e = engine(
        json!({}),
        json!([
            exp("onboarding", json!({"fallback_unit": "anonymous"})),
            exp("pricing", json!({})),
        ]),
    );
    let attrs = Attributes::new();
    let mut sticky = Sticky::default();
    // logged in from the start: drawn on the user id, nothing to remember
    let both = units(&[("anonymous", "a-1"), ("user", "u-1")]);
    sticky.record(
        |k| e.experiment(k).is_some(),
        &both,
        &e.assign(&Subject::new(&both, &attrs, 0)),
    );
    assert!(sticky.is_empty());
    assert_eq!(sticky.seal(KEY), Ok(None));
    // forced variants are QA, not the visitor's assignment
    let anon = units(&[("anonymous", "a-1")]);
    let forced: Forced = [("onboarding".to_owned(), "treatment".to_owned())].into();
    let s = Subject {
        forced: Some(&forced),
        ..Subject::new(&anon, &attrs, 0)
    };
    sticky.record(|k| e.experiment(k).is_some(), &anon, &e.assign(&s));
    assert!(sticky.is_empty());
    sticky.record(
        |k| e.experiment(k).is_some(),
        &anon,
        &e.assign(&Subject::new(&anon, &attrs, 0)),
    );
    assert_eq!(sticky.len(), 1);
}

#[test]
fn records_forget_deleted_experiments_keep_undecided_ones_and_stay_bounded() {
    let keys: Vec<String> = (0..MAX_ENTRIES + 8).map(|n| format!("e{n:02}")).collect();
    let all: Vec<Value> = keys
        .iter()
        .map(|k| exp(k, json!({"fallback_unit": "anonymous"})))
        .collect();
    let e = engine(json!({}), Value::Array(all.clone()));
    let attrs = Attributes::new();
    let anon = units(&[("anonymous", "a-1")]);
    let mut sticky = Sticky::default();
    sticky.record(
        |k| e.experiment(k).is_some(),
        &anon,
        &e.assign(&Subject::new(&anon, &attrs, 0)),
    );
    assert_eq!(sticky.len(), MAX_ENTRIES);
    // Over the cap the first keys went; a request filtered to a remembered experiment keeps
    // the others' entries.
    let last = keys.last().unwrap().clone();
    let only = [last].into();
    let filtered = Subject {
        only: Some(&only),
        ..Subject::new(&anon, &attrs, 0)
    };
    let before = sticky.clone();
    sticky.record(|k| e.experiment(k).is_some(), &anon, &e.assign(&filtered));
    assert_eq!(sticky, before);
    // A snapshot without the last experiment forgets it.
    let fewer = engine(json!({}), Value::Array(all[..all.len() - 1].to_vec()));
    sticky.record(|k| fewer.experiment(k).is_some(), &anon, &[]);
    assert_eq!(sticky.len(), MAX_ENTRIES - 1);
}

#[test]
fn tokens_are_signed() {
    let e = onboarding(json!({}));
    let sticky = record_visit(&e, "anon-1");
    let token = sticky.seal(KEY).unwrap().unwrap();
    assert_eq!(
        Sticky::open(b"other-key", &token),
        Err(StickyError::BadSignature)
    );
    assert_eq!(Sticky::open(b"", &token), Err(StickyError::NoKey));
    assert_eq!(sticky.seal(b""), Err(StickyError::NoKey));
    let (body, sig) = token.split_once('.').unwrap();
    let forged = format!("{}x.{sig}", &body[..body.len() - 1]);
    assert!(Sticky::open(KEY, &forged).is_err());
    assert_eq!(
        Sticky::open(KEY, "onboarding=treatment"),
        Err(StickyError::Malformed)
    );
}
