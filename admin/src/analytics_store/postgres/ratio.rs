//! The per-variant sums a ratio metric's results are computed from.

use cleave_core::stats::RatioSums;
use sqlx::{FromRow, PgExecutor};

use super::{bind_cohort, count, units, Cohort, DAYS};

/// The four per-unit values, in [`RatioSums`] order.
const VALUES: [&str; 4] = ["n", "d", "p", "q"];

/// `sum(a * b) as ab` for every pair `a <= b` of the first `k` values.
fn products(k: usize) -> String {
    let mut out = Vec::new();
    for (i, a) in VALUES[..k].iter().enumerate() {
        for b in &VALUES[i..k] {
            out.push(format!("sum({a} * {b}) as {a}{b}"));
        }
    }
    out.join(", ")
}

#[derive(Debug, Clone, FromRow)]
struct RatioRow {
    #[sqlx(default)]
    day: Option<String>,
    variant: String,
    units: i64,
    with_denominator: i64,
    n: f64,
    d: f64,
    #[sqlx(default)]
    p: f64,
    #[sqlx(default)]
    q: f64,
    nn: f64,
    nd: f64,
    dd: f64,
    #[sqlx(default)]
    np: f64,
    #[sqlx(default)]
    nq: f64,
    #[sqlx(default)]
    dp: f64,
    #[sqlx(default)]
    dq: f64,
    #[sqlx(default)]
    pp: f64,
    #[sqlx(default)]
    pq: f64,
    #[sqlx(default)]
    qq: f64,
}

impl RatioRow {
    fn sums(&self) -> RatioSums {
        RatioSums {
            units: count(self.units),
            with_denominator: count(self.with_denominator),
            sums: [self.n, self.d, self.p, self.q],
            products: [
                [self.nn, self.nd, self.np, self.nq],
                [0.0, self.dd, self.dp, self.dq],
                [0.0, 0.0, self.pp, self.pq],
                [0.0, 0.0, 0.0, self.qq],
            ],
        }
    }
}

/// Per variant, the sums of `numerator` (`n`) and `denominator` (`d`) per unit (sums of the
/// two events' values at or after its first exposure) and of the same over the `pre_days`
/// before it (`p`, `q`), with their cross products. Units without events count as 0 in all
/// four; a minute of clock skew is allowed, as for other metrics.
pub async fn ratio_sums(
    db: impl PgExecutor<'_>,
    cohort: &Cohort<'_>,
    (numerator, denominator): (&str, &str),
    pre_days: i32,
) -> Result<Vec<(String, RatioSums)>, sqlx::Error> {
    let sql = format!(
        "with {}, valued as ( \
           select u.unit, u.variant, \
             coalesce(sum(ev.value) filter (where ev.metric = $5 and after), 0) as n, \
             coalesce(sum(ev.value) filter (where ev.metric = $6 and after), 0) as d, \
             coalesce(sum(ev.value) filter (where ev.metric = $5 and not after), 0) as p, \
             coalesce(sum(ev.value) filter (where ev.metric = $6 and not after), 0) as q \
           from units u left join lateral ( \
             select e.metric, e.value, e.occurred_at >= u.first_exposed - interval '1 minute' as after \
             from events e \
             where e.environment_id = $1 and e.unit = u.unit and e.metric in ($5, $6) \
               and e.occurred_at >= least(u.first_exposed - make_interval(days => $7), \
                 u.first_exposed - interval '1 minute') \
           ) ev on true \
           group by u.unit, u.variant) \
         select variant, count(*) as units, count(*) filter (where d > 0) as with_denominator, \
           sum(n) as n, sum(d) as d, sum(p) as p, sum(q) as q, {} \
         from valued group by variant",
        units(cohort),
        products(4)
    );
    let rows: Vec<RatioRow> = bind_cohort!(sqlx::query_as(&sql), cohort)
        .bind(numerator)
        .bind(denominator)
        .bind(pre_days)
        .fetch_all(db)
        .await?;
    Ok(rows.iter().map(|r| (r.variant.clone(), r.sums())).collect())
}

/// [`ratio_sums`] at the end of each day from the phase's first exposure to the day of
/// `now_ms`, without the pre-period: the units first exposed by then and their events until
/// then, as `(day, variant, sums)`.
pub async fn daily_ratio_sums(
    db: impl PgExecutor<'_>,
    cohort: &Cohort<'_>,
    (numerator, denominator): (&str, &str),
    now_ms: i64,
) -> Result<Vec<(String, String, RatioSums)>, sqlx::Error> {
    let sql = format!(
        "with {}, {DAYS}, \
         valued as ( \
           select d.day, u.variant, \
             coalesce(sum(ev.value) filter (where ev.metric = $5), 0) as n, \
             coalesce(sum(ev.value) filter (where ev.metric = $6), 0) as d \
           from days d join units u on u.first_exposed < d.cutoff \
           left join events ev \
             on ev.environment_id = $1 and ev.metric in ($5, $6) and ev.unit = u.unit \
             and ev.occurred_at >= u.first_exposed - interval '1 minute' \
             and ev.occurred_at < d.cutoff \
           group by d.day, u.variant, u.unit) \
         select day::text as day, variant, count(*) as units, \
           count(*) filter (where d > 0) as with_denominator, sum(n) as n, sum(d) as d, {} \
         from valued group by day, variant order by day, variant",
        units(cohort),
        products(2)
    );
    let rows: Vec<RatioRow> = bind_cohort!(sqlx::query_as(&sql), cohort)
        .bind(numerator)
        .bind(denominator)
        .bind(now_ms)
        .fetch_all(db)
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.day.clone().unwrap_or_default(),
                r.variant.clone(),
                r.sums(),
            )
        })
        .collect())
}
