//! Feature flags. Creating and editing one publishes nothing (an editor may edit, and only
//! publishers publish); the kill switch publishes at once, changing only that flag in the
//! snapshot in service, so other edits still waiting for a publisher stay waiting.

use cleave_core::Problems;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::environments::record;
use super::{invalid, to_value, Ctx};
use crate::compile;
use crate::db::{audiences, environments, experiments, flags};
use crate::error::{AdminError, Result};
use crate::model::{Flag, FlagSpec, Published};
use crate::publish;

/// Creates a flag in `environment` from the REST body: `key`, `name`, `description` and
/// the [`FlagSpec`] fields.
pub async fn create_flag(ctx: &Ctx, actor: &str, environment: Uuid, body: Value) -> Result<Flag> {
    let Value::Object(mut fields) = body else {
        return Err(invalid("", "a flag is a JSON object"));
    };
    let key = text_field(&mut fields, "key")?.unwrap_or_default();
    if !cleave_core::keys::is_valid_key(&key) {
        return Err(invalid("key", cleave_core::keys::key_problem(&key)));
    }
    let name = text_field(&mut fields, "name")?.unwrap_or_default();
    let description = text_field(&mut fields, "description")?.unwrap_or_default();
    let spec = spec_of(Value::Object(fields))?;
    let mut tx = ctx.pool.begin().await?;
    environments::get(&mut *tx, environment)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no environment {environment}")))?;
    check(&mut tx, environment, &key, &spec, None).await?;
    let flag = flags::insert(&mut *tx, environment, &key, &name, &description, &spec)
        .await
        .map_err(|e| AdminError::on_unique(e, format!("flag {key:?} already exists")))?;
    record(
        &mut tx,
        actor,
        "flag.create",
        flag.id,
        None,
        Some(to_value(&flag)),
    )
    .await?;
    tx.commit().await?;
    Ok(flag)
}

pub async fn list_flags(ctx: &Ctx, environment: Uuid) -> Result<Vec<Flag>> {
    Ok(flags::list(&ctx.pool, environment).await?)
}

pub async fn flag(ctx: &Ctx, id: Uuid) -> Result<Flag> {
    flags::get(&ctx.pool, id, false)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no flag {id}")))
}

/// Edits a flag: `name`, `description`, and any spec field, each replaced as a whole (the
/// key stays). Nothing is published.
pub async fn patch_flag(ctx: &Ctx, actor: &str, id: Uuid, body: Value) -> Result<Flag> {
    let Value::Object(mut fields) = body else {
        return Err(invalid("", "a flag patch is a JSON object"));
    };
    if fields.contains_key("key") {
        return Err(invalid("key", "a flag's key cannot change"));
    }
    let mut tx = ctx.pool.begin().await?;
    let before = live(&mut tx, id).await?;
    let mut after = before.clone();
    if let Some(name) = text_field(&mut fields, "name")? {
        after.name = name;
    }
    if let Some(description) = text_field(&mut fields, "description")? {
        after.description = description;
    }
    if !fields.is_empty() {
        let Value::Object(mut merged) = to_value(&before.spec) else {
            return Err(AdminError::Internal(
                "a flag spec is not an object".to_owned(),
            ));
        };
        merged.extend(fields);
        after.spec = spec_of(Value::Object(merged))?;
    }
    if after.spec.draft && !before.spec.draft {
        return Err(AdminError::Conflict(format!(
            "flag {:?} is live: it cannot become a draft again (kill it or archive it)",
            before.key
        )));
    }
    check(
        &mut tx,
        after.environment_id,
        &after.key,
        &after.spec,
        Some(id),
    )
    .await?;
    let action = if before.spec.draft && !after.spec.draft {
        "flag.launch"
    } else {
        "flag.update"
    };
    let saved = save(&mut tx, actor, action, &before, &after).await?;
    tx.commit().await?;
    Ok(saved)
}

