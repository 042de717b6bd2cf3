#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const NOW: i64 = 1_795_262_400_000;

#[test]
fn events_parse_with_defaults_and_both_timestamp_forms() {
    let body = br#"{"events":[
        {"event_id":"e1","unit":"u1","metric":"purchase","value":12.5,"timestamp":1795262399000},
        {"event_id":"e2","unit":"u2","metric":"signup","timestamp":"2026-11-21T11:59:00Z"},
        {"event_id":"e3","unit":"u3","metric":"signup"}]}"#;
    let events = parse_events(body, NOW).unwrap();
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
        let err = parse_events(body.as_bytes(), NOW).unwrap_err();
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
        events: parse_events(br#"[{"event_id":"e","unit":"u","metric":"m"}]"#, NOW).unwrap(),
    };
    let text = serde_json::to_string(&batch).unwrap();
    assert_eq!(serde_json::from_str::<IngestBatch>(&text).unwrap(), batch);
}
