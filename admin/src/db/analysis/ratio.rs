//! The per-variant moments a ratio metric's results are computed from.

use sqlx::{FromRow, PgExecutor};

use super::{bind_cohort, Cohort, DAYS};

/// One variant's moments of a ratio metric: per unit the numerator `n` and denominator `d`
/// (sums of the two events' values at or after its first exposure) and the same sums over the
/// `pre_days` before it (`p`, `q`), with their sample covariances.
#[derive(Debug, Clone, FromRow)]
pub struct RatioSums {
    pub variant: String,
    pub units: i64,
    /// Units with a denominator above 0.
    pub with_denominator: i64,
    pub mean_n: f64,
    pub mean_d: f64,
    pub mean_p: f64,
    pub mean_q: f64,
    pub nn: f64,
    pub nd: f64,
    pub np: f64,
    pub nq: f64,
    pub dd: f64,
    pub dp: f64,
    pub dq: f64,
    pub pp: f64,
    pub pq: f64,
    pub qq: f64,
}

impl RatioSums {
    /// The four means and their covariance matrix, in the order n, d, p, q.
    pub fn matrix(&self) -> ([f64; 4], [[f64; 4]; 4]) {
        let means = [self.mean_n, self.mean_d, self.mean_p, self.mean_q];
        let c = [
            [self.nn, self.nd, self.np, self.nq],
            [self.nd, self.dd, self.dp, self.dq],
            [self.np, self.dp, self.pp, self.pq],
            [self.nq, self.dq, self.pq, self.qq],
        ];
        (means, c)
    }
}

/// Per variant, the moments of `numerator` over `denominator` for the phase's units (units
/// without events count as 0 in both; a minute of clock skew allowed, as for other metrics).
pub async fn ratio_sums(
    db: impl PgExecutor<'_>,
    cohort: &Cohort<'_>,
    (numerator, denominator): (&str, &str),
    pre_days: i32,
) -> Result<Vec<RatioSums>, sqlx::Error> {
    let cov = |a: &str, b: &str| format!("coalesce(covar_samp({a}, {b}), 0) as {a}{b}");
    let pairs = [
        ("n", "n"),
        ("n", "d"),
        ("n", "p"),
        ("n", "q"),
        ("d", "d"),
        ("d", "p"),
        ("d", "q"),
        ("p", "p"),
        ("p", "q"),
        ("q", "q"),
    ];
    let covariances: Vec<String> = pairs.iter().map(|(a, b)| cov(a, b)).collect();
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
           avg(n) as mean_n, avg(d) as mean_d, avg(p) as mean_p, avg(q) as mean_q, {} \
         from valued group by variant",
        cohort.units(),
        covariances.join(", ")
    );
    bind_cohort!(sqlx::query_as(&sql), cohort)
        .bind(numerator)
        .bind(denominator)
        .bind(pre_days)
        .fetch_all(db)
        .await
}

/// One variant's ratio moments (no pre-period) as they stood at the end of one day (UTC).
#[derive(Debug, Clone, FromRow)]
pub struct DailyRatioSums {
    pub day: String,
    pub variant: String,
    pub units: i64,
    pub with_denominator: i64,
    pub mean_n: f64,
    pub mean_d: f64,
    pub nn: f64,
    pub nd: f64,
    pub dd: f64,
}

/// [`ratio_sums`] at the end of each day from the phase's first exposure to today, without
/// the pre-period: the units first exposed by then and their events until then.
pub async fn daily_ratio_sums(
    db: impl PgExecutor<'_>,
    cohort: &Cohort<'_>,
    (numerator, denominator): (&str, &str),
) -> Result<Vec<DailyRatioSums>, sqlx::Error> {
    let sql = format!(
        "with {}, {DAYS}, \
         valued as ( \
           select d.day, u.variant, \
             coalesce(sum(ev.value) filter (where ev.metric = $5), 0) as num, \
             coalesce(sum(ev.value) filter (where ev.metric = $6), 0) as den \
           from days d join units u on u.first_exposed < d.cutoff \
           left join events ev \
             on ev.environment_id = $1 and ev.metric in ($5, $6) and ev.unit = u.unit \
             and ev.occurred_at >= u.first_exposed - interval '1 minute' \
             and ev.occurred_at < d.cutoff \
           group by d.day, u.variant, u.unit) \
         select day::text as day, variant, count(*) as units, \
           count(*) filter (where den > 0) as with_denominator, \
           avg(num) as mean_n, avg(den) as mean_d, coalesce(var_samp(num), 0) as nn, \
           coalesce(covar_samp(num, den), 0) as nd, coalesce(var_samp(den), 0) as dd \
         from valued group by day, variant order by day, variant",
        cohort.units()
    );
    bind_cohort!(sqlx::query_as(&sql), cohort)
        .bind(numerator)
        .bind(denominator)
        .fetch_all(db)
        .await
}
