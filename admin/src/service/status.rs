//! Status changes: the operator's (published in the same transaction when the experiment's
//! status is what the worker serves), the dry run the dashboard shows first, and the pause a
//! guardrail makes on its own.

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::experiments::load;
use super::Ctx;
use crate::db::audit::{self, Change};
use crate::db::experiments;
use crate::error::{AdminError, Result};
use crate::model::{Experiment, Published, Status};
use crate::publish;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: Status,
    /// Publish even if the plan moves already-enrolled units between variants.
    #[serde(default)]
    pub confirm: bool,
}

/// What a status change would do, computed by making it inside a transaction that is then
/// rolled back: the same code path as the real change, so the plan cannot drift from it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusPreview {
    pub from: Status,
    pub to: Status,
    pub allowed: bool,
    /// Whether the change publishes (to or from RUNNING).
    pub publishes: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<cleave_core::plan::Plan>,
}

pub async fn preview_status(ctx: &Ctx, id: Uuid, to: Status) -> Result<StatusPreview> {
    let mut tx = ctx.pool.begin().await?;
    let before = load(&mut tx, id, false).await?;
    let allowed = to.allowed_from().contains(&before.status);
    let publishes = allowed && (before.status == Status::Running || to == Status::Running);
    let plan = if publishes {
        experiments::transition(&mut *tx, id, &[before.status], to).await?;
        Some(
            publish::plan_next(&mut tx, before.environment_id, "preview")
                .await?
                .1,
        )
    } else {
        None
    };
    tx.rollback().await?;
    Ok(StatusPreview {
        from: before.status,
        to,
        allowed,
        publishes,
        plan,
    })
}

/// Moves an experiment through its lifecycle; a change to or from RUNNING publishes in the
/// same transaction, so a publish that fails leaves the status unchanged.
pub async fn set_status(
    ctx: &Ctx,
    actor: &str,
    id: Uuid,
    change: StatusChange,
) -> Result<(Experiment, Option<Published>)> {
    let to = change.status;
    let mut tx = ctx.pool.begin().await?;
    // The row lock serialises racing changes: the second waits, then sees the first's result.
    let before = load(&mut tx, id, true).await?;
    let refused = || {
        AdminError::Conflict(format!(
            "experiment {:?} is {}; it cannot become {}",
            before.key,
            before.status.as_str(),
            to.as_str()
        ))
    };
    if !to.allowed_from().contains(&before.status) {
        return Err(refused());
    }
    if !experiments::transition(&mut *tx, id, &[before.status], to).await? {
        return Err(refused());
    }
    let after = load(&mut tx, id, false).await?;
    audit_status(&mut tx, actor, &before, &after).await?;
    let published = if before.status == Status::Running || to == Status::Running {
        Some(
            publish::publish_in(
                &mut tx,
                ctx.outlet(),
                after.environment_id,
                actor,
                change.confirm,
            )
            .await?,
        )
    } else {
        None
    };
    tx.commit().await?;
    Ok((after, published))
}

/// Records a status change in the audit log.
pub(super) async fn audit_status(
    conn: &mut sqlx::PgConnection,
    actor: &str,
    before: &Experiment,
    after: &Experiment,
) -> Result<()> {
    audit::record(
        conn,
        Change {
            actor,
            action: "experiment.status",
            entity: "experiment",
            entity_id: after.id.to_string(),
            before: Some(json!({"status": before.status})),
            after: Some(json!({"status": after.status})),
        },
    )
    .await?;
    Ok(())
}

/// Pauses a running experiment on the system's own initiative (a guardrail): the status
/// changes and the published snapshot changes by that pause alone, in one transaction.
pub async fn pause_alone(
    ctx: &Ctx,
    actor: &str,
    id: Uuid,
) -> Result<(Experiment, Option<Published>)> {
    let mut tx = ctx.pool.begin().await?;
    let before = load(&mut tx, id, true).await?;
    if !experiments::transition(&mut *tx, id, &[Status::Running], Status::Paused).await? {
        return Err(AdminError::Conflict(format!(
            "experiment {:?} is {}; it cannot become PAUSED",
            before.key,
            before.status.as_str()
        )));
    }
    let after = load(&mut tx, id, false).await?;
    audit_status(&mut tx, actor, &before, &after).await?;
    let published = publish::publish_status_only(
        &mut tx,
        ctx.outlet(),
        after.environment_id,
        &after.key,
        cleave_core::snapshot::Status::Paused,
        actor,
    )
    .await?;
    tx.commit().await?;
    Ok((after, published))
}
