//! Audiences: reusable targeting segments.

use cleave_core::snapshot::Rule;
use sqlx::types::Json;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::Audience;

const COLUMNS: &str = "id, key::text as key, name, description, targeting, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    key: String,
    name: String,
    description: String,
    targeting: Json<Vec<Rule>>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<Row> for Audience {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            key: r.key,
            name: r.name,
            description: r.description,
            targeting_rules: r.targeting.0,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    key: &str,
    name: &str,
    description: &str,
    targeting: &[Rule],
) -> Result<Audience, sqlx::Error> {
    let sql = format!(
        "insert into audiences (key, name, description, targeting) values ($1, $2, $3, $4)
         returning {COLUMNS}"
    );
    let row: Row = sqlx::query_as(&sql)
        .bind(key)
        .bind(name)
        .bind(description)
        .bind(Json(targeting))
        .fetch_one(db)
        .await?;
    Ok(row.into())
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Audience>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from audiences order by key");
    let rows: Vec<Row> = sqlx::query_as(&sql).fetch_all(db).await?;
    Ok(rows.into_iter().map(Audience::from).collect())
}

/// One audience; `lock` holds its row for the rest of the transaction.
pub async fn get(
    db: impl PgExecutor<'_>,
    id: Uuid,
    lock: bool,
) -> Result<Option<Audience>, sqlx::Error> {
    let suffix = if lock { " for update" } else { "" };
    let sql = format!("select {COLUMNS} from audiences where id = $1{suffix}");
    let row: Option<Row> = sqlx::query_as(&sql).bind(id).fetch_optional(db).await?;
    Ok(row.map(Audience::from))
}

pub async fn update(db: impl PgExecutor<'_>, a: &Audience) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update audiences set name = $2, description = $3, targeting = $4, updated_at = now()
         where id = $1",
    )
    .bind(a.id)
    .bind(&a.name)
    .bind(&a.description)
    .bind(Json(&a.targeting_rules))
    .execute(db)
    .await?;
    Ok(())
}

pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("delete from audiences where id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}
