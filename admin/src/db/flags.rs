//! Feature flags.

use sqlx::types::Json;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{Flag, FlagSpec};

const COLUMNS: &str = "id, environment_id, key::text as key, name, description, spec, archived, \
                       created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    environment_id: Uuid,
    key: String,
    name: String,
    description: String,
    spec: Json<FlagSpec>,
    archived: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<Row> for Flag {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            environment_id: r.environment_id,
            key: r.key,
            name: r.name,
            description: r.description,
            spec: r.spec.0,
            archived: r.archived,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    environment: Uuid,
    key: &str,
    name: &str,
    description: &str,
    spec: &FlagSpec,
) -> Result<Flag, sqlx::Error> {
    let sql = format!(
        "insert into flags (environment_id, key, name, description, spec)
         values ($1, $2, $3, $4, $5) returning {COLUMNS}"
    );
    let row: Row = sqlx::query_as(&sql)
        .bind(environment)
        .bind(key)
        .bind(name)
        .bind(description)
        .bind(Json(spec))
        .fetch_one(db)
        .await?;
    Ok(row.into())
}

/// The environment's live (not archived) flags, in key order.
pub async fn list(db: impl PgExecutor<'_>, environment: Uuid) -> Result<Vec<Flag>, sqlx::Error> {
    let sql = format!(
        "select {COLUMNS} from flags where environment_id = $1 and not archived order by key"
    );
    let rows: Vec<Row> = sqlx::query_as(&sql).bind(environment).fetch_all(db).await?;
    Ok(rows.into_iter().map(Flag::from).collect())
}

/// One flag; `lock` holds its row for the rest of the transaction.
pub async fn get(
    db: impl PgExecutor<'_>,
    id: Uuid,
    lock: bool,
) -> Result<Option<Flag>, sqlx::Error> {
    let suffix = if lock { " for update" } else { "" };
    let sql = format!("select {COLUMNS} from flags where id = $1{suffix}");
    let row: Option<Row> = sqlx::query_as(&sql).bind(id).fetch_optional(db).await?;
    Ok(row.map(Flag::from))
}

pub async fn update(db: impl PgExecutor<'_>, f: &Flag) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update flags set name = $2, description = $3, spec = $4, archived = $5,
         updated_at = now() where id = $1",
    )
    .bind(f.id)
    .bind(&f.name)
    .bind(&f.description)
    .bind(Json(&f.spec))
    .bind(f.archived)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes a flag for good (drafts only: a flag that served anyone is archived instead).
pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("delete from flags where id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}