/// The kill switch: `killed` serves the off variant to everyone, published at once (with
/// nothing else changed) when the flag is in the snapshot in service; `false` turns the flag
/// back on the same way.
pub async fn kill_flag(
    ctx: &Ctx,
    actor: &str,
    id: Uuid,
    killed: bool,
) -> Result<(Flag, Option<Published>)> {
    let mut tx = ctx.pool.begin().await?;
    let before = live(&mut tx, id).await?;
    let mut after = before.clone();
    after.spec.enabled = !killed;
    let action = if killed { "flag.kill" } else { "flag.revive" };
    let saved = save(&mut tx, actor, action, &before, &after).await?;
    let key = saved.key.clone();
    let published = publish::publish_change(
        &mut tx,
        ctx.outlet(),
        saved.environment_id,
        actor,
        "environment.publish_flag",
        |snapshot| match snapshot.flags.iter_mut().find(|f| f.key == key) {
            Some(flag) => {
                flag.enabled = !killed;
                true
            }
            None => false,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((saved, published))
}

/// What removing a flag did.
pub enum Removed {
    /// A draft served nobody, so nothing needs keeping: it is gone.
    Deleted,
    /// A flag that was live is archived: kept for the audit trail, left out of the next
    /// publish, its key free again.
    Archived(Box<Flag>),
}

/// Removes a flag: a draft is deleted, a flag that went live is archived.
pub async fn remove_flag(ctx: &Ctx, actor: &str, id: Uuid) -> Result<Removed> {
    let mut tx = ctx.pool.begin().await?;
    let before = live(&mut tx, id).await?;
    let removed = if before.spec.draft {
        flags::delete(&mut *tx, id).await?;
        record(
            &mut tx,
            actor,
            "flag.delete",
            id,
            Some(to_value(&before)),
            None,
        )
        .await?;
        Removed::Deleted
    } else {
        let mut after = before.clone();
        after.archived = true;
        Removed::Archived(Box::new(
            save(&mut tx, actor, "flag.archive", &before, &after).await?,
        ))
    };
    tx.commit().await?;
    Ok(removed)
}

/// Writes `after` over `before` and records the change; the flag as stored.
async fn save(
    conn: &mut sqlx::PgConnection,
    actor: &str,
    action: &str,
    before: &Flag,
    after: &Flag,
) -> Result<Flag> {
    flags::update(&mut *conn, after).await?;
    let saved = flags::get(&mut *conn, after.id, false)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no flag {}", after.id)))?;
    let (was, now) = (Some(to_value(before)), Some(to_value(&saved)));
    record(conn, actor, action, after.id, was, now).await?;
    Ok(saved)
}

/// Copies a flag into environment `target` as a draft (same key, spec and salt), checked as
/// the target would compile it; it goes out with the target's next publish, serving only
/// previews until it is launched there.
pub async fn promote_flag(ctx: &Ctx, actor: &str, id: Uuid, target: Uuid) -> Result<Flag> {
    let mut tx = ctx.pool.begin().await?;
    let mut source = live(&mut tx, id).await?;
    source.spec.draft = true;
    let env = environments::get(&mut *tx, target)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no environment {target}")))?;
    if target == source.environment_id {
        return Err(AdminError::BadRequest(format!(
            "flag {:?} is already in {}",
            source.key, env.name
        )));
    }
    check(&mut tx, target, &source.key, &source.spec, None).await?;
    let flag = flags::insert(
        &mut *tx,
        target,
        &source.key,
        &source.name,
        &source.description,
        &source.spec,
    )
    .await
    .map_err(|e| {
        AdminError::on_unique(
            e,
            format!("{} already has a flag {:?}", env.name, source.key),
        )
    })?;
    let from = serde_json::json!({"from": source.id, "environmentId": source.environment_id});
    record(
        &mut tx,
        actor,
        "flag.promote",
        flag.id,
        Some(from),
        Some(to_value(&flag)),
    )
    .await?;
    tx.commit().await?;
    Ok(flag)
}

/// A live flag, its row held for the transaction.
async fn live(conn: &mut sqlx::PgConnection, id: Uuid) -> Result<Flag> {
    match flags::get(&mut *conn, id, true).await? {
        Some(flag) if !flag.archived => Ok(flag),
        Some(flag) => Err(AdminError::Conflict(format!(
            "flag {:?} is archived",
            flag.key
        ))),
        None => Err(AdminError::NotFound(format!("no flag {id}"))),
    }
}

/// Checks a flag as the environment's next snapshot would carry it, next to its published
/// experiments, its other flags and every audience.
async fn check(
    conn: &mut sqlx::PgConnection,
    environment: Uuid,
    key: &str,
    spec: &FlagSpec,
    replacing: Option<Uuid>,
) -> Result<()> {
    let env = environments::get(&mut *conn, environment)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no environment {environment}")))?;
    let all = experiments::list(&mut *conn, Some(environment)).await?;
    let audiences = audiences::list(&mut *conn).await?;
    let others: Vec<Flag> = flags::list(&mut *conn, environment)
        .await?
        .into_iter()
        .filter(|f| Some(f.id) != replacing && f.key != key)
        .collect();
    let (mut content, _) = compile::content(&all, &audiences, &env.settings, &others);
    content.flags.push(spec.to_snapshot(key));
    compile::check_flag(content, key).map_err(|problems| AdminError::Invalid(camel(problems)))
}

/// Problem paths in the REST API's words.
fn camel(problems: Problems) -> Problems {
    let mut out = Problems::default();
    for p in problems.iter() {
        let path = p.path.replace("off_variant", "offVariant");
        out.push_coded(path, p.code, p.message.clone());
    }
    out
}

/// Removes string field `name` from `fields`.
fn text_field(fields: &mut Map<String, Value>, name: &str) -> Result<Option<String>> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(invalid(name, format!("{name} must be a string"))),
    }
}

/// The spec in `fields`, with serde's word on what does not fit.
fn spec_of(fields: Value) -> Result<FlagSpec> {
    serde_json::from_value(fields).map_err(|e| invalid("", format!("not a flag: {e}")))
}
