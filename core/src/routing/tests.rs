use serde_json::{json, Value};

use super::*;
use crate::{Engine, Explanation, Subject, Units};

fn matcher(include: &[&str], exclude: &[&str]) -> RouteMatcher {
    let routes = Routes {
        include: include.iter().map(|s| (*s).to_owned()).collect(),
        exclude: exclude.iter().map(|s| (*s).to_owned()).collect(),
    };
    let mut problems = Problems::default();
    let m = RouteMatcher::prepare(&routes, "e", &mut problems).unwrap();
    assert!(problems.is_empty());
    m
}

#[test]
fn star_matches_any_run_and_nothing_else_is_special() {
    assert!(glob("/checkout/*", "/checkout/"));
    assert!(glob("/checkout/*", "/checkout/pay/now"));
    assert!(!glob("/checkout/*", "/checkout"));
    assert!(glob("/a*c*e", "/abcde"));
    assert!(glob("/a*c*e", "/acccccce"));
    assert!(!glob("/a*c*e", "/abcdf"));
    assert!(glob("/exact", "/exact"));
    assert!(!glob("/exact", "/exact/"));
    assert!(glob("/x.html", "/x.html"));
    assert!(!glob("/x.html", "/xyhtml"));
    assert!(glob("*", ""));
    // Pathological backtracking stays linear enough to finish instantly.
    let long = format!("/{}", "a".repeat(5000));
    assert!(!glob("/*a*a*a*a*a*b", &long));
}

#[test]
fn hosts_match_case_insensitively_and_host_less_patterns_match_any_host() {
    let m = matcher(&["shop.example.com/checkout/*", "/cart"], &[]);
    assert!(m.applies(Some("SHOP.example.com"), "/checkout/1"));
    assert!(!m.applies(Some("blog.example.com"), "/checkout/1"));
    assert!(m.applies(Some("blog.example.com"), "/cart"));
    let wild = matcher(&["*.example.com/*"], &[]);
    assert!(wild.applies(Some("a.example.com"), "/"));
    assert!(!wild.applies(Some("example.com"), "/"));
}

#[test]
fn excludes_win_over_includes_and_no_include_means_everywhere() {
    let m = matcher(&["/shop/*"], &["/shop/admin/*"]);
    assert!(m.applies(Some("h"), "/shop/shoes"));
    assert!(!m.applies(Some("h"), "/shop/admin/users"));
    assert!(!m.applies(Some("h"), "/blog"));
    let everywhere_but = matcher(&[], &["/health"]);
    assert!(everywhere_but.applies(Some("h"), "/anything"));
    assert!(!everywhere_but.applies(Some("h"), "/health"));
}

#[test]
fn malformed_patterns_are_named() {
    let routes = Routes {
        include: vec!["example.com".into(), "/ok".into(), "https://x.com/a".into()],
        exclude: vec!["/a?b=1".into()],
    };
    let mut problems = Problems::default();
    assert!(RouteMatcher::prepare(&routes, "experiments[0]", &mut problems).is_none());
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(
        text[0].starts_with("experiments[0].routes.include[0]: "),
        "{text:?}"
    );
    assert!(
        text[1].starts_with("experiments[0].routes.include[2]: "),
        "{text:?}"
    );
    assert!(text[2].contains("not queries"), "{text:?}");
}

fn snapshot(origins: Value, experiments: Value) -> crate::Snapshot {
    serde_json::from_value(json!({
        "schema": 1, "environment": "test", "version": 1,
        "published_at": "2026-11-21T10:00:00Z", "published_by": "t",
        "origins": origins, "experiments": experiments,
    }))
    .unwrap()
}

fn routed(routes: Value, treatment_route: Value) -> Value {
    json!({
        "id": "e1", "key": "landing", "status": "running", "routes": routes,
        "variants": [
            {"id": "a", "key": "control", "ranges": [[0, 4999]]},
            {"id": "b", "key": "treatment", "ranges": [[5000, 9999]], "route": treatment_route}
        ]
    })
}

