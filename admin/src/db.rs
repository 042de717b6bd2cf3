//! Postgres access. Queries live in one module per table group; they take any executor so
//! callers choose between a pool and a transaction.

pub mod analysis;
pub mod audiences;
pub mod audit;
pub mod environments;
pub mod experiments;
pub mod flags;
pub mod phases;
pub mod snapshots;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// Connects to `database_url`.
///
/// # Errors
/// When the database cannot be reached.
pub async fn connect(database_url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(16)
        .connect(database_url)
        .await
}

/// Applies the embedded migrations in `admin/migrations/`.
///
/// # Errors
/// When a migration fails or the applied ones were edited.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await
}
