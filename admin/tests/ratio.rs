//! Ratio metrics against a real Postgres: revenue per order per variant, its delta-method
//! interval recomputed here from the units' own numbers, and CUPED with the units' orders and
//! revenue before their exposure, and the same ratio followed day by day.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

mod common;
#[path = "analysis/support.rs"]
mod support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{app, event, exposure, ingest, now_ms, running_experiment};

const UNITS: usize = 300;

/// Unit `i` of an arm: orders after exposure, orders in the two weeks before, and the value of
/// each order.
fn unit(i: usize, per_order: f64) -> (usize, usize, f64) {
    (1 + i % 3, i % 3 + i % 2, per_order + (i % 5) as f64)
}

/// The ratio of means and the delta-method per-unit variance, from each unit's (n, d).
fn delta(units: &[(f64, f64)]) -> (f64, f64) {
    let count = units.len() as f64;
    let (mn, md) = (
        units.iter().map(|u| u.0).sum::<f64>() / count,
        units.iter().map(|u| u.1).sum::<f64>() / count,
    );
    let r = mn / md;
    let lin: Vec<f64> = units.iter().map(|(n, d)| n - r * d).collect();
    let ml = lin.iter().sum::<f64>() / count;
    let var = lin.iter().map(|l| (l - ml).powi(2)).sum::<f64>() / (count - 1.0);
    (r, var / (md * md))
}

#[sqlx::test(migrations = "./migrations")]
async fn revenue_per_order_is_compared_by_the_delta_method_and_under_cuped(pool: PgPool) {
    let app = app(pool);
    let id = running_experiment(&app).await;
    app.ok(
        Method::POST,
        "/metric-definitions",
        json!({"key": "orders", "kind": "continuous", "direction": "increase"}),
    )
    .await;
    let (status, aov) = app
        .call(
            Method::POST,
            "/metric-definitions",
            Some(
                json!({"key": "revenue_per_order", "kind": "ratio", "direction": "increase",
                        "numerator": "revenue", "denominator": "orders"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{aov}");
    assert_eq!(
        (aov["numerator"].clone(), aov["denominator"].clone()),
        (json!("revenue"), json!("orders"))
    );
    app.ok(
        Method::PUT,
        &format!("/experiments/{id}/metrics"),
        json!({"metrics": [{"metric": "revenue_per_order", "role": "primary"}]}),
    )
    .await;

    let exposed = now_ms() - 3_600_000;
    let mut observed: Vec<Vec<(f64, f64)>> = Vec::new();
    for (variant, per_order) in [("control", 10.0), ("treatment", 12.0)] {
        let (mut exposures, mut events, mut mine) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..UNITS {
            let name = format!("{variant}-{i}");
            exposures.push(exposure("prod", "checkout", variant, &name, exposed));
            let (orders, before, value) = unit(i, per_order);
            for (j, at) in (0..orders)
                .map(|j| (j, exposed + 60_000))
                .chain((0..before).map(|j| (j + 10, exposed - 3 * 86_400_000)))
            {
                events.push(event(&format!("o-{name}-{j}"), &name, "orders", 1.0, at));
                events.push(event(&format!("r-{name}-{j}"), &name, "revenue", value, at));
            }
            mine.push((orders as f64 * value, orders as f64));
        }
        let (status, body) = ingest(
            &app,
            json!({"environment": "prod", "exposures": exposures, "events": events}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        observed.push(mine);
    }

    let (status, r) = app
        .call(Method::GET, &format!("/experiments/{id}/results"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let metric = &r["metrics"][0];
    assert_eq!(metric["kind"], "ratio");
    let (rc, vc) = delta(&observed[0]);
    let (rt, vt) = delta(&observed[1]);
    let near = |v: &Value, want: f64| {
        let got = v.as_f64().unwrap();
        assert!((got - want).abs() <= want.abs() * 1e-9, "{got} vs {want}");
    };
    near(&metric["variants"][0]["mean"], rc);
    near(&metric["variants"][0]["variance"], vc);
    near(&metric["variants"][1]["mean"], rt);
    let c = &metric["comparisons"][0];
    let se = (vc / UNITS as f64 + vt / UNITS as f64).sqrt();
    near(&c["difference"], rt - rc);
    near(&c["ciLow"], rt - rc - 1.959_963_984_540_054 * se);
    near(&c["ciHigh"], rt - rc + 1.959_963_984_540_054 * se);
    assert_eq!(c["verdict"], "better", "{c}");
    assert!(c["bayesian"]["chanceToBeatControl"].as_f64().unwrap() > 0.99);
    assert_eq!(r["plan"]["metric"], "revenue_per_order");

    // Orders and revenue before exposure predict the ratio after it: CUPED narrows it.
    let cuped = &metric["cuped"];
    assert!(
        cuped["varianceReduction"].as_f64().unwrap() > 0.0,
        "{cuped}"
    );
    let adjusted = &cuped["comparisons"][0];
    let width = |x: &Value| x["ciHigh"].as_f64().unwrap() - x["ciLow"].as_f64().unwrap();
    assert!(width(adjusted) < width(c), "{adjusted} vs {c}");
    let (_, off) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/results?cuped_days=0"),
            None,
        )
        .await;
    assert!(off["metrics"][0]["cuped"].is_null());

    // The timeline follows the ratio too: today's point is today's delta-method comparison.
    let (status, t) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/timeline?metric=revenue_per_order"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let today = t["days"].as_array().unwrap().last().unwrap();
    near(&today["variants"][0]["mean"], rc);
    near(&today["variants"][1]["variance"], vt);
    for k in [
        "difference",
        "ciLow",
        "ciHigh",
        "pValue",
        "sequentialPValue",
    ] {
        near(&today["comparisons"][0][k], c[k].as_f64().unwrap());
    }
}