fn problems(origins: Value, experiment: Value) -> Vec<String> {
    Engine::new(snapshot(origins, json!([experiment])))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn actions_are_checked_against_the_allow_list_and_the_routes() {
    let origins = json!({"beta": "https://beta.example.com"});
    let ok = Engine::new(snapshot(
        origins.clone(),
        json!([routed(
            json!({"include": ["/"]}),
            json!({"origin": "beta", "rewrite": "/v2{path}"})
        )]),
    ));
    assert!(ok.is_ok(), "{ok:?}");
    let unknown = problems(
        origins.clone(),
        routed(json!(null), json!({"origin": "evil"})),
    );
    assert_eq!(
        unknown,
        ["experiments[0].variants[1].route.origin: origin \"evil\" is not in the environment's allowed origins"]
    );
    let bad_url = Engine::new(snapshot(json!({"x": "ftp://x"}), json!([]))).unwrap_err();
    assert!(bad_url.to_string().contains("origins.x"), "{bad_url}");
    let rewrite = problems(
        origins.clone(),
        routed(json!(null), json!({"rewrite": "v2"})),
    );
    assert!(rewrite[0].contains("route.rewrite"), "{rewrite:?}");
}

#[test]
fn redirects_need_routes_a_temporary_status_and_a_target_outside_them() {
    let origins = json!({});
    let unscoped = problems(
        origins.clone(),
        routed(json!(null), json!({"redirect": "/new"})),
    );
    assert!(unscoped[0].contains("needs routes.include"), "{unscoped:?}");
    let looping = problems(
        origins.clone(),
        routed(
            json!({"include": ["/landing*"]}),
            json!({"redirect": "/landing-b?x=1"}),
        ),
    );
    assert!(looping[0].contains("redirected again"), "{looping:?}");
    let other_host = Engine::new(snapshot(
        origins.clone(),
        json!([routed(
            json!({"include": ["www.example.com/landing"]}),
            json!({"redirect": "https://new.example.com/landing"})
        )]),
    ));
    assert!(other_host.is_ok(), "{other_host:?}");
    let permanent = problems(
        origins.clone(),
        routed(
            json!({"include": ["/a"]}),
            json!({"redirect": "/b", "status": 301}),
        ),
    );
    assert!(permanent[0].contains("not 302 or 307"), "{permanent:?}");
    let mixed = problems(
        origins,
        routed(
            json!({"include": ["/a"]}),
            json!({"redirect": "/b", "rewrite": "/c"}),
        ),
    );
    assert!(mixed[0].contains("cannot be combined"), "{mixed:?}");
}

#[test]
fn scoped_experiments_apply_only_on_their_routes() {
    let engine = Engine::new(snapshot(
        json!({}),
        json!([routed(json!({"include": ["/shop/*"]}), json!(null))]),
    ))
    .unwrap();
    assert!(engine.has_routes());
    let units = Units::from([("user".to_owned(), "u1".to_owned())]);
    let attributes = crate::Attributes::new();
    let at = |path: &'static str| Subject {
        route: Some(RequestRoute { host: "h", path }),
        ..Subject::new(&units, &attributes, 0)
    };
    assert_eq!(engine.assign(&at("/shop/x")).len(), 1);
    assert!(engine.assign(&at("/blog")).is_empty());
    let explained = engine.explain(&at("/blog"));
    assert_eq!(explained[0].1, Explanation::OutsideRoute);
    assert!(engine.varies(RequestRoute {
        host: "h",
        path: "/shop/x"
    }));
    assert!(!engine.varies(RequestRoute {
        host: "h",
        path: "/blog"
    }));
    let unscoped = Engine::new(snapshot(
        json!({}),
        json!([routed(json!(null), json!(null))]),
    ))
    .unwrap();
    assert!(unscoped.varies(RequestRoute {
        host: "h",
        path: "/blog"
    }));
    let idle = Engine::new(snapshot(json!({}), json!([]))).unwrap();
    assert!(!idle.varies(RequestRoute {
        host: "h",
        path: "/blog"
    }));
    // No route given (the API without url=): every experiment applies.
    assert_eq!(
        engine.assign(&Subject::new(&units, &attributes, 0)).len(),
        1
    );
}

