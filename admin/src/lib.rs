//! cleave-admin: the control plane. Postgres is the source of truth (`db`), `service` holds
//! the operations the REST API (`http`) and the CLI (`cli`) share, `compile` turns stored
//! definitions into cleave-core snapshots, and `publish` sends them through a `sink`.

pub mod access;
pub mod analysis;
pub mod analytics_store;
pub mod cli;
pub mod compile;
pub mod context;
pub mod db;
pub mod error;
pub mod history;
pub mod http;
pub mod model;
pub mod observability;
pub mod publish;
pub mod relay;
pub mod service;
pub mod signing;
pub mod sink;
pub mod validate;
