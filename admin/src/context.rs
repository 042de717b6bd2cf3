//! What every control-plane operation runs with: the database, where to publish, and how
//! published pointers are signed.

use std::sync::Arc;

use sqlx::PgPool;

use cleave_core::pointer::Pointer;

use crate::analytics_store::Analytics;
use crate::relay::Relay;
use crate::signing::SnapshotSigner;
use crate::sink::Sink;

/// What every operation needs: the database, where to publish, who is acting.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub pool: PgPool,
    /// Where exposures and events are stored and results' sums computed.
    pub analytics: Analytics,
    pub sink: Sink,
    /// Signs every published pointer when set.
    pub signer: Option<Arc<SnapshotSigner>>,
    /// Pushes every pointer to the workers' pointer objects when set.
    pub relay: Option<Relay>,
}

impl Ctx {
    /// Where publishes go and how they are signed.
    pub fn outlet(&self) -> Outlet<'_> {
        Outlet {
            sink: &self.sink,
            signer: self.signer.as_deref(),
            relay: self.relay.as_ref(),
        }
    }
}

/// Where a publish goes and the key it is signed with (if any).
#[derive(Debug, Clone, Copy)]
pub struct Outlet<'a> {
    pub sink: &'a Sink,
    pub signer: Option<&'a SnapshotSigner>,
    pub relay: Option<&'a Relay>,
}

impl Outlet<'_> {
    /// Points `env` at `pointer`: pushed to the worker's pointer object first (when a relay is
    /// configured), so a refusal or an unreachable worker changes nothing anywhere, then
    /// written to the sink, KV's durable copy.
    ///
    /// # Errors
    /// What the worker or the sink answered.
    pub async fn flip_pointer(&self, env: &str, pointer: &Pointer) -> Result<(), String> {
        if let Some(relay) = self.relay {
            relay.push(env, pointer).await?;
        }
        self.sink.put_pointer(env, pointer).await
    }
}
