//! Edits the dashboard makes besides the docs/contracts.md §6 calls: a variant's name and payload, and a
//! dry run of a status change that shows its publish plan before anything changes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{load, load_for_edit, to_value, Ctx};
use crate::db::audit::{self, Change};
use crate::db::experiments;
use crate::error::{AdminError, Result};
use crate::model::{Status, Variant};
use crate::publish;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantPatch {
    pub name: Option<String>,
    /// Any JSON, `null` included; absent keeps the payload.
    #[serde(default, deserialize_with = "super::present")]
    pub payload: Option<Option<Value>>,
}

/// Renames a variant or replaces its payload. The key stays: it is what assignments and
/// exposures name.
pub async fn patch_variant(
    ctx: &Ctx,
    actor: &str,
    experiment: Uuid,
    variant: Uuid,
    patch: VariantPatch,
) -> Result<Variant> {
    let mut tx = ctx.pool.begin().await?;
    let loaded = load_for_edit(&mut tx, experiment).await?;
    let before = loaded
        .variants
        .iter()
        .find(|v| v.id == variant)
        .cloned()
        .ok_or_else(|| {
            AdminError::NotFound(format!(
                "experiment {:?} has no variant {variant}",
                loaded.key
            ))
        })?;
    let name = patch.name.unwrap_or_else(|| before.name.clone());
    let payload = match patch.payload {
        Some(value) => value.unwrap_or(Value::Null),
        None => before.payload.clone(),
    };
    let after = experiments::update_variant(&mut *tx, experiment, variant, &name, &payload)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no variant {variant}")))?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "variant.update",
            entity: "experiment",
            entity_id: experiment.to_string(),
            before: Some(to_value(&before)),
            after: Some(to_value(&after)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
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

/// Names an allocation's problems the way the request did: the snapshot check reports
/// `experiments[key].variants[v].ranges[r]`, which is the r-th allocation of variant v, and
/// the caller sent that as `allocations[i]`.
pub(super) fn name_allocation_problems(
    problems: cleave_core::Problems,
    edited: &crate::model::Experiment,
) -> cleave_core::Problems {
    let prefix = format!("experiments[{}].", edited.key);
    let mut named = cleave_core::Problems::default();
    for problem in problems.iter() {
        let local = problem.path.strip_prefix(&prefix).unwrap_or(&problem.path);
        let path = allocation_index(local, edited)
            .map(|(i, rest)| format!("allocations[{i}]{rest}"))
            .unwrap_or_else(|| match local {
                "variants" => "allocations".to_owned(),
                _ => problem.path.clone(),
            });
        named.push(path, problem.message.clone());
    }
    named
}

/// `variants[v].ranges[r]…` -> (index into the allocations, what follows).
fn allocation_index<'a>(
    path: &'a str,
    edited: &crate::model::Experiment,
) -> Option<(usize, &'a str)> {
    let rest = path.strip_prefix("variants[")?;
    let (v, rest) = rest.split_once("].ranges[")?;
    let (r, rest) = rest.split_once(']')?;
    let variant = edited.variants.get(v.parse::<usize>().ok()?)?;
    let r = r.parse::<usize>().ok()?;
    let (i, _) = edited
        .allocations
        .iter()
        .enumerate()
        .filter(|(_, a)| a.variant_id == variant.id)
        .nth(r)?;
    Some((i, rest))
}
