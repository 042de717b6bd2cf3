//! Planner statistics of the analysis tables, kept current by the ingest path. Results join
//! every unit of a cohort with its events; planned without statistics (a freshly loaded
//! database, before autovacuum's first look) Postgres picks nested loops over millions of rows
//! and a results query that takes half a second runs for minutes. Ingest knows when the tables
//! have grown, so it analyses them then.

use sqlx::PgPool;

/// The tables results are read from.
const TABLES: [&str; 2] = ["exposures", "events"];

/// Rows changed since the last analysis that make another worthwhile: a tenth of the table
/// (as autovacuum's default) plus this many.
const SLACK_ROWS: f64 = 1000.0;

/// Analyses each analysis table that was never analysed or has changed by more than a tenth
/// since; returns the tables analysed. Another admin analysing the same table at the same
/// moment is left to it.
pub async fn refresh(pool: &PgPool) -> Result<Vec<&'static str>, sqlx::Error> {
    // reltuples is -1 until a table's first analysis; the counter may trail by a second.
    let views: Vec<(String, f32, i64)> = sqlx::query_as(
        "select c.relname::text, c.reltuples, coalesce(s.n_mod_since_analyze, 0) \
         from pg_class c left join pg_stat_user_tables s on s.relid = c.oid \
         where c.oid = any(array[to_regclass($1), to_regclass($2)])",
    )
    .bind(TABLES[0])
    .bind(TABLES[1])
    .fetch_all(pool)
    .await?;
    let mut analysed = Vec::new();
    for table in TABLES {
        let stale = views.iter().any(|(name, rows, changed)| {
            name == table && (*rows < 0.0 || *changed as f64 > f64::from(*rows) * 0.1 + SLACK_ROWS)
        });
        if !stale {
            continue;
        }
        let mut tx = pool.begin().await?;
        let mine: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock(hashtext($1))")
            .bind(format!("cleave analyze {table}"))
            .fetch_one(&mut *tx)
            .await?;
        if mine {
            // A fixed table name, never input.
            sqlx::query(&format!("analyze {table}"))
                .execute(&mut *tx)
                .await?;
            analysed.push(table);
        }
        tx.commit().await?;
    }
    Ok(analysed)
}
