//! Published snapshots: one immutable row per (environment, version).

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredSnapshot {
    pub version: i64,
    pub sha256: String,
    pub body: String,
}

pub async fn get(
    db: impl PgExecutor<'_>,
    environment: Uuid,
    version: i64,
) -> Result<Option<StoredSnapshot>, sqlx::Error> {
    sqlx::query_as(
        "select version, sha256, body from snapshots where environment_id = $1 and version = $2",
    )
    .bind(environment)
    .bind(version)
    .fetch_optional(db)
    .await
}

pub async fn latest_version(
    db: impl PgExecutor<'_>,
    environment: Uuid,
) -> Result<i64, sqlx::Error> {
    let (max,): (Option<i64>,) =
        sqlx::query_as("select max(version) from snapshots where environment_id = $1")
            .bind(environment)
            .fetch_one(db)
            .await?;
    Ok(max.unwrap_or(0))
}

pub struct NewSnapshot<'a> {
    pub environment: Uuid,
    pub version: i64,
    pub sha256: &'a str,
    pub body: &'a str,
    pub published_at: time::OffsetDateTime,
    pub published_by: &'a str,
}

pub async fn insert(db: impl PgExecutor<'_>, s: NewSnapshot<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into snapshots (environment_id, version, sha256, body, published_at, published_by)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(s.environment)
    .bind(s.version)
    .bind(s.sha256)
    .bind(s.body)
    .bind(s.published_at)
    .bind(s.published_by)
    .execute(db)
    .await?;
    Ok(())
}

/// One published version without its body, for the history list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub version: i64,
    pub sha256: String,
    pub published_at: time::OffsetDateTime,
    pub published_by: String,
    /// How many experiments the body holds, counted by Postgres so the list stays cheap.
    pub experiments: i32,
}

/// Every version of the environment, newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    environment: Uuid,
) -> Result<Vec<VersionRow>, sqlx::Error> {
    sqlx::query_as(
        "select version, sha256, published_at, published_by,
                coalesce(jsonb_array_length(body::jsonb -> 'experiments'), 0) as experiments
         from snapshots where environment_id = $1 order by version desc",
    )
    .bind(environment)
    .fetch_all(db)
    .await
}

/// One published version that carried an experiment, and how.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Carried {
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
    #[serde(skip)]
    pub salt: String,
    /// The experiment's status in that version (`running`, `paused`, `draft`…).
    pub status: String,
}

/// The versions of `environment` whose body carries experiment `key`, oldest first, with the
/// salt and status it had there (read by Postgres from the exact bodies published).
pub async fn carrying(
    db: impl PgExecutor<'_>,
    environment: Uuid,
    key: &str,
) -> Result<Vec<Carried>, sqlx::Error> {
    sqlx::query_as(
        "select s.version, s.published_at, e ->> 'salt' as salt,
                coalesce(e ->> 'status', 'running') as status
         from snapshots s,
              jsonb_array_elements(coalesce(s.body::jsonb -> 'experiments', '[]'::jsonb)) e
         where s.environment_id = $1 and e ->> 'key' = $2 and e ? 'salt'
         order by s.version",
    )
    .bind(environment)
    .bind(key)
    .fetch_all(db)
    .await
}
