//! Experiments: creating, reading and editing them. Every edit is checked as the next publish
//! would compile it before anything is written.

use std::collections::BTreeMap;

use cleave_core::snapshot::{Prerequisite, RouteAction, Routes, Rule};
use cleave_core::Problems;
use serde::Deserialize;
use sqlx::PgConnection;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{present, to_value, Ctx};
use crate::compile::{self};
use crate::db::audit::{self, Change};
use crate::db::{audiences, environments, experiments};
use crate::error::{AdminError, Result};
use crate::model::{Experiment, LayerPlacement, Status};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewExperiment {
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub environment_id: Uuid,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub salt: Option<String>,
}

/// Absent fields stay as they are; `null` clears the nullable ones.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub targeting_rules: Option<Vec<Rule>>,
    pub traffic: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    pub layer: Option<Option<LayerPlacement>>,
    #[serde(default, deserialize_with = "present")]
    pub start_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub end_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub fallback_unit: Option<Option<String>>,
    pub prerequisites: Option<Vec<Prerequisite>>,
    /// Variant key -> unit ids that always get that variant (replaces each listed variant's).
    pub allow_lists: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub routes: Option<Option<Routes>>,
    pub route_all_methods: Option<bool>,
    /// Variant key -> routing action, `null` to remove it (replaces each listed variant's).
    pub variant_routes: Option<BTreeMap<String, Option<RouteAction>>>,
}

