//! Audiences. Changing one publishes nothing (an editor may change one, and only publishers
//! publish): the environments whose running or paused experiments use it show the change in
//! their pending diff.

use std::collections::BTreeSet;

use cleave_core::snapshot::Rule;
use cleave_core::{Problems, Targeting};
use serde::Deserialize;
use uuid::Uuid;

use super::environments::record;
use super::{to_value, Ctx};
use crate::compile::{self, is_published};
use crate::db::{audiences, environments, experiments};
use crate::error::{AdminError, Result};
use crate::model::{Audience, Environment};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAudience {
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub targeting_rules: Vec<Rule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudiencePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub targeting_rules: Option<Vec<Rule>>,
}

/// An audience's rules, checked as they will be compiled (no nested audiences).
fn check_rules(rules: &[Rule]) -> Result<()> {
    Targeting::prepare(rules).map(|_| ()).map_err(|problems| {
        let mut out = Problems::default();
        for p in problems.iter() {
            out.push(
                format!("targetingRules{}", p.path.trim_start_matches("targeting")),
                p.message.clone(),
            );
        }
        AdminError::Invalid(out)
    })
}

pub async fn create_audience(ctx: &Ctx, actor: &str, req: NewAudience) -> Result<Audience> {
    let mut problems = Problems::default();
    if !cleave_core::keys::is_valid_key(&req.key) {
        problems.push("key", cleave_core::keys::key_problem(&req.key));
    }
    if let Err(AdminError::Invalid(more)) = check_rules(&req.targeting_rules) {
        problems.extend(more);
    }
    if !problems.is_empty() {
        return Err(AdminError::Invalid(problems));
    }
    let mut tx = ctx.pool.begin().await?;
    let audience = audiences::insert(
        &mut *tx,
        &req.key,
        &req.name,
        &req.description,
        &req.targeting_rules,
    )
    .await
    .map_err(|e| AdminError::on_unique(e, format!("audience {:?} already exists", req.key)))?;
    record(
        &mut tx,
        actor,
        "audience.create",
        audience.id,
        None,
        Some(to_value(&audience)),
    )
    .await?;
    tx.commit().await?;
    Ok(audience)
}

pub async fn list_audiences(ctx: &Ctx) -> Result<Vec<Audience>> {
    Ok(audiences::list(&ctx.pool).await?)
}

pub async fn audience(ctx: &Ctx, id: Uuid) -> Result<Audience> {
    audiences::get(&ctx.pool, id, false)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no audience {id}")))
}

/// Edits an audience. Nothing is published: the environments whose published experiments use
/// it (returned by name) show the change in their pending diff until a publisher publishes.
pub async fn patch_audience(
    ctx: &Ctx,
    actor: &str,
    id: Uuid,
    patch: AudiencePatch,
) -> Result<(Audience, Vec<String>)> {
    let mut tx = ctx.pool.begin().await?;
    let before = audiences::get(&mut *tx, id, true)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no audience {id}")))?;
    let mut after = before.clone();
    if let Some(name) = patch.name {
        after.name = name;
    }
    if let Some(description) = patch.description {
        after.description = description;
    }
    if let Some(rules) = patch.targeting_rules {
        check_rules(&rules)?;
        after.targeting_rules = rules;
    }
    audiences::update(&mut *tx, &after).await?;
    let saved = audiences::get(&mut *tx, id, false)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no audience {id}")))?;
    record(
        &mut tx,
        actor,
        "audience.update",
        id,
        Some(to_value(&before)),
        Some(to_value(&saved)),
    )
    .await?;
    let pending = environments_using(&mut tx, &saved.key)
        .await?
        .into_iter()
        .filter(|env| env.current_version.is_some())
        .map(|env| env.name)
        .collect();
    tx.commit().await?;
    Ok((saved, pending))
}

/// Deletes an audience no experiment references (any status but archived).
pub async fn delete_audience(ctx: &Ctx, actor: &str, id: Uuid) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    let audience = audiences::get(&mut *tx, id, true)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no audience {id}")))?;
    let users: Vec<String> = experiments::list(&mut tx, None)
        .await?
        .into_iter()
        .filter(|e| {
            e.status != crate::model::Status::Archived && uses(&e.targeting_rules, &audience.key)
        })
        .map(|e| e.key)
        .collect();
    if !users.is_empty() {
        return Err(AdminError::Conflict(format!(
            "audience {:?} is used by {}",
            audience.key,
            users.join(", ")
        )));
    }
    audiences::delete(&mut *tx, id).await?;
    record(
        &mut tx,
        actor,
        "audience.delete",
        id,
        Some(to_value(&audience)),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn uses(rules: &[Rule], key: &str) -> bool {
    let mut used = BTreeSet::new();
    compile::referenced_audiences(rules, &mut used);
    used.contains(key)
}

async fn environments_using(conn: &mut sqlx::PgConnection, key: &str) -> Result<Vec<Environment>> {
    let mut ids = BTreeSet::new();
    for e in experiments::list(&mut *conn, None).await? {
        if is_published(e.status) && uses(&e.targeting_rules, key) {
            ids.insert(e.environment_id);
        }
    }
    let mut out = Vec::new();
    for id in ids {
        out.extend(environments::get(&mut *conn, id).await?);
    }
    Ok(out)
}
