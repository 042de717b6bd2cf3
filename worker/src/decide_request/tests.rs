use super::*;

fn units(pairs: &[(&str, &str)]) -> Units {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn reads_every_query_parameter() {
    let req = from_query(
        "id.user=u1&id.account=42&env=prod&ctx.country=US&ctx.plan=pro&experiments=a,%20b,&explain=1",
    )
    .unwrap();
    assert_eq!(req.units, units(&[("user", "u1"), ("account", "42")]));
    assert_eq!(req.environment.as_deref(), Some("prod"));
    assert_eq!(req.attributes, units(&[("country", "US"), ("plan", "pro")]));
    assert_eq!(
        req.experiments,
        Some(["a".to_owned(), "b".to_owned()].into())
    );
    assert!(req.explain);
}

#[test]
fn user_key_is_an_alias_that_id_user_overrides() {
    assert_eq!(
        from_query("user_key=a").unwrap().units,
        units(&[("user", "a")])
    );
    assert_eq!(
        from_query("user_key=a&id.user=b").unwrap().units,
        units(&[("user", "b")])
    );
}

#[test]
fn an_empty_filter_means_none_and_absent_means_all() {
    assert_eq!(
        from_query("id.user=u&experiments=").unwrap().experiments,
        Some(BTreeSet::new())
    );
    assert_eq!(from_query("id.user=u").unwrap().experiments, None);
}

#[test]
fn ctx_wins_over_context_and_json_values_keep_their_text() {
    let q = "id.user=u&ctx.a=query&context=%7B%22a%22%3A%22json%22%2C%22b%22%3Atrue%2C%22c%22%3A42%2C%22d%22%3A1.5%2C%22e%22%3Anull%7D";
    let req = from_query(q).unwrap();
    assert_eq!(
        req.attributes,
        units(&[("a", "query"), ("b", "true"), ("c", "42"), ("d", "1.5")])
    );
}

#[test]
fn reserved_attributes_are_ignored() {
    let req = from_query("id.user=u&ctx.cf.country=FR&ctx.url.path=/x&ctx.ua.device=bot&ctx.ok=1")
        .unwrap();
    assert_eq!(req.attributes, units(&[("ok", "1")]));
    let req =
        from_json(br#"{"units":{"user":"u"},"attributes":{"cf.country":"FR","x":1}}"#).unwrap();
    assert_eq!(req.attributes, units(&[("x", "1")]));
}

#[test]
fn refuses_bad_input_with_a_reason() {
    let err = |q: &str| from_query(q).unwrap_err().0;
    assert!(err("").starts_with("no identifier"));
    assert!(err("id.user=").starts_with("no identifier"));
    assert!(err("ctx.a=1").starts_with("no identifier"));
    assert!(err("id.user=u&context=%7B").starts_with("malformed context"));
    assert!(
        err("id.user=u&context=%5B1%5D").starts_with("malformed context: expected a JSON object")
    );
    assert!(err("id.User=u").contains("unit type \"User\""));
    assert!(err("id.user=u&env=Prod!").contains("env \"Prod!\""));
    assert!(err(&format!("id.user={}", "x".repeat(257))).contains("longer than 256 bytes"));
    assert!(err(&format!("id.user=u&ctx.a={}", "x".repeat(1025))).contains("longer than 1024"));
    assert!(err(&format!("id.user=u&q={}", "x".repeat(9000))).contains("query string is longer"));
    let many: String = (0..70).map(|i| format!("&ctx.a{i}=1")).collect();
    assert!(err(&format!("id.user=u{many}")).contains("more than 64 attributes"));
    let long = "x".repeat(4097);
    assert_eq!(
        err(&format!("id.user=u&force={long}")),
        "force token is longer than 4096 bytes"
    );
    assert_eq!(
        err(&format!("id.user=u&sticky={long}")),
        "sticky token is longer than 4096 bytes"
    );
    let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    assert!(from_query(&format!("id.user=u&context={{\"a\":{}}}", nested(8))).is_ok());
    assert_eq!(
        err(&format!("id.user=u&context={{\"a\":{}}}", nested(9))),
        "attribute \"a\" nests deeper than 8 levels"
    );
}

#[test]
fn reads_a_json_body() {
    let req = from_json(
        br#"{"units":{"user":"u1","account":7},"env":"prod","attributes":{"country":"US","n":2},"experiments":["a"]}"#,
    )
    .unwrap();
    assert_eq!(req.units, units(&[("user", "u1"), ("account", "7")]));
    assert_eq!(req.environment.as_deref(), Some("prod"));
    assert_eq!(req.attributes, units(&[("country", "US"), ("n", "2")]));
    assert_eq!(req.experiments, Some(["a".to_owned()].into()));
}

#[test]
fn refuses_bad_json_bodies() {
    let err = |b: &[u8]| from_json(b).unwrap_err().0;
    assert!(err(b"nope").starts_with("malformed JSON body"));
    assert!(err(br#"{"units":{}}"#).starts_with("no identifier"));
    assert!(err(br#"{"units":{"user":["x"]}}"#).contains("units.user must be a string"));
    assert!(err(br#"{"units":{"user":"u"},"attributes":[1]}"#)
        .contains("attributes must be a JSON object"));
    assert!(err(br#"{"units":{"user":"u"},"unit":"typo"}"#).contains("unknown field"));
    assert!(err(&vec![b' '; 70 * 1024]).contains("request body is longer"));
    let deep = format!(
        r#"{{"units":{{"user":"u"}},"attributes":{{"a":{{"b":{}}}}}}}"#,
        "[".repeat(8) + &"]".repeat(8)
    );
    assert_eq!(
        err(deep.as_bytes()),
        "attribute \"a\" nests deeper than 8 levels"
    );
    let sticky = format!(
        r#"{{"units":{{"user":"u"}},"sticky":"{}"}}"#,
        "x".repeat(5000)
    );
    assert_eq!(
        err(sticky.as_bytes()),
        "sticky token is longer than 4096 bytes"
    );
}

#[test]
fn expose_is_read_from_the_query_and_the_body() {
    assert_eq!(from_query("id.user=u").unwrap().expose, Expose::Named);
    assert_eq!(
        from_query("id.user=u&expose=all").unwrap().expose,
        Expose::All
    );
    assert_eq!(
        from_json(br#"{"units":{"user":"u"},"expose":"none"}"#)
            .unwrap()
            .expose,
        Expose::Nothing
    );
    let err = from_query("id.user=u&expose=seen").unwrap_err().0;
    assert_eq!(err, "expose \"seen\" must be \"all\" or \"none\"");
}

#[test]
fn a_confirmation_must_name_what_it_confirms() {
    let named = from_json(br#"{"units":{"user":"u"},"experiments":["a"]}"#).unwrap();
    assert!(naming_experiments(named).is_ok());
    for body in [
        &br#"{"units":{"user":"u"}}"#[..],
        br#"{"units":{"user":"u"},"experiments":[]}"#,
    ] {
        let err = naming_experiments(from_json(body).unwrap()).unwrap_err().0;
        assert!(
            err.starts_with("experiments: name the experiments"),
            "{err}"
        );
    }
}
