//! cleave-core: the pure decision logic of cleave.
//!
//! This crate owns the snapshot format ([`snapshot`]), the normative bucketing ([`bucket`]),
//! targeting ([`targeting`]), assignment ([`Engine::assign`], producing [`decision`]s) and what the worker tells the
//! origin ([`headers`]). It performs no I/O, reads no clock and draws no random numbers: time
//! comes in as `now_ms`, so the same inputs give the same answer natively and on wasm32.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![forbid(unsafe_code)]

pub mod bucket;
pub mod caching;
pub mod consent;
pub mod context;
pub mod decision;
pub mod engine;
pub mod exposure;
pub mod flags;
pub mod force;
pub mod headers;
pub mod identity;
pub mod ingest;
pub mod keys;
pub mod order;
pub mod plan;
pub mod pointer;
pub mod pointer_register;
pub mod problems;
pub mod routing;
mod seal;
pub mod signing_keys;
pub mod snapshot;
pub mod stats;
pub mod sticky;
pub mod targeting;
pub mod time;
pub mod user_agent;

pub use decision::{Assignment, Explanation, Units};
pub use engine::{Engine, SnapshotError, Subject};
pub use problems::{Problem, Problems};
pub use seal::secrets_equal;
pub use snapshot::Snapshot;
pub use targeting::{Attributes, Targeting};
