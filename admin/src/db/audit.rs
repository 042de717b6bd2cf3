//! The append-only audit log: who changed what, before and after, when.

use serde::Serialize;
use serde_json::Value;
use sqlx::PgExecutor;
use time::OffsetDateTime;

/// One audit entry as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A change to record.
#[derive(Debug)]
pub struct Change<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

pub async fn record(db: impl PgExecutor<'_>, change: Change<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into audit_log (actor, action, entity, entity_id, before, after)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(change.actor)
    .bind(change.action)
    .bind(change.entity)
    .bind(change.entity_id)
    .bind(change.before)
    .bind(change.after)
    .execute(db)
    .await?;
    Ok(())
}

/// Entries about one entity (or all, newest last).
pub async fn list(
    db: impl PgExecutor<'_>,
    entity_id: Option<&str>,
) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as::<_, Entry>(
        "select id, at, actor, action, entity, entity_id, before, after from audit_log
         where $1::text is null or entity_id = $1 order by id",
    )
    .bind(entity_id)
    .fetch_all(db)
    .await
}
