//! Deleting drafts: a mistaken experiment or variant that never ran goes for good. Anything
//! that ran is history (exposures, results, snapshots name it) and can only be archived.

use uuid::Uuid;

use super::experiments::load_for_edit;
use super::to_value;
use super::Ctx;
use crate::db::audit::{self, Change};
use crate::db::{experiments, flags};
use crate::error::{AdminError, Result};
use crate::model::{Experiment, Status};

/// Deletes a DRAFT experiment with its variants and allocations; refused for any other
/// status, and while a flag is served by it.
pub async fn delete_experiment(ctx: &Ctx, actor: &str, id: Uuid) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    let experiment = draft(&mut tx, id).await?;
    let served: Vec<String> = flags::list(&mut *tx, experiment.environment_id)
        .await?
        .into_iter()
        .filter(|f| {
            let spec = &f.spec;
            let serves = spec
                .rules
                .iter()
                .map(|r| &r.serve)
                .chain([&spec.fallthrough]);
            serves
                .filter_map(|s| s.experiment.as_ref())
                .any(|e| e.key == experiment.key)
        })
        .map(|f| f.key)
        .collect();
    if !served.is_empty() {
        return Err(AdminError::Conflict(format!(
            "experiment {:?} serves flag {}",
            experiment.key,
            served.join(", ")
        )));
    }
    experiments::delete(&mut tx, id).await?;
    record(
        &mut tx,
        actor,
        "experiment.delete",
        &experiment,
        to_value(&experiment),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a variant of a DRAFT experiment, with its allocation.
pub async fn delete_variant(ctx: &Ctx, actor: &str, id: Uuid, variant: Uuid) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    let experiment = draft(&mut tx, id).await?;
    let Some(before) = experiment.variants.iter().find(|v| v.id == variant) else {
        return Err(AdminError::NotFound(format!(
            "experiment {:?} has no variant {variant}",
            experiment.key
        )));
    };
    experiments::delete_variant(&mut tx, id, variant).await?;
    record(
        &mut tx,
        actor,
        "variant.delete",
        &experiment,
        to_value(before),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The experiment, locked, when it is a draft.
async fn draft(conn: &mut sqlx::PgConnection, id: Uuid) -> Result<Experiment> {
    let experiment = load_for_edit(conn, id).await?;
    if experiment.status != Status::Draft {
        return Err(AdminError::Conflict(format!(
            "experiment {:?} is {}; only drafts can be deleted (archive it instead)",
            experiment.key,
            experiment.status.as_str()
        )));
    }
    Ok(experiment)
}

async fn record(
    conn: &mut sqlx::PgConnection,
    actor: &str,
    action: &str,
    experiment: &Experiment,
    before: serde_json::Value,
) -> Result<()> {
    let change = Change {
        actor,
        action,
        entity: "experiment",
        entity_id: experiment.id.to_string(),
        before: Some(before),
        after: None,
    };
    audit::record(&mut *conn, change).await?;
    Ok(())
}
