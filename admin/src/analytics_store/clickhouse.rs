//! The ClickHouse analytics store: inserts go through the Distributed tables, which put each
//! unit's records on the shard of `cityHash64(unit)`; reads go to every shard at once, each
//! computes its units' sums on its local tables, and the answers are added up here.
//!
//! The SQL is written for ClickHouse 18.16 (what Debian packages) and current releases alike:
//! values are bound client-side (no server-side parameters), no CTEs, no Nullable columns
//! (an absent value is `''`), aliases on every joined subquery, and output aliases never
//! equal to a column they aggregate.

mod daily;
mod queries;
pub mod schema;
mod sums;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use ::clickhouse::{Client, Compression, Row};
use cleave_core::exposure::{utc_day, Exposure};
use cleave_core::ingest::Event;
use futures_util::future::try_join_all;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use schema::{Scope, MIGRATIONS, MIGRATIONS_TABLE};

pub type Error = ::clickhouse::error::Error;

/// A statement the store sent, kept when [`Store::recording`]: what a check replays on
/// another engine.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    /// `ddl`, `insert` or `query`.
    pub kind: &'static str,
    /// For DDL, whether it needs the cluster (`distributed`) or runs anywhere (`local`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    pub sql: String,
    /// An insert's rows (as written to the shard-local table), a query's answer from every
    /// shard.
    pub rows: Vec<serde_json::Value>,
}

