use serde_json::json;

use super::*;

fn schema() -> Vec<ContextAttribute> {
    serde_json::from_value(json!([
        {"name": "plan", "source": "header", "key": "x-plan", "type": "string", "required": true},
        {"name": "beta", "source": "cookie", "key": "beta", "type": "bool", "default": false},
        {"name": "seats", "source": "query", "key": "seats", "type": "number"},
        {"name": "app_version", "source": "header", "key": "x-app-version", "type": "semver"},
        {"name": "client", "source": "header", "key": "x-client-ua", "type": "user_agent"}
    ]))
    .unwrap()
}

fn request<'a>(
    pairs: &'a [(AttributeSource, &'a str, &'a str)],
) -> impl Fn(AttributeSource, &str) -> Option<String> + 'a {
    move |source, key| {
        pairs
            .iter()
            .find(|(s, k, _)| *s == source && *k == key)
            .map(|(_, _, v)| (*v).to_owned())
    }
}

#[test]
fn converts_reads_sources_and_applies_defaults() {
    let lookup = request(&[
        (AttributeSource::Header, "x-plan", "pro"),
        (AttributeSource::Query, "seats", "12.0"),
        (AttributeSource::Header, "x-app-version", " 2.4.0-rc.1 "),
        (
            AttributeSource::Header,
            "x-client-ua",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148 Safari/604.1",
        ),
    ]);
    let mut attributes = Attributes::new();
    let typed = apply_schema(&schema(), &mut attributes, &lookup, true).unwrap();
    assert_eq!(
        serde_json::Value::Object(typed),
        json!({
            "plan": "pro", "beta": false, "seats": 12, "app_version": "2.4.0-rc.1",
            "client": {"device": "mobile", "browser": "other", "os": "ios"}
        })
    );
    assert_eq!(attributes.get("seats").map(String::as_str), Some("12"));
    assert_eq!(attributes.get("beta").map(String::as_str), Some("false"));
    assert_eq!(attributes.get("client.os").map(String::as_str), Some("ios"));
}

#[test]
fn an_explicit_attribute_wins_over_its_source_and_is_converted() {
    let lookup = request(&[(AttributeSource::Header, "x-plan", "free")]);
    let mut attributes: Attributes = [
        ("plan".to_owned(), "team".to_owned()),
        ("beta".to_owned(), "YES".to_owned()),
    ]
    .into();
    apply_schema(&schema(), &mut attributes, &lookup, true).unwrap();
    assert_eq!(attributes.get("plan").map(String::as_str), Some("team"));
    assert_eq!(attributes.get("beta").map(String::as_str), Some("true"));
}

#[test]
fn strict_mode_names_the_missing_or_bad_attribute() {
    let none = request(&[]);
    assert_eq!(
        apply_schema(&schema(), &mut Attributes::new(), &none, true),
        Err(ContextError::Missing("plan".into()))
    );
    let bad = request(&[
        (AttributeSource::Header, "x-plan", "pro"),
        (AttributeSource::Query, "seats", "many"),
    ]);
    let err = apply_schema(&schema(), &mut Attributes::new(), &bad, true).unwrap_err();
    assert!(
        matches!(&err, ContextError::Invalid { name, .. } if name == "seats"),
        "{err}"
    );
    assert!(
        err.to_string().contains("\"many\" is not a number"),
        "{err}"
    );
}

#[test]
fn lenient_mode_drops_what_does_not_convert() {
    let bad = request(&[
        (AttributeSource::Query, "seats", "many"),
        (AttributeSource::Header, "x-app-version", "2.4"),
    ]);
    let mut attributes = Attributes::new();
    let typed = apply_schema(&schema(), &mut attributes, &bad, false).unwrap();
    assert!(!attributes.contains_key("seats"));
    assert!(!attributes.contains_key("app_version"));
    assert!(!attributes.contains_key("plan"));
    assert_eq!(serde_json::Value::Object(typed), json!({"beta": false}));
}

#[test]
fn an_oversized_value_is_refused_in_strict_mode_and_dropped_in_lenient_mode() {
    let long = "p".repeat(MAX_VALUE_BYTES + 1);
    let pairs = [(AttributeSource::Header, "x-plan", long.as_str())];
    let oversized = request(&pairs);
    let err = apply_schema(&schema(), &mut Attributes::new(), &oversized, true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "attribute \"plan\": value is longer than 1024 bytes"
    );
    let mut attributes = Attributes::new();
    apply_schema(&schema(), &mut attributes, &oversized, false).unwrap();
    assert!(!attributes.contains_key("plan"));
    let exact = "p".repeat(MAX_VALUE_BYTES);
    let pairs = [(AttributeSource::Header, "x-plan", exact.as_str())];
    let mut attributes = Attributes::new();
    apply_schema(&schema(), &mut attributes, &request(&pairs), true).unwrap();
    assert_eq!(attributes["plan"], exact);
}

#[test]
fn derived_user_agent_parts_cannot_be_supplied_directly() {
    let mut attributes: Attributes = [("client.device".to_owned(), "desktop".to_owned())].into();
    apply_schema(
        &schema(),
        &mut attributes,
        &request(&[(AttributeSource::Header, "x-plan", "p")]),
        true,
    )
    .unwrap();
    assert!(!attributes.contains_key("client.device"));
}

#[test]
fn the_schema_itself_is_checked() {
    let bad: Vec<ContextAttribute> = serde_json::from_value(json!([
        {"name": "cf.country", "source": "header", "key": "x", "type": "string"},
        {"name": "plan", "source": "header", "key": "", "type": "string"},
        {"name": "plan", "source": "query", "key": "p", "type": "string"},
        {"name": "n", "source": "query", "key": "n", "type": "number", "default": "lots"},
        {"name": "id.user", "source": "cookie", "key": "uid", "type": "string"}
    ]))
    .unwrap();
    let mut problems = Problems::default();
    check_schema(&bad, &mut problems);
    let found: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(found[0].starts_with("context_schema[0].name"));
    assert!(found[1].starts_with("context_schema[1].key"));
    assert!(found[2].contains("duplicate attribute"));
    assert!(found[3].starts_with("context_schema[3].default"));
    assert!(found[4].starts_with("context_schema[4].name"));
}

#[test]
fn numbers_compare_as_integers_only_where_an_f64_holds_them_exactly() {
    for (raw, text, typed) in [
        ("12.0", "12", json!(12)),
        ("-3", "-3", json!(-3)),
        ("2.5", "2.5", json!(2.5)),
        (
            "8999999999999999",
            "8999999999999999",
            json!(8_999_999_999_999_999_i64),
        ),
        ("1e16", "1e+16", json!(1e16)),
    ] {
        let converted = convert(AttributeType::Number, raw).unwrap();
        assert_eq!(
            (converted.text.as_str(), &converted.typed),
            (text, &typed),
            "{raw}"
        );
    }
}
