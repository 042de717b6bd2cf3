//! Environments and the version their KV pointer names.

use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::model::{Environment, EnvironmentSettings};

const COLUMNS: &str = "id, name::text as name, current_version, settings, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    current_version: Option<i64>,
    settings: Json<EnvironmentSettings>,
    created_at: time::OffsetDateTime,
}

impl From<Row> for Environment {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            name: r.name,
            current_version: r.current_version,
            identity_warnings: r.settings.0.identity_warnings(),
            settings: r.settings.0,
            created_at: r.created_at,
        }
    }
}

pub async fn insert(db: impl PgExecutor<'_>, name: &str) -> Result<Environment, sqlx::Error> {
    let sql = format!("insert into environments (name) values ($1) returning {COLUMNS}");
    let row: Row = sqlx::query_as(&sql).bind(name).fetch_one(db).await?;
    Ok(row.into())
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Environment>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from environments order by name");
    let rows: Vec<Row> = sqlx::query_as(&sql).fetch_all(db).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Environment>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from environments where id = $1");
    let row: Option<Row> = sqlx::query_as(&sql).bind(id).fetch_optional(db).await?;
    Ok(row.map(Into::into))
}

pub async fn by_name(
    db: impl PgExecutor<'_>,
    name: &str,
) -> Result<Option<Environment>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from environments where name = $1::text");
    let row: Option<Row> = sqlx::query_as(&sql).bind(name).fetch_optional(db).await?;
    Ok(row.map(Into::into))
}

/// Locks the environment row for the rest of the transaction: publishes of one environment
/// run one at a time, so versions and pointer flips never interleave.
pub async fn lock(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Environment>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from environments where id = $1 for update");
    let row: Option<Row> = sqlx::query_as(&sql).bind(id).fetch_optional(db).await?;
    Ok(row.map(Into::into))
}

pub async fn set_current_version(
    db: impl PgExecutor<'_>,
    id: Uuid,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update environments set current_version = $2 where id = $1")
        .bind(id)
        .bind(version)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn set_settings(
    db: impl PgExecutor<'_>,
    id: Uuid,
    settings: &EnvironmentSettings,
) -> Result<(), sqlx::Error> {
    sqlx::query("update environments set settings = $2 where id = $1")
        .bind(id)
        .bind(Json(settings))
        .execute(db)
        .await?;
    Ok(())
}

/// Remembers the pointer last written for the environment.
pub async fn set_pointer(
    db: impl PgExecutor<'_>,
    id: Uuid,
    pointer: &cleave_core::pointer::Pointer,
) -> Result<(), sqlx::Error> {
    sqlx::query("update environments set pointer = $2 where id = $1")
        .bind(id)
        .bind(Json(pointer))
        .execute(db)
        .await?;
    Ok(())
}

/// The pointer last written for the environment, if any.
pub async fn pointer(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<cleave_core::pointer::Pointer>, sqlx::Error> {
    let row: Option<(Option<Json<cleave_core::pointer::Pointer>>,)> =
        sqlx::query_as("select pointer from environments where id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.and_then(|(p,)| p).map(|p| p.0))
}
