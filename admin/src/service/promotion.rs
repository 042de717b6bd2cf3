//! Promotion: an experiment's definition copied from one environment into another as a
//! DRAFT (staging to production without retyping), in one transaction, checked as the target
//! would compile it, audited on both sides' terms. The copy keeps the key and salt, so a unit
//! is bucketed alike in both environments.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::experiments::check;
use super::to_value;
use super::Ctx;
use crate::db::audit::{self, Change};
use crate::db::{environments, experiments};
use crate::error::{AdminError, Result};
use crate::model::{Allocation, Experiment};

/// Copies experiment `id` into environment `target` as a draft; the new experiment.
pub async fn promote_experiment(
    ctx: &Ctx,
    actor: &str,
    id: Uuid,
    target: Uuid,
) -> Result<Experiment> {
    let mut tx = ctx.pool.begin().await?;
    let source = experiments::load(&mut tx, id, false)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no experiment {id}")))?;
    let env = environments::get(&mut *tx, target)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no environment {target}")))?;
    if target == source.environment_id {
        return Err(AdminError::BadRequest(format!(
            "experiment {:?} is already in {}",
            source.key, env.name
        )));
    }
    let copy_id = experiments::insert(
        &mut *tx,
        experiments::NewExperiment {
            environment_id: target,
            key: &source.key,
            name: &source.name,
            description: &source.description,
            unit: &source.unit,
            salt: &source.salt,
        },
    )
    .await
    .map_err(|e| {
        AdminError::on_unique(
            e,
            format!("{} already has an experiment {:?}", env.name, source.key),
        )
    })?;
    let mut ids = BTreeMap::new();
    for v in &source.variants {
        let copied =
            experiments::insert_variant(&mut *tx, copy_id, &v.key, &v.name, &v.payload, None)
                .await?;
        ids.insert(v.id, copied.id);
    }
    let allocations: Vec<Allocation> = source
        .allocations
        .iter()
        .filter_map(|a| {
            Some(Allocation {
                variant_id: *ids.get(&a.variant_id)?,
                ..a.clone()
            })
        })
        .collect();
    experiments::replace_allocations(&mut tx, copy_id, &allocations).await?;
    let mut copy = experiments::load(&mut tx, copy_id, true)
        .await?
        .ok_or_else(|| AdminError::Internal("the copy vanished".to_owned()))?;
    copy.traffic = source.traffic;
    copy.targeting_rules = source.targeting_rules.clone();
    copy.prerequisites = source.prerequisites.clone();
    copy.layer = source.layer.clone();
    copy.routes = source.routes.clone();
    copy.route_all_methods = source.route_all_methods;
    copy.start_at = source.start_at;
    copy.end_at = source.end_at;
    copy.fallback_unit = source.fallback_unit.clone();
    for (to, from) in copy.variants.iter_mut().zip(&source.variants) {
        to.allow = from.allow.clone();
        to.route = from.route.clone();
    }
    experiments::update(&mut tx, &copy).await?;
    // A copy the target cannot take (an origin it does not allow, a layer slice taken there)
    // is refused whole: the transaction ends without it.
    check(&mut tx, &copy).await?;
    let saved = experiments::load(&mut tx, copy_id, false)
        .await?
        .ok_or_else(|| AdminError::Internal("the copy vanished".to_owned()))?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "experiment.promote",
            entity: "experiment",
            entity_id: copy_id.to_string(),
            before: Some(
                serde_json::json!({"from": source.id, "environmentId": source.environment_id}),
            ),
            after: Some(to_value(&saved)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}
