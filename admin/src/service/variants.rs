//! Variants and their allocations: adding one, renaming it or replacing its payload, and
//! replacing an experiment's bucket ranges.

use cleave_core::snapshot::RouteAction;
use cleave_core::Problems;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::experiments::{check, load, load_for_edit};
use super::{invalid, to_value, Ctx};
use crate::db::audit::{self, Change};
use crate::db::experiments;
use crate::error::{AdminError, Result};
use crate::model::{Allocation, Experiment, Variant};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVariant {
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub payload: Value,
    #[serde(default)]
    pub route: Option<RouteAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocations {
    pub allocations: Vec<Allocation>,
}

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

pub async fn add_variant(ctx: &Ctx, actor: &str, id: Uuid, req: NewVariant) -> Result<Variant> {
    if !cleave_core::keys::is_valid_key(&req.key) {
        return Err(invalid("key", cleave_core::keys::key_problem(&req.key)));
    }
    let mut tx = ctx.pool.begin().await?;
    let experiment = load_for_edit(&mut tx, id).await?;
    let variant = experiments::insert_variant(
        &mut *tx,
        id,
        &req.key,
        &req.name,
        &req.payload,
        req.route.as_ref(),
    )
    .await
    .map_err(|e| {
        AdminError::on_unique(
            e,
            format!(
                "variant {:?} already exists in {:?}",
                req.key, experiment.key
            ),
        )
    })?;
    if variant.route.is_some() {
        // Dropping the transaction on a refusal removes the variant again.
        let with_variant = load(&mut tx, id, false).await?;
        check(&mut tx, &with_variant).await?;
    }
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "variant.create",
            entity: "experiment",
            entity_id: id.to_string(),
            before: None,
            after: Some(to_value(&variant)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(variant)
}

pub async fn set_allocations(
    ctx: &Ctx,
    actor: &str,
    id: Uuid,
    req: Allocations,
) -> Result<Experiment> {
    let mut tx = ctx.pool.begin().await?;
    let before = load_for_edit(&mut tx, id).await?;
    let mut problems = Problems::default();
    for (i, a) in req.allocations.iter().enumerate() {
        if !before.variants.iter().any(|v| v.id == a.variant_id) {
            problems.push(
                format!("allocations[{i}].variantId"),
                format!("{} is not a variant of this experiment", a.variant_id),
            );
        }
    }
    let mut after = before.clone();
    after.allocations = req.allocations;
    if let Err(AdminError::Invalid(more)) = check(&mut tx, &after).await {
        problems.extend(name_allocation_problems(more, &after));
    }
    if !problems.is_empty() {
        return Err(AdminError::Invalid(problems));
    }
    experiments::replace_allocations(&mut tx, id, &after.allocations).await?;
    let saved = load(&mut tx, id, false).await?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "experiment.allocations",
            entity: "experiment",
            entity_id: id.to_string(),
            before: Some(json!(before.allocations)),
            after: Some(json!(saved.allocations)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
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
