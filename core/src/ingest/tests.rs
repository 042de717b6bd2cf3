#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const NOW: i64 = 1_795_262_400_000;

#[test]
fn events_parse_with_defaults_and_both_timestamp_forms() {
    let body = br#"{"events":[
        {"event_id":"e1","unit":"u1","metric":"purchase","value":12.5,"timestamp":1795262399000},
        {"event_id":"e2","unit":"u2","metric":"signup","timestamp":"2026-11-21T11:59:00Z"},
        {"event_id":"e3","unit":"u3","metric":"signup"}]}"#;
    let events: Vec<Event> = parse_events(body, NOW)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].value, 12.5);
    assert_eq!(events[0].timestamp_ms, 1_795_262_399_000);
    assert_eq!(events[1].value, 1.0);
    assert_eq!(events[1].timestamp_ms, NOW - 60_000);
    assert_eq!(events[2].timestamp_ms, NOW);
    // A bare array is accepted too.
    assert_eq!(
        parse_events(br#"[{"event_id":"e","unit":"u","metric":"m"}]"#, NOW)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn bad_events_are_refused_with_their_position_and_field() {
    let cases: &[(&str, &str)] = &[
        (r#"nope"#, "not valid JSON"),
        (r#"{"evts":[]}"#, "body must be"),
        (r#"{"events":[]}"#, "events is empty"),
        (
            r#"[{"event_id":"e","unit":"u","metric":"Bad Metric"}]"#,
            "events[0].metric",
        ),
        (
            r#"[{"event_id":"e","unit":"u","metric":"m"},{"unit":"u","metric":"m"}]"#,
            "events[1].event_id: missing",
        ),
        (
            r#"[{"event_id":"","unit":"u","metric":"m"}]"#,
            "events[0].event_id: must be 1 to 128",
        ),
        (
            r#"[{"event_id":"e","unit":7,"metric":"m"}]"#,
            "events[0].unit: must be a string",
        ),
        (
            r#"[{"event_id":"e","unit":"u","metric":"m","value":"3"}]"#,
            "events[0].value: must be a number",
        ),
        (
            r#"[{"event_id":"e","unit":"u","metric":"m","timestamp":"yesterday"}]"#,
            "events[0].timestamp",
        ),
        (
            r#"[{"event_id":"e","unit":"u","metric":"m","timestamp":1}]"#,
            "older than 7 days",
        ),
        (
            r#"[{"event_id":"e","unit":"u","metric":"m","timestamp":1895262400000}]"#,
            "in the future",
        ),
        (
            r#"[{"event_id":"e","unit":"u","metric":"m","colour":"red"}]"#,
            "events[0].colour: unknown field",
        ),
    ];
    for (body, expected) in cases {
        let err = first_problem(body.as_bytes()).unwrap_or_default();
        assert!(err.contains(expected), "{body}: {err}");
    }
}

#[test]
fn size_limits_hold() {
    let one = r#"{"event_id":"e","unit":"u","metric":"m"}"#;
    let many = format!("[{}]", vec![one; limits::EVENTS + 1].join(","));
    assert!(parse_events(many.as_bytes(), NOW)
        .unwrap_err()
        .contains("at most 500"));
    let big = vec![b' '; limits::BODY_BYTES + 1];
    assert!(parse_events(&big, NOW).unwrap_err().contains("longer than"));
}

#[test]
fn batches_round_trip() {
    let batch = IngestBatch {
        environment: "demo".to_owned(),
        exposures: Vec::new(),
        events: parse_events(br#"[{"event_id":"e","unit":"u","metric":"m"}]"#, NOW)
            .unwrap()
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap(),
    };
    let text = serde_json::to_string(&batch).unwrap();
    assert_eq!(serde_json::from_str::<IngestBatch>(&text).unwrap(), batch);
}

/// The request's problem, else its first event's.
fn first_problem(body: &[u8]) -> Option<String> {
    match parse_events(body, NOW) {
        Err(e) => Some(e),
        Ok(events) => events.into_iter().find_map(Result::err),
    }
}

#[test]
fn one_bad_event_costs_its_neighbours_nothing() {
    let body = br#"[{"event_id":"a","unit":"u","metric":"m"},{"event_id":"b","unit":"u","metric":"Bad"},{"event_id":"c","unit":"u","metric":"m"}]"#;
    let parsed = parse_events(body, NOW).unwrap();
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[0].as_ref().unwrap().event_id, "a");
    assert!(parsed[1]
        .as_ref()
        .unwrap_err()
        .starts_with("events[1].metric: "));
    assert_eq!(parsed[2].as_ref().unwrap().event_id, "c");
}

#[test]
fn packing_splits_under_both_limits_and_loses_nothing() {
    let exposures: Vec<String> = (0..7).map(|i| format!(r#"{{"id":"x{i}"}}"#)).collect();
    let events: Vec<String> = (0..5)
        .map(|i| format!(r#"{{"event_id":"e{i}","pad":"{}"}}"#, "p".repeat(40)))
        .collect();
    let ex: Vec<&str> = exposures.iter().map(String::as_str).collect();
    let ev: Vec<&str> = events.iter().map(String::as_str).collect();
    for (max_bytes, max_records) in [(10_000, 3), (200, 100), (120, 1), (1, 100)] {
        let packed = pack("shop", &ex, &ev, max_bytes, max_records);
        let mut seen_ex: Vec<usize> = Vec::new();
        let mut seen_ev: Vec<usize> = Vec::new();
        for p in &packed {
            let count = p.exposures.len() + p.events.len();
            assert!(count >= 1 && count <= max_records, "{max_records}: {p:?}");
            assert!(
                p.body.len() <= max_bytes || count == 1,
                "{max_bytes}: {} bytes",
                p.body.len()
            );
            let back: IngestBody<'_> = serde_json::from_str(&p.body).unwrap();
            assert_eq!(back.environment, "shop");
            let want: Vec<&str> = p.exposures.iter().map(|&i| ex[i]).collect();
            assert_eq!(
                back.exposures.iter().map(|r| r.get()).collect::<Vec<_>>(),
                want
            );
            let want: Vec<&str> = p.events.iter().map(|&i| ev[i]).collect();
            assert_eq!(
                back.events.iter().map(|r| r.get()).collect::<Vec<_>>(),
                want
            );
            seen_ex.extend(&p.exposures);
            seen_ev.extend(&p.events);
        }
        assert_eq!(
            seen_ex,
            (0..7).collect::<Vec<_>>(),
            "every exposure once, in order"
        );
        assert_eq!(seen_ev, (0..5).collect::<Vec<_>>());
    }
    assert!(pack("shop", &[], &[], 100, 10).is_empty());
}

#[derive(serde::Deserialize)]
struct IngestBody<'a> {
    environment: String,
    #[serde(borrow)]
    exposures: Vec<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    events: Vec<&'a serde_json::value::RawValue>,
}