/// A ClickHouse cluster: one client per shard, the database and the cluster's name.
#[derive(Clone)]
pub struct Store {
    shards: Vec<Client>,
    hosts: Vec<String>,
    database: String,
    cluster: String,
    journal: Option<Arc<Mutex<Vec<Statement>>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouse")
            .field("shards", &self.hosts)
            .field("database", &self.database)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// A value bound into a statement, escaped by the client.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum Param {
    Text(String),
    Int(i64),
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<i64> for Param {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

#[derive(Debug, Clone, Row, Serialize)]
struct ExposureRow {
    environment: String,
    id: String,
    experiment: String,
    variant: String,
    unit_type: String,
    unit: String,
    salt: String,
    day: String,
    at_ms: i64,
    excluded: String,
    source: String,
    country: String,
    device: String,
    browser: String,
    version: u64,
}

#[derive(Debug, Clone, Row, Serialize)]
struct EventRow {
    environment: String,
    event_id: String,
    unit: String,
    metric: String,
    value: f64,
    at_ms: i64,
    day: String,
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

impl Store {
    /// The cluster `url` names: `clickhouse://[user[:password]@]host:port[,host:port…]/database`
    /// with one HTTP address per shard, and `?cluster=name` when the cluster the Distributed
    /// tables route through is not called `cleave`.
    ///
    /// # Errors
    /// What is wrong with the URL.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "CLEAVE_ANALYTICS_URL {url:?}: {why} \
                 (expected clickhouse://[user[:password]@]host:port[,host:port…]/database[?cluster=name])"
            )
        };
        let rest = url
            .strip_prefix("clickhouse://")
            .ok_or_else(|| bad("not a clickhouse:// URL"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, database) = rest
            .split_once('/')
            .ok_or_else(|| bad("no database after the hosts"))?;
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, authority),
        };
        if !is_identifier(database) {
            return Err(bad(
                "the database must be a plain name (letters, digits, _)",
            ));
        }
        let mut cluster = "cleave".to_owned();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("cluster", name)) if is_identifier(name) => cluster = name.to_owned(),
                _ => return Err(bad(&format!("unknown or malformed option {pair:?}"))),
            }
        }
        let hosts: Vec<String> = hosts.split(',').map(str::to_owned).collect();
        if hosts.iter().any(|h| h.is_empty() || h.contains('/')) {
            return Err(bad("an empty host"));
        }
        let shards = hosts
            .iter()
            .map(|host| {
                let mut client = Client::default()
                    .with_url(format!("http://{host}"))
                    .with_database(database)
                    .with_compression(Compression::None)
                    // 18.16 has no RowBinaryWithNamesAndTypes to validate against.
                    .with_validation(false)
                    .with_option("output_format_json_quote_64bit_integers", "0");
                if let Some(c) = credentials {
                    let (user, password) = c.split_once(':').unwrap_or((c, ""));
                    client = client.with_user(user).with_password(password);
                }
                client
            })
            .collect();
        Ok(Self {
            shards,
            hosts,
            database: database.to_owned(),
            cluster,
            journal: None,
        })
    }

    /// The same store, keeping every statement it sends ([`Self::journal`]).
    #[must_use]
    pub fn recording(mut self) -> Self {
        self.journal = Some(Arc::default());
        self
    }

    /// The statements sent since [`Self::recording`], in order.
    pub fn journal(&self) -> Vec<Statement> {
        self.journal
            .as_ref()
            .and_then(|j| j.lock().ok().map(|j| j.clone()))
            .unwrap_or_default()
    }

    fn record(&self, statement: Statement) {
        if let Some(journal) = &self.journal {
            if let Ok(mut j) = journal.lock() {
                j.push(statement);
            }
        }
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("{db}", &self.database)
            .replace("{cluster}", &self.cluster)
    }

    /// Creates the database and applies the migrations each shard lacks, shard by shard.
    ///
    /// # Errors
    /// The first statement a shard refuses.
    pub async fn migrate(&self) -> Result<(), Error> {
        for (index, shard) in self.shards.iter().enumerate() {
            // The database may not exist yet: these two run without it.
            let bare = shard.clone().with_database("default");
            let create = format!("CREATE DATABASE IF NOT EXISTS {}", self.database);
            self.ddl(&bare, index, None, &create).await?;
            self.ddl(&bare, index, None, &self.fill(MIGRATIONS_TABLE))
                .await?;
            let applied: HashSet<u32> = bare
                .query(&self.fill("SELECT version FROM {db}.schema_migrations"))
                .fetch_all::<u32>()
                .await?
                .into_iter()
                .collect();
            for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
                for (scope, statement) in migration.statements {
                    self.ddl(&bare, index, Some(*scope), &self.fill(statement))
                        .await?;
                }
                let mark = self.fill(
                    "INSERT INTO {db}.schema_migrations (version, name, applied_ms) \
                     VALUES (?, ?, toInt64(now()) * 1000)",
                );
                bare.query(&mark)
                    .bind(migration.version)
                    .bind(migration.name)
                    .execute()
                    .await?;
                tracing::info!(shard = %self.hosts[index], version = migration.version,
                    name = migration.name, "clickhouse migration applied");
            }
        }
        Ok(())
    }

    /// Drops the database on every shard (benchmarks and tests clean up with it).
    ///
    /// # Errors
    /// The first shard that refuses.
    pub async fn drop_database(&self) -> Result<(), Error> {
        for shard in &self.shards {
            let bare = shard.clone().with_database("default");
            bare.query(&format!("DROP DATABASE IF EXISTS {}", self.database))
                .execute()
                .await?;
        }
        Ok(())
    }

    async fn ddl(
        &self,
        shard: &Client,
        index: usize,
        scope: Option<Scope>,
        sql: &str,
    ) -> Result<(), Error> {
        shard.query(sql).execute().await?;
        if index == 0 {
            self.record(Statement {
                kind: "ddl",
                scope: Some(match scope {
                    Some(Scope::Distributed) => "distributed",
                    _ => "local",
                }),
                sql: sql.to_owned(),
                rows: Vec::new(),
            });
        }
        Ok(())
    }

    /// Writes checked records through the Distributed tables, synchronously: when this
    /// answers, every shard has its part. Answers how many rows were written of each.
    ///
    /// # Errors
    /// The insert a shard refused. A block is kept whole or not at all; a retried delivery
    /// writes the same ids again, which the tables collapse.
    pub async fn insert(
        &self,
        environment: Uuid,
        exposures: &[Exposure],
        events: &[Event],
    ) -> Result<(u64, u64), Error> {
        let environment = environment.to_string();
        let exposure_rows: Vec<ExposureRow> = exposures
            .iter()
            .map(|e| ExposureRow {
                environment: environment.clone(),
                id: e.id.clone(),
                experiment: e.experiment.clone(),
                variant: e.variant.clone(),
                unit_type: e.unit_type.clone(),
                unit: e.unit.clone(),
                salt: e.salt.clone(),
                day: e.day.clone(),
                at_ms: e.at_ms,
                excluded: e
                    .excluded
                    .map(|x| x.as_str().to_owned())
                    .unwrap_or_default(),
                source: e.source.map(|x| x.as_str().to_owned()).unwrap_or_default(),
                country: e.slice.country.clone().unwrap_or_default(),
                device: e.slice.device.clone().unwrap_or_default(),
                browser: e.slice.browser.clone().unwrap_or_default(),
                // The earliest copy of an id has the largest version and is the one kept.
                version: u64::try_from(i64::MAX.saturating_sub(e.at_ms.max(0))).unwrap_or(0),
            })
            .collect();
        let event_rows: Vec<EventRow> = events
            .iter()
            .map(|e| EventRow {
                environment: environment.clone(),
                event_id: e.event_id.clone(),
                unit: e.unit.clone(),
                metric: e.metric.clone(),
                value: e.value,
                at_ms: e.timestamp_ms,
                day: utc_day(e.timestamp_ms).unwrap_or_default(),
            })
            .collect();
        self.write("exposures", &exposure_rows).await?;
        self.write("events", &event_rows).await?;
        Ok((exposures.len() as u64, events.len() as u64))
    }

    async fn write<T>(&self, table: &str, rows: &[T]) -> Result<(), Error>
    where
        T: Row + Serialize + for<'a> Row<Value<'a> = T> + 'static,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let Some(first) = self.shards.first() else {
            return Ok(());
        };
        let mut insert = first
            .insert::<T>(table)
            .await?
            .with_option("insert_distributed_sync", "1");
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        if self.journal.is_some() {
            self.record(Statement {
                kind: "insert",
                scope: None,
                sql: self.fill(&format!(
                    "INSERT INTO {{db}}.{table}_local FORMAT JSONEachRow"
                )),
                rows: rows
                    .iter()
                    .filter_map(|r| serde_json::to_value(r).ok())
                    .collect(),
            });
        }
        Ok(())
    }

    /// Runs one query on every shard at once; answers all their rows.
    async fn each_shard<T>(&self, sql: &str, params: &[Param]) -> Result<Vec<T>, Error>
    where
        T: Row + DeserializeOwned + Serialize + for<'a> Row<Value<'a> = T> + 'static,
    {
        let sql = self.fill(sql);
        let mut rendered = String::new();
        let runs = self.shards.iter().map(|shard| {
            let query = params
                .iter()
                .fold(shard.query(&sql), |q, p| q.bind(p.clone()));
            if rendered.is_empty() {
                rendered = query.sql_display().to_string();
            }
            query.fetch_all::<T>()
        });
        let answers: Vec<Vec<T>> = try_join_all(runs).await?;
        let rows: Vec<T> = answers.into_iter().flatten().collect();
        if self.journal.is_some() {
            self.record(Statement {
                kind: "query",
                scope: None,
                sql: rendered,
                rows: rows
                    .iter()
                    .filter_map(|r| serde_json::to_value(r).ok())
                    .collect(),
            });
        }
        Ok(rows)
    }
}
