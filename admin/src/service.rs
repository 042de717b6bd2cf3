//! The control plane's operations, shared by the REST API and the CLI. Each runs in one
//! transaction and writes its audit entry in that same transaction.

use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use std::collections::BTreeMap;
use std::sync::Arc;

use cleave_core::plan::Plan;
use cleave_core::snapshot::{Prerequisite, RouteAction, Routes, Rule};
use cleave_core::Problems;

use crate::compile;
use crate::db::audit::{self, Change};
use crate::db::{audiences, environments, experiments};
use crate::error::{AdminError, Result};
use crate::model::{
    Allocation, Environment, Experiment, LayerPlacement, Published, Status, Variant,
};
use crate::publish;
use crate::publish::Outlet;
use crate::signing::SnapshotSigner;
use crate::sink::Sink;

mod editing;
pub use editing::{patch_variant, preview_status, StatusPreview, VariantPatch};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    pub name: String,
}

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

/// Distinguishes a field set to `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

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
pub struct StatusChange {
    pub status: Status,
    /// Publish even if the plan moves already-enrolled units between variants.
    #[serde(default)]
    pub confirm: bool,
}

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

fn invalid(path: &str, message: impl Into<String>) -> AdminError {
    let mut problems = Problems::default();
    problems.push(path, message);
    AdminError::Invalid(problems)
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

pub async fn create_environment(
    ctx: &Ctx,
    actor: &str,
    req: NewEnvironment,
) -> Result<Environment> {
    if !cleave_core::keys::is_valid_key(&req.name) {
        return Err(invalid("name", cleave_core::keys::key_problem(&req.name)));
    }
    let mut tx = ctx.pool.begin().await?;
    let env = environments::insert(&mut *tx, &req.name)
        .await
        .map_err(|e| {
            AdminError::on_unique(e, format!("environment {:?} already exists", req.name))
        })?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "environment.create",
            entity: "environment",
            entity_id: env.id.to_string(),
            before: None,
            after: Some(to_value(&env)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(env)
}

pub async fn environment(ctx: &Ctx, id: Uuid) -> Result<Environment> {
    environments::get(&ctx.pool, id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no environment {id}")))
}

pub async fn environment_named(ctx: &Ctx, name: &str) -> Result<Environment> {
    environments::by_name(&ctx.pool, name)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no environment named {name:?}")))
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

async fn load(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Experiment> {
    experiments::load(conn, id, lock)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no experiment {id}")))
}

/// Loads the experiment locked for editing; archived experiments are read-only.
async fn load_for_edit(conn: &mut PgConnection, id: Uuid) -> Result<Experiment> {
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
async fn check(conn: &mut PgConnection, edited: &Experiment) -> Result<()> {
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
        problems.extend(editing::name_allocation_problems(more, &after));
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
async fn audit_status(
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

pub async fn publish(
    ctx: &Ctx,
    actor: &str,
    environment: Uuid,
    confirm: bool,
) -> Result<Published> {
    let mut tx = ctx.pool.begin().await?;
    let published = publish::publish_in(&mut tx, ctx.outlet(), environment, actor, confirm).await?;
    tx.commit().await?;
    Ok(published)
}

/// What publishing `environment` now would change, without publishing.
pub async fn plan(ctx: &Ctx, actor: &str, environment: Uuid) -> Result<Plan> {
    let mut conn = ctx.pool.acquire().await?;
    Ok(publish::plan_next(&mut conn, environment, actor).await?.1)
}