#[test]
fn routing_takes_each_action_from_the_first_experiment_that_sets_it() {
    let engine = Engine::new(snapshot(
        json!({"beta": "https://beta.example.com", "gamma": "https://gamma.example.com"}),
        json!([
            {"id": "1", "key": "a", "status": "running", "variants": [
                {"id": "a1", "key": "on", "ranges": [[0, 9999]], "route": {"origin": "beta"}}]},
            {"id": "2", "key": "b", "status": "running", "route_all_methods": true, "variants": [
                {"id": "b1", "key": "on", "ranges": [[0, 9999]], "route": {"origin": "gamma", "rewrite": "/v2{path}"}}]},
            {"id": "3", "key": "c", "status": "running", "routes": {"include": ["/old"]}, "variants": [
                {"id": "c1", "key": "on", "ranges": [[0, 9999]], "route": {"redirect": "/new", "status": 307}}]}
        ]),
    ))
    .unwrap();
    let units = Units::from([("user".to_owned(), "u1".to_owned())]);
    let attributes = crate::Attributes::new();
    let subject = Subject::new(&units, &attributes, 0);
    let assigned = engine.assign(&subject);
    let get = Routing::of(&assigned, true, false);
    assert_eq!(get.redirect, Some(("/new", 307)));
    assert_eq!(get.origin, Some("beta"));
    assert_eq!(get.rewrite, Some("/v2{path}"));
    // A POST: only the experiment that opted in acts.
    let post = Routing::of(&assigned, false, false);
    assert_eq!(
        post,
        Routing {
            redirect: None,
            origin: Some("gamma"),
            rewrite: Some("/v2{path}")
        }
    );
    // Bots are never redirected.
    assert_eq!(Routing::of(&assigned, true, true).redirect, None);
}

#[test]
fn rewrites_and_redirect_locations_keep_the_request() {
    assert_eq!(rewrite_path("/v2{path}", "/shop/x"), "/v2/shop/x");
    assert_eq!(rewrite_path("/fixed", "/shop/x"), "/fixed");
    assert_eq!(redirect_location("/new", Some("a=1&b=2")), "/new?a=1&b=2");
    assert_eq!(
        redirect_location("/new?x=1#top", Some("a=1")),
        "/new?x=1&a=1#top"
    );
    assert_eq!(
        redirect_location("https://n.example.com/p", None),
        "https://n.example.com/p"
    );
    assert_eq!(redirect_location("/new", Some("")), "/new");
}

#[test]
fn targets_a_browser_would_read_as_another_host_are_refused() {
    // Browsers read `\` as `/` and drop tabs and newlines: each of these is `//evil.example`.
    for target in [
        "/\\evil.example",
        "/\\/evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/ /evil.example",
        "\\\\evil.example",
        "https://good.example\\@evil.example/",
        "//evil.example",
    ] {
        let found = problems(
            json!({}),
            routed(json!({"include": ["/a"]}), json!({ "redirect": target })),
        );
        assert!(
            found.iter().any(|p| p.contains("must be an http(s) URL")),
            "{target:?}: {found:?}"
        );
    }
    for rewrite in ["/\\evil", "//evil.example/x", "/a\tb"] {
        let found = problems(
            json!({}),
            routed(json!(null), json!({ "rewrite": rewrite })),
        );
        assert!(
            found.iter().any(|p| p.contains("route.rewrite")),
            "{rewrite:?}: {found:?}"
        );
    }
    assert!(!has_ambiguous_characters("/landing-b?x=1#top"));
}
