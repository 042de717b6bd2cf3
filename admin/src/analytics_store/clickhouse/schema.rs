//! The ClickHouse schema, as numbered migrations applied on every shard (DDL `ON CLUSTER`
//! needs ZooKeeper or Keeper, which a plain cluster does not have; each shard is migrated
//! on its own and records what it applied in `schema_migrations`).
//!
//! Each shard holds `*_local` tables, ReplacingMergeTree keyed so that a redelivered record
//! collapses into its first copy, partitioned by month (`YYYY-MM`) so old months drop whole.
//! The Distributed tables of the same names without `_local` route inserts to the shard of
//! `cityHash64(unit)`: a unit's exposures and events live on one shard, so per-unit joins
//! run there and the shards' sums add up.

/// A table a statement creates: local tables exist on every engine, the Distributed ones
/// only where the cluster is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Local,
    Distributed,
}

/// One migration: its number, name and statements (`{db}` and `{cluster}` filled in).
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub statements: &'static [(Scope, &'static str)],
}

/// The migrations, oldest first. Never edit one that has shipped: add the next.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "exposures and events",
    statements: &[
        (
            Scope::Local,
            // `version` keeps the earliest copy of an exposure id (the largest value):
            // a redelivered batch's later time never replaces the first exposure.
            "CREATE TABLE IF NOT EXISTS {db}.exposures_local ( \
               environment String, id String, experiment String, variant String, \
               unit_type String, unit String, salt String, day String, at_ms Int64, \
               excluded String, source String, country String, device String, browser String, \
               version UInt64 \
             ) ENGINE = ReplacingMergeTree(version) \
             PARTITION BY substring(day, 1, 7) \
             ORDER BY (environment, experiment, salt, unit, id)",
        ),
        (
            Scope::Local,
            "CREATE TABLE IF NOT EXISTS {db}.events_local ( \
               environment String, event_id String, unit String, metric String, \
               value Float64, at_ms Int64, day String \
             ) ENGINE = ReplacingMergeTree \
             PARTITION BY substring(day, 1, 7) \
             ORDER BY (environment, unit, metric, event_id)",
        ),
        (
            Scope::Distributed,
            "CREATE TABLE IF NOT EXISTS {db}.exposures AS {db}.exposures_local \
             ENGINE = Distributed({cluster}, {db}, exposures_local, cityHash64(unit))",
        ),
        (
            Scope::Distributed,
            "CREATE TABLE IF NOT EXISTS {db}.events AS {db}.events_local \
             ENGINE = Distributed({cluster}, {db}, events_local, cityHash64(unit))",
        ),
    ],
}];

/// Where each shard records the migrations it has applied.
pub const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS {db}.schema_migrations ( \
    version UInt32, name String, applied_ms Int64) ENGINE = MergeTree ORDER BY version";
