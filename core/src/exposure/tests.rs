#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use super::*;
use crate::decision::Units;
use crate::force::Forced;
use crate::targeting::Attributes;
use crate::Engine;

const NOV_21_NOON: i64 = 1_795_262_400_000;

fn engine() -> Engine {
    Engine::decode(
        br#"{"schema":1,"environment":"demo","version":3,"published_at":"2026-11-21T00:00:00Z","published_by":"t","bot_policy":"control",
        "experiments":[
          {"id":"e1","key":"checkout","status":"running","salt":"checkout-2","variants":[
            {"id":"v1","key":"control","ranges":[[0,4999]],"allow":["qa-1"]},
            {"id":"v2","key":"treatment","ranges":[[5000,9999]]}]},
          {"id":"e2","key":"banner","status":"running","unit":"account","fallback_unit":"anon","variants":[
            {"id":"v3","key":"on","ranges":[[0,9999]]}]}]}"#,
    )
    .unwrap()
}

fn units(pairs: &[(&str, &str)]) -> Units {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn ids_are_deterministic_per_day_and_differ_in_every_field() {
    let base = ["demo", "checkout", "s", "b", "user", "u1", "2026-11-21"];
    let id = |f: [&str; 7]| exposure_id(f[0], f[1], f[2], f[3], f[4], f[5], f[6]);
    assert_eq!(id(base), id(base));
    assert_eq!(id(base).len(), 32);
    for i in 0..7 {
        let mut changed = base;
        changed[i] = "other";
        assert_ne!(id(changed), id(base), "field {i} must change the id");
    }
    // Length prefixes: moving a character between fields changes the id.
    let shifted = ["demo", "checkout", "s", "bu", "ser", "u1", "2026-11-21"];
    assert_ne!(
        id(shifted),
        id(["demo", "checkout", "s", "bus", "er", "u1", "2026-11-21"])
    );
}

#[test]
fn utc_days() {
    assert_eq!(utc_day(NOV_21_NOON).unwrap(), "2026-11-21");
    assert_eq!(utc_day(0).unwrap(), "1970-01-01");
    assert_eq!(utc_day(86_400_000 - 1).unwrap(), "1970-01-01");
}

#[test]
fn one_exposure_per_assignment_with_the_unit_that_was_hashed() {
    let engine = engine();
    let attributes = Attributes::new();
    let units = units(&[("user", "u1"), ("anon", "a-9")]);
    let subject = Subject::new(&units, &attributes, NOV_21_NOON);
    let assigned = engine.assign(&subject);
    let exposures = exposures_of("demo", &subject, &assigned, Source::Api, &Binding::Any);
    assert_eq!(exposures.len(), 2);
    let banner = exposures.iter().find(|e| e.experiment == "banner").unwrap();
    assert_eq!(
        (banner.unit_type.as_str(), banner.unit.as_str()),
        ("anon", "a-9")
    );
    assert_eq!(banner.salt, "banner");
    let checkout = exposures
        .iter()
        .find(|e| e.experiment == "checkout")
        .unwrap();
    assert_eq!(checkout.salt, "checkout-2");
    assert_eq!(checkout.day, "2026-11-21");
    assert_eq!(checkout.excluded, None);
    assert_eq!(
        checkout.id,
        exposure_id(
            "demo",
            "checkout",
            "checkout-2",
            &checkout.variant,
            "user",
            "u1",
            "2026-11-21"
        )
    );
    // A later request the same day yields the same ids.
    let later = Subject::new(&units, &attributes, NOV_21_NOON + 3_600_000);
    let again = exposures_of(
        "demo",
        &later,
        &engine.assign(&later),
        Source::Api,
        &Binding::Any,
    );
    assert_eq!(
        again.iter().map(|e| &e.id).collect::<Vec<_>>(),
        exposures.iter().map(|e| &e.id).collect::<Vec<_>>()
    );
}

#[test]
fn forced_allow_listed_and_bot_exposures_are_marked() {
    let engine = engine();
    let attributes = Attributes::new();
    let qa = units(&[("user", "qa-1")]);
    let subject = Subject::new(&qa, &attributes, NOV_21_NOON);
    let marked = exposures_of(
        "demo",
        &subject,
        &engine.assign(&subject),
        Source::Api,
        &Binding::Any,
    );
    assert_eq!(marked[0].excluded, Some(Excluded::AllowListed));

    let plain = units(&[("user", "u1")]);
    let forced: Forced = BTreeMap::from([("checkout".to_owned(), "treatment".to_owned())]);
    let subject = Subject {
        forced: Some(&forced),
        ..Subject::new(&plain, &attributes, NOV_21_NOON)
    };
    let marked = exposures_of(
        "demo",
        &subject,
        &engine.assign(&subject),
        Source::Api,
        &Binding::Any,
    );
    assert_eq!(marked[0].excluded, Some(Excluded::Forced));

    let subject = Subject {
        bot: true,
        ..Subject::new(&plain, &attributes, NOV_21_NOON)
    };
    let bots = exposures_of(
        "demo",
        &subject,
        &engine.assign(&subject),
        Source::Api,
        &Binding::Any,
    );
    assert_eq!(
        bots.len(),
        1,
        "bots see checkout's control; banner has no anon id"
    );
    assert_eq!(bots[0].variant, "control");
    assert_eq!(bots[0].excluded, Some(Excluded::Bot));
}

#[test]
fn a_bound_caller_records_only_its_own_units_with_the_source_given() {
    let engine = engine();
    let attributes = Attributes::new();
    let units = units(&[("user", "u1"), ("anon", "a-9")]);
    let subject = Subject::new(&units, &attributes, NOV_21_NOON);
    let assigned = engine.assign(&subject);
    let own = [("user".to_owned(), "u1".to_owned())];
    let bound = exposures_of(
        "demo",
        &subject,
        &assigned,
        Source::Confirmed,
        &Binding::Units(&own),
    );
    let seen: Vec<_> = bound
        .iter()
        .map(|e| (e.experiment.as_str(), e.source))
        .collect();
    assert_eq!(
        seen,
        [("checkout", Some(Source::Confirmed))],
        "banner hashed anon, which is not bound"
    );
    let nobody = exposures_of(
        "demo",
        &subject,
        &assigned,
        Source::Api,
        &Binding::Units(&[]),
    );
    assert!(nobody.is_empty());
}

/// The admin deduplicates on this id and other senders must compute it byte for byte: pinned.
#[test]
fn the_exposure_id_is_pinned() {
    let id = exposure_id(
        "prod",
        "checkout",
        "checkout-2",
        "treatment",
        "user",
        "u-1",
        "2026-12-02",
    );
    // Computed independently (Node's crypto) from the documented layout.
    assert_eq!(id, "1a5f989331abc79f431b5d0ba47d391f");
}

#[test]
fn exposures_carry_the_edge_slice_and_older_records_without_one_still_read() {
    let engine = engine();
    let attributes: Attributes = [
        ("cf.country", "FR"),
        ("ua.device", "mobile"),
        ("ua.browser", "safari"),
        ("plan", "pro"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let units = units(&[("user", "u1")]);
    let subject = Subject::new(&units, &attributes, NOV_21_NOON);
    let exposures = exposures_of(
        "demo",
        &subject,
        &engine.assign(&subject),
        Source::Api,
        &Binding::Any,
    );
    let slice = &exposures[0].slice;
    assert_eq!(slice.country.as_deref(), Some("FR"));
    assert_eq!(slice.device.as_deref(), Some("mobile"));
    assert_eq!(slice.browser.as_deref(), Some("safari"));
    let json = serde_json::to_value(&exposures[0]).unwrap();
    assert_eq!(json["slice"]["country"], "FR");
    // The slice is not part of the id: the same unit's day stays one row wherever it is.
    let bare = Attributes::new();
    let elsewhere = Subject::new(&units, &bare, NOV_21_NOON);
    let plain = exposures_of(
        "demo",
        &elsewhere,
        &engine.assign(&elsewhere),
        Source::Api,
        &Binding::Any,
    );
    assert_eq!(plain[0].id, exposures[0].id);
    assert!(plain[0].slice.is_empty());
    assert!(serde_json::to_value(&plain[0])
        .unwrap()
        .get("slice")
        .is_none());
    let mut old = json.clone();
    old.as_object_mut().unwrap().remove("slice");
    let read: Exposure = serde_json::from_value(old).unwrap();
    assert!(read.slice.is_empty());
}

#[test]
fn delivered_slices_are_checked_field_by_field() {
    let ok = SliceAttributes {
        country: Some("FR".into()),
        device: Some("desktop".into()),
        browser: Some("chrome".into()),
    };
    assert_eq!(ok.problem(), None);
    let long = SliceAttributes {
        browser: Some("x".repeat(MAX_SLICE_BYTES + 1)),
        ..ok.clone()
    };
    assert!(long.problem().unwrap().starts_with("browser:"));
    let odd = SliceAttributes {
        country: Some("F'; drop".into()),
        ..ok
    };
    assert!(odd.problem().unwrap().starts_with("country:"));
}

fn holdout_engine() -> Engine {
    Engine::decode(
        br#"{"schema":1,"environment":"demo","version":3,"published_at":"2026-11-21T00:00:00Z","published_by":"t",
        "holdout":{"salt":"h-2026","unit":"user","ranges":[[0,999]]},
        "experiments":[
          {"id":"e1","key":"checkout","status":"running","salt":"checkout-2","variants":[
            {"id":"v1","key":"control","ranges":[[0,4999]]},
            {"id":"v2","key":"treatment","ranges":[[5000,9999]]}]}]}"#,
    )
    .unwrap()
}

#[test]
fn every_recorded_decision_records_the_holdout_for_held_out_units_and_the_rest_alike() {
    let engine = holdout_engine();
    let attributes = Attributes::new();
    let (mut held, mut rest) = (0, 0);
    for i in 0..2000 {
        let id = format!("u{i}");
        let units = units(&[("user", &id)]);
        let subject = Subject::new(&units, &attributes, NOV_21_NOON);
        let assigned = engine.assign(&subject);
        let e = holdout_exposure(
            "demo",
            &engine,
            &subject,
            Source::ProxyImplicit,
            &Binding::Any,
        )
        .unwrap();
        assert_eq!(e.experiment, HOLDOUT_EXPERIMENT);
        assert_eq!(e.salt, "h-2026");
        assert_eq!(
            e.id,
            exposure_id(
                "demo",
                HOLDOUT_EXPERIMENT,
                "h-2026",
                &e.variant,
                "user",
                &id,
                &e.day
            )
        );
        // Held out exactly when the engine enrolled the unit in nothing.
        if e.variant == HELD_OUT {
            held += 1;
            assert!(assigned.is_empty(), "{id} is held out yet assigned");
        } else {
            assert_eq!(e.variant, REST);
            rest += 1;
            assert_eq!(assigned.len(), 1, "{id} is not held out yet unassigned");
        }
    }
    // 1,000 of 10,000 buckets: about 10%.
    assert!((150..=250).contains(&held), "held out {held} of 2000");
    assert_eq!(held + rest, 2000);
}

#[test]
fn holdout_exposures_follow_the_binding_and_mark_bots_and_forced_requests() {
    let engine = holdout_engine();
    let attributes = Attributes::new();
    let units = units(&[("user", "u1")]);
    let subject = Subject::new(&units, &attributes, NOV_21_NOON);
    let source = Source::Api;
    assert!(holdout_exposure("demo", &engine, &subject, source, &Binding::Units(&[])).is_none());
    let mut bot = subject;
    bot.bot = true;
    let marked = holdout_exposure("demo", &engine, &bot, source, &Binding::Any).unwrap();
    assert_eq!(marked.excluded, Some(Excluded::Bot));
    let forced: Forced = BTreeMap::from([("checkout".to_owned(), "treatment".to_owned())]);
    let mut qa = subject;
    qa.forced = Some(&forced);
    let marked = holdout_exposure("demo", &engine, &qa, source, &Binding::Any).unwrap();
    assert_eq!(marked.excluded, Some(Excluded::Forced));
    // No holdout, or no unit of its type: nothing.
    assert!(holdout_exposure("demo", &self::engine(), &subject, source, &Binding::Any).is_none());
    let anon = self::units(&[("anon", "a1")]);
    let anonymous = Subject::new(&anon, &attributes, NOV_21_NOON);
    assert!(holdout_exposure("demo", &engine, &anonymous, source, &Binding::Any).is_none());
}
