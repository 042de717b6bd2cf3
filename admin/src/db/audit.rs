//! The append-only audit log: who changed what, before and after, when — hash-chained, so
//! [`verify`] finds any entry edited or deleted behind the admin's back.

use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
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

/// Appends `change` to the chain. Call inside a transaction: the table lock that keeps the
/// chain linear lasts until it ends.
pub async fn record(conn: &mut PgConnection, change: Change<'_>) -> Result<(), sqlx::Error> {
    // Concurrent writers would read the same predecessor; this lock orders them.
    sqlx::query("lock table audit_log in share row exclusive mode")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "with prev as (select hash from audit_log order by id desc limit 1),
              next as (select nextval(pg_get_serial_sequence('audit_log', 'id')) as id,
                              now() as at)
         insert into audit_log (id, at, actor, action, entity, entity_id, before, after,
                                prev_hash, hash)
         select next.id, next.at, $1, $2, $3, $4, $5, $6, (select hash from prev),
                audit_entry_hash((select hash from prev), next.id, next.at, $1, $2, $3, $4,
                                 $5, $6)
         from next",
    )
    .bind(change.actor)
    .bind(change.action)
    .bind(change.entity)
    .bind(change.entity_id)
    .bind(change.before)
    .bind(change.after)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainReport {
    /// Entries checked, chained or not.
    pub entries: usize,
    /// Entries older than the chain (written before it existed).
    pub unchained: usize,
    /// The last entry's id and hash (hex): keep it elsewhere to detect a rewritten tail.
    pub head: Option<(i64, String)>,
    /// Every break found, naming the entry.
    pub problems: Vec<String>,
}

impl ChainReport {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(sqlx::FromRow)]
struct Link {
    id: i64,
    prev_hash: Option<Vec<u8>>,
    hash: Option<Vec<u8>>,
    expected: Option<Vec<u8>>,
}

/// Walks the whole log: every chained entry must name its predecessor's hash and hash to
/// what its content says; no unchained entry may follow a chained one.
pub async fn verify(db: impl PgExecutor<'_>) -> Result<ChainReport, sqlx::Error> {
    let links = sqlx::query_as::<_, Link>(
        "select id, prev_hash, hash,
                audit_entry_hash(prev_hash, id, at, actor, action, entity, entity_id, before,
                                 after) as expected
         from audit_log order by id",
    )
    .fetch_all(db)
    .await?;
    let mut report = ChainReport {
        entries: links.len(),
        ..ChainReport::default()
    };
    let mut previous: Option<&Link> = None;
    for link in &links {
        let Some(hash) = &link.hash else {
            if previous.is_some_and(|p| p.hash.is_some()) {
                report.problems.push(format!(
                    "entry {} has no hash after chained entries",
                    link.id
                ));
            } else {
                report.unchained += 1;
            }
            previous = Some(link);
            continue;
        };
        let predecessor = previous.and_then(|p| p.hash.as_ref());
        if link.prev_hash.as_ref() != predecessor {
            report.problems.push(format!(
                "entry {} does not follow entry {}: an entry between them was deleted or edited",
                link.id,
                previous.map_or(0, |p| p.id)
            ));
        }
        if link.expected.as_ref() != Some(hash) {
            report.problems.push(format!(
                "entry {} was edited: its content no longer matches its hash",
                link.id
            ));
        }
        previous = Some(link);
    }
    report.head = links
        .last()
        .and_then(|l| l.hash.as_ref().map(|h| (l.id, hex::encode(h))));
    Ok(report)
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