pub async fn create_experiment(ctx: &Ctx, actor: &str, req: NewExperiment) -> Result<Experiment> {
    let unit = req.unit.unwrap_or_else(|| "user".to_owned());
    let salt = req.salt.unwrap_or_else(|| req.key.clone());
    compile::check_new(&req.key, &unit, &salt).map_err(AdminError::Invalid)?;
    let mut tx = ctx.pool.begin().await?;
    if environments::get(&mut *tx, req.environment_id)
        .await?
        .is_none()
    {
        return Err(AdminError::NotFound(format!(
            "no environment {}",
            req.environment_id
        )));
    }
    let id = experiments::insert(
        &mut *tx,
        experiments::NewExperiment {
            environment_id: req.environment_id,
            key: &req.key,
            name: &req.name,
            description: &req.description,
            unit: &unit,
            salt: &salt,
        },
    )
    .await
    .map_err(|e| {
        AdminError::on_unique(
            e,
            format!(
                "experiment {:?} already exists in this environment",
                req.key
            ),
        )
    })?;
    let created = load(&mut tx, id, false).await?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "experiment.create",
            entity: "experiment",
            entity_id: id.to_string(),
            before: None,
            after: Some(to_value(&created)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

pub async fn experiment(ctx: &Ctx, id: Uuid) -> Result<Experiment> {
    let mut conn = ctx.pool.acquire().await?;
    load(&mut conn, id, false).await
}

pub async fn list_experiments(ctx: &Ctx, environment: Option<Uuid>) -> Result<Vec<Experiment>> {
    let mut conn = ctx.pool.acquire().await?;
    Ok(experiments::list(&mut conn, environment).await?)
}

pub(super) async fn load(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Experiment> {
    experiments::load(conn, id, lock)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no experiment {id}")))
}

/// Loads the experiment locked for editing; archived experiments are read-only.
pub(super) async fn load_for_edit(conn: &mut PgConnection, id: Uuid) -> Result<Experiment> {
    let experiment = load(conn, id, true).await?;
    if experiment.status == Status::Archived {
        return Err(AdminError::Conflict(format!(
            "experiment {:?} is archived",
            experiment.key
        )));
    }
    Ok(experiment)
}

/// Validates an edited experiment against the others of its environment.
pub(super) async fn check(conn: &mut PgConnection, edited: &Experiment) -> Result<()> {
    let others = experiments::list(conn, Some(edited.environment_id)).await?;
    let audiences = audiences::list(&mut *conn).await?;
    let origins = environments::get(&mut *conn, edited.environment_id)
        .await?
        .map(|env| env.settings.origins)
        .unwrap_or_default();
    compile::check_edit(edited, &others, &audiences, &origins).map_err(AdminError::Invalid)
}

pub async fn patch_experiment(
    ctx: &Ctx,
    actor: &str,
    id: Uuid,
    patch: ExperimentPatch,
) -> Result<Experiment> {
    let mut tx = ctx.pool.begin().await?;
    let before = load_for_edit(&mut tx, id).await?;
    let mut after = before.clone();
    let mut problems = Problems::default();
    if let Some(name) = patch.name {
        after.name = name;
    }
    if let Some(description) = patch.description {
        after.description = description;
    }
    if let Some(rules) = patch.targeting_rules {
        after.targeting_rules = rules;
    }
    if let Some(traffic) = patch.traffic {
        match i32::try_from(traffic)
            .ok()
            .filter(|t| (0..=10_000).contains(t))
        {
            Some(t) => after.traffic = t,
            None => problems.push("traffic", format!("traffic {traffic} is outside 0..=10000")),
        }
    }
    if let Some(layer) = patch.layer {
        after.layer = match layer {
            Some(mut placement) => {
                // A layer's salt is fixed when it is first used.
                let existing =
                    experiments::layer_salt(&mut *tx, after.environment_id, &placement.key).await?;
                match (&existing, &placement.salt) {
                    (Some(have), Some(want)) if have != want => problems.push(
                        "layer.salt",
                        format!("layer {:?} already uses salt {have:?}", placement.key),
                    ),
                    _ => placement.salt = existing.or(placement.salt),
                }
                Some(placement)
            }
            None => None,
        };
    }
    for (field, value, slot) in [
        ("startAt", patch.start_at, &mut after.start_at),
        ("endAt", patch.end_at, &mut after.end_at),
    ] {
        match value {
            None => {}
            Some(None) => *slot = None,
            Some(Some(text)) => match OffsetDateTime::parse(&text, &Rfc3339) {
                Ok(at) => *slot = Some(at),
                Err(_) => problems.push(field, format!("{text:?} is not an RFC 3339 timestamp")),
            },
        }
    }
    if let Some(fallback) = patch.fallback_unit {
        after.fallback_unit = fallback;
    }
    if let Some(prerequisites) = patch.prerequisites {
        after.prerequisites = prerequisites;
    }
    if let Some(lists) = patch.allow_lists {
        for (variant, ids) in lists {
            match after.variants.iter_mut().find(|v| v.key == variant) {
                Some(v) => v.allow = ids,
                None => problems.push(
                    format!("allowLists.{variant}"),
                    format!("experiment {:?} has no variant {variant:?}", after.key),
                ),
            }
        }
    }
    apply_routing(
        &mut after,
        patch.routes,
        patch.route_all_methods,
        patch.variant_routes,
        &mut problems,
    );
    if let Err(AdminError::Invalid(more)) = check(&mut tx, &after).await {
        problems.extend(more);
    }
    if !problems.is_empty() {
        return Err(AdminError::Invalid(problems));
    }
    experiments::update(&mut tx, &after).await?;
    let saved = load(&mut tx, id, false).await?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "experiment.update",
            entity: "experiment",
            entity_id: id.to_string(),
            before: Some(to_value(&before)),
            after: Some(to_value(&saved)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

/// Applies a patch's routing fields; a variant key the experiment lacks is a problem.
fn apply_routing(
    after: &mut Experiment,
    routes: Option<Option<Routes>>,
    all_methods: Option<bool>,
    variant_routes: Option<BTreeMap<String, Option<RouteAction>>>,
    problems: &mut Problems,
) {
    if let Some(routes) = routes {
        after.routes = routes;
    }
    if let Some(all) = all_methods {
        after.route_all_methods = all;
    }
    for (variant, route) in variant_routes.into_iter().flatten() {
        match after.variants.iter_mut().find(|v| v.key == variant) {
            Some(v) => v.route = route,
            None => problems.push(
                format!("variantRoutes.{variant}"),
                format!("experiment {:?} has no variant {variant:?}", after.key),
            ),
        }
    }
}
