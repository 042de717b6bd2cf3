//! An experiment's phases: the salts it has run under.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// One phase of an experiment.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub number: i32,
    pub salt: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// The recorded phases, oldest first (none until a second phase begins).
pub async fn list(db: impl PgExecutor<'_>, experiment: Uuid) -> Result<Vec<Phase>, sqlx::Error> {
    sqlx::query_as(
        "select number, salt, started_at from experiment_phases where experiment_id = $1
         order by number",
    )
    .bind(experiment)
    .fetch_all(db)
    .await
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    experiment: Uuid,
    number: i32,
    salt: &str,
    started_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into experiment_phases (experiment_id, number, salt, started_at)
         values ($1, $2, $3, $4)",
    )
    .bind(experiment)
    .bind(number)
    .bind(salt)
    .bind(started_at)
    .execute(db)
    .await?;
    Ok(())
}
