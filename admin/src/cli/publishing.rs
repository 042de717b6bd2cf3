//! `cleave-admin publish`, `plan`, `compile`, `rollback` and `resign-pointers`.

use std::path::Path;

use super::print;
use crate::error::{AdminError, Result};
use crate::publish;
use crate::service::{self, Ctx};

pub async fn publish(ctx: &Ctx, actor: &str, env: &str, confirm: bool) -> Result<()> {
    let env = service::environment_named(ctx, env).await?;
    print(&service::publish(ctx, actor, env.id, confirm).await?);
    Ok(())
}

/// Prints the plan: a line per experiment on stderr, the JSON on stdout.
pub async fn plan(ctx: &Ctx, actor: &str, env: &str) -> Result<()> {
    let env = service::environment_named(ctx, env).await?;
    let plan = service::plan(ctx, actor, env.id).await?;
    for c in &plan.changes {
        eprintln!(
            "{:<32} {:<10} changes {:>8.4}% of units, moves {:>8.4}% between variants",
            c.experiment,
            format!("{:?}", c.kind).to_lowercase(),
            c.changed_share * 100.0,
            c.moved_share * 100.0
        );
    }
    if !plan.needs_confirmation.is_empty() {
        eprintln!(
            "publishing needs --confirm (or a new salt) for: {}",
            plan.needs_confirmation.join(", ")
        );
    }
    print(&plan);
    Ok(())
}

/// Writes the snapshot the next publish would make, without publishing.
pub async fn compile(ctx: &Ctx, actor: &str, env: &str, out: &Path) -> Result<()> {
    let env = service::environment_named(ctx, env).await?;
    let mut conn = ctx.pool.acquire().await?;
    let (_, snapshot, _) = publish::compile_next(&mut conn, env.id, actor).await?;
    let body =
        serde_json::to_string_pretty(&snapshot).map_err(|e| AdminError::Internal(e.to_string()))?;
    std::fs::write(out, body + "\n")
        .map_err(|e| AdminError::Internal(format!("{}: {e}", out.display())))?;
    eprintln!(
        "wrote {} (environment {}, would be v{})",
        out.display(),
        snapshot.environment,
        snapshot.version
    );
    Ok(())
}

pub async fn rollback(ctx: &Ctx, actor: &str, env: &str, to: i64) -> Result<()> {
    let env = service::environment_named(ctx, env).await?;
    let mut tx = ctx.pool.begin().await?;
    let done = publish::rollback_in(&mut tx, ctx.outlet(), env.id, to, actor).await?;
    tx.commit().await?;
    print(&done);
    Ok(())
}

pub async fn resign_pointers(ctx: &Ctx) -> Result<()> {
    let done = publish::resign_pointers(&ctx.pool, ctx.outlet()).await?;
    eprintln!("re-signed {} pointer(s)", done.len());
    print(&done);
    Ok(())
}
