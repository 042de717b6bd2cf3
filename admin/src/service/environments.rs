//! Environments: creating and finding them, and their settings (holdout, bot policy, context
//! schema, anonymous exposures). Settings take effect at the environment's next publish.

use cleave_core::Problems;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::{invalid, to_value, Ctx};
use crate::compile::{self};
use crate::db::audit::{self, Change};
use crate::db::{audiences, environments, experiments, flags};
use crate::error::{AdminError, Result};
use crate::model::{Environment, EnvironmentSettings};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    pub name: String,
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

/// Replaces an environment's settings after checking them as the worker will.
pub async fn set_settings(
    ctx: &Ctx,
    actor: &str,
    id: Uuid,
    settings: EnvironmentSettings,
) -> Result<Environment> {
    for (i, key) in settings.ofrep.client_keys.iter().enumerate() {
        if key.len() < 16 || key.chars().any(char::is_whitespace) {
            return Err(super::invalid(
                &format!("ofrep.clientKeys[{i}]"),
                "a client key is at least 16 characters, without spaces",
            ));
        }
    }
    let mut tx = ctx.pool.begin().await?;
    let before = environments::lock(&mut *tx, id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no environment {id}")))?;
    // Checked with the environment's published experiments, so a change that would make the
    // next publish fail (an origin a variant still routes to, say) is refused now.
    let published = experiments::list(&mut tx, Some(id)).await?;
    let audiences = audiences::list(&mut *tx).await?;
    let flags = flags::list(&mut *tx, id).await?;
    let (content, _) = compile::content(&published, &audiences, &settings, &flags);
    if let Err(problems) = compile::check_content(content) {
        let mut out = Problems::default();
        for p in problems.iter() {
            let path = p
                .path
                .replace("context_schema", "contextSchema")
                .replace("ofrep.allowed_origins", "ofrep.allowedOrigins");
            out.push_coded(path, p.code, p.message.clone());
        }
        return Err(AdminError::Invalid(out));
    }
    environments::set_settings(&mut *tx, id, &settings).await?;
    record(
        &mut tx,
        actor,
        "environment.settings",
        id,
        Some(to_value(&before.settings)),
        Some(to_value(&settings)),
    )
    .await?;
    let after = environments::get(&mut *tx, id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no environment {id}")))?;
    tx.commit().await?;
    Ok(after)
}

pub(super) async fn record(
    conn: &mut sqlx::PgConnection,
    actor: &str,
    action: &str,
    id: Uuid,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<()> {
    let entity = action.split('.').next().unwrap_or("audience");
    audit::record(
        &mut *conn,
        Change {
            actor,
            action,
            entity,
            entity_id: id.to_string(),
            before,
            after,
        },
    )
    .await?;
    Ok(())
}
