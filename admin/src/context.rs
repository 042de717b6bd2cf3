//! What every control-plane operation runs with: the database, where to publish, and how
//! published pointers are signed.

use std::sync::Arc;

use sqlx::PgPool;

use crate::signing::SnapshotSigner;
use crate::sink::Sink;

/// What every operation needs: the database, where to publish, who is acting.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub pool: PgPool,
    pub sink: Sink,
    /// Signs every published pointer when set.
    pub signer: Option<Arc<SnapshotSigner>>,
}

impl Ctx {
    /// Where publishes go and how they are signed.
    pub fn outlet(&self) -> Outlet<'_> {
        Outlet {
            sink: &self.sink,
            signer: self.signer.as_deref(),
        }
    }
}

/// Where a publish goes and the key it is signed with (if any).
#[derive(Debug, Clone, Copy)]
pub struct Outlet<'a> {
    pub sink: &'a Sink,
    pub signer: Option<&'a SnapshotSigner>,
}
