//! `cleave-admin serve`: the REST API and dashboard, with the guardrail watch and the pointer
//! re-signing running beside them.

use std::net::SocketAddr;

use crate::access::Access;
use crate::error::{AdminError, Result};
use crate::http::{app, AppState};
use crate::publish;
use crate::service::Ctx;

/// Serves until Ctrl-C. The database is migrated already.
pub async fn serve(
    ctx: Ctx,
    access: Access,
    addr: SocketAddr,
    guardrail_interval: u64,
) -> Result<()> {
    if access.is_empty() {
        tracing::warn!(
            "neither CLEAVE_ADMIN_TOKENS nor CLEAVE_ADMIN_API_TOKEN is set: every mutation will be refused"
        );
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| AdminError::Internal(format!("cannot listen on {addr}: {e}")))?;
    tracing::info!(%addr, sink = %ctx.sink.describe(), dashboard = %format!("http://{addr}/ui/"), "cleave-admin serving");
    if guardrail_interval > 0 {
        let every = std::time::Duration::from_secs(guardrail_interval);
        tokio::spawn(crate::analysis::guardrails::watch(ctx.clone(), every));
    }
    if let Some(signer) = &ctx.signer {
        // A quarter of the validity, at most hourly: several chances before expiry.
        let every = (signer.validity() / 4).min(std::time::Duration::from_secs(3600));
        tokio::spawn(publish::keep_pointers_fresh(ctx.clone(), every));
    }
    axum::serve(listener, app(AppState { ctx, access }))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))
}
