//! Publish and rollback: compile, validate, store the version, upload the body, flip the
//! pointer — in that order, inside one transaction that holds the environment's row lock.

use cleave_core::plan::Plan;
use cleave_core::snapshot::{encode_binary, Snapshot};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::compile;
use crate::context::Outlet;
use crate::db::audit::{self, Change};
use crate::db::snapshots::{self, NewSnapshot};
use crate::db::{audiences, environments, experiments, flags};
use crate::error::{AdminError, Result};
use crate::model::{Environment, Published};
use crate::observability;
use crate::signing::{self};

/// Compiles the environment into the snapshot its next version would be, without storing it.
pub async fn compile_next(
    conn: &mut PgConnection,
    environment: Uuid,
    actor: &str,
) -> Result<(Environment, Snapshot, String)> {
    let env = environments::get(&mut *conn, environment)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no environment {environment}")))?;
    let all = experiments::list(conn, Some(environment)).await?;
    let audiences = audiences::list(&mut *conn).await?;
    let flags = flags::list(&mut *conn, environment).await?;
    let (content, sha256) = compile::content(&all, &audiences, &env.settings, &flags);
    let version = snapshots::latest_version(&mut *conn, environment).await? + 1;
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    let published_at = now
        .format(&Rfc3339)
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    let snapshot = compile::build(&env.name, version, &published_at, actor, content)
        .map_err(AdminError::Invalid)?;
    Ok((env, snapshot, sha256))
}

/// The plan for publishing `environment` now: what changes against the version in service.
pub async fn plan_next(
    conn: &mut PgConnection,
    environment: Uuid,
    actor: &str,
) -> Result<(Environment, Plan)> {
    let (env, snapshot, _) = compile_next(conn, environment, actor).await?;
    let current = current_snapshot(conn, &env).await?;
    let plan = cleave_core::plan::plan(current.as_ref(), &snapshot);
    Ok((env, plan))
}

/// The snapshot the environment's pointer names, if any.
async fn current_snapshot(conn: &mut PgConnection, env: &Environment) -> Result<Option<Snapshot>> {
    let Some(version) = env.current_version else {
        return Ok(None);
    };
    let Some(stored) = snapshots::get(&mut *conn, env.id, version).await? else {
        return Ok(None);
    };
    serde_json::from_str(&stored.body)
        .map(Some)
        .map_err(|e| AdminError::Internal(format!("stored v{version} does not parse: {e}")))
}

/// Publishes `environment` inside the caller's transaction. Unchanged content is a no-op that
/// returns the current version. A change that moves already-enrolled units between variants
/// is refused (409) unless `confirm` is set. A failed upload returns an error, so the caller's
/// rollback discards the new version and the pointer stays where it was.
pub async fn publish_in(
    conn: &mut PgConnection,
    out: Outlet<'_>,
    environment: Uuid,
    actor: &str,
    confirm: bool,
) -> Result<Published> {
    let env = lock(conn, environment).await?;
    let name = env.name.clone();
    let result = publish_locked(conn, out, env, actor, confirm).await;
    observability::count_publish(&name, "publish", outcome(&result));
    result
}

/// The environment's row, locked for the rest of the transaction.
async fn lock(conn: &mut PgConnection, environment: Uuid) -> Result<Environment> {
    environments::lock(&mut *conn, environment)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no environment {environment}")))
}

/// The metrics label of a publish or rollback result.
fn outcome(result: &Result<Published>) -> &'static str {
    match result {
        Ok(p) if p.changed => "published",
        Ok(_) => "unchanged",
        Err(_) => "failed",
    }
}

async fn publish_locked(
    conn: &mut PgConnection,
    out: Outlet<'_>,
    env: Environment,
    actor: &str,
    confirm: bool,
) -> Result<Published> {
    let environment = env.id;
    let (_, snapshot, sha256) = compile_next(conn, environment, actor).await?;
    if let Some(current) = env.current_version {
        let stored = snapshots::get(&mut *conn, environment, current).await?;
        if stored.is_some_and(|s| s.sha256 == sha256) {
            return Ok(Published {
                environment: env.name,
                version: current,
                sha256,
                changed: false,
                plan: None,
            });
        }
    }
    let plan = cleave_core::plan::plan(current_snapshot(conn, &env).await?.as_ref(), &snapshot);
    if !confirm && !plan.needs_confirmation.is_empty() {
        return Err(AdminError::Unconfirmed(Box::new(plan)));
    }
    upload_version(
        conn,
        out,
        &env,
        &snapshot,
        &sha256,
        actor,
        "environment.publish",
    )
    .await?;
    Ok(Published {
        environment: env.name,
        version: i64::try_from(snapshot.version).unwrap_or(i64::MAX),
        sha256,
        changed: true,
        plan: Some(plan),
    })
}

/// Stores `snapshot` as the environment's next version, uploads its body and sidecar, flips
/// the pointer (signed, with an expiry, when a key is configured) and audits `action`.
async fn upload_version(
    conn: &mut PgConnection,
    out: Outlet<'_>,
    env: &Environment,
    snapshot: &Snapshot,
    sha256: &str,
    actor: &str,
    action: &str,
) -> Result<()> {
    let sink = out.sink;
    let environment = env.id;
    let version = i64::try_from(snapshot.version).unwrap_or(i64::MAX);
    let body = serde_json::to_string(snapshot).map_err(|e| AdminError::Internal(e.to_string()))?;
    let published_at = OffsetDateTime::parse(&snapshot.published_at, &Rfc3339)
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    snapshots::insert(
        &mut *conn,
        NewSnapshot {
            environment,
            version,
            sha256,
            body: &body,
            published_at,
            published_by: actor,
        },
    )
    .await?;
    let pointer_note = pointer_note(env);
    let sidecar = encode_binary(snapshot);
    sink.put_body(&env.name, version, &body, Some(&sidecar))
        .await
        .map_err(|e| {
            AdminError::Upload(format!(
                "uploading v{version} of {} failed: {e}; {pointer_note}",
                env.name
            ))
        })?;
    let pointer = signing::pointer_to(
        out.signer,
        &env.name,
        snapshot.version,
        sha256,
        None,
        &body,
        Some(&sidecar),
    );
    out.flip_pointer(&env.name, &pointer).await.map_err(|e| {
        AdminError::Upload(format!(
            "flipping the pointer of {} to v{version} failed: {e}; {pointer_note}",
            env.name
        ))
    })?;
    environments::set_current_version(&mut *conn, environment, version).await?;
    environments::set_pointer(&mut *conn, environment, &pointer).await?;
    audit::record(
        &mut *conn,
        Change {
            actor,
            action,
            entity: "environment",
            entity_id: environment.to_string(),
            before: Some(serde_json::json!({"version": env.current_version})),
            after: Some(serde_json::json!({
                "version": version, "sha256": sha256, "sink": sink.describe(),
                "signed": pointer.signature.is_some(),
            })),
        },
    )
    .await?;
    tracing::info!(environment = %env.name, version, sink = %sink.describe(), action, "published");
    Ok(())
}

/// Publishes the environment's current snapshot with one experiment's status changed and
/// nothing else: what an automatic pause publishes, so edits still waiting for a publisher
/// stay waiting. `None` when nothing is published or the experiment is not in it.
pub async fn publish_status_only(
    conn: &mut PgConnection,
    out: Outlet<'_>,
    environment: Uuid,
    experiment_key: &str,
    status: cleave_core::snapshot::Status,
    actor: &str,
) -> Result<Option<Published>> {
    let change = |snapshot: &mut Snapshot| {
        let found = snapshot
            .experiments
            .iter_mut()
            .find(|e| e.key == experiment_key);
        found.map(|e| e.status = status).is_some()
    };
    publish_change(
        conn,
        out,
        environment,
        actor,
        "environment.publish_status",
        change,
    )
    .await
}

/// Publishes the environment's current snapshot changed by `change` and nothing else (a
/// status change, a flag's kill switch). `None` when nothing is published or `change` finds
/// nothing to change (returns `false`).
pub async fn publish_change(
    conn: &mut PgConnection,
    out: Outlet<'_>,
    environment: Uuid,
    actor: &str,
    action: &str,
    change: impl FnOnce(&mut Snapshot) -> bool,
) -> Result<Option<Published>> {
    let env = lock(conn, environment).await?;
    let Some(mut snapshot) = current_snapshot(conn, &env).await? else {
        return Ok(None);
    };
    if !change(&mut snapshot) {
        return Ok(None);
    }
    let version = snapshots::latest_version(&mut *conn, environment).await? + 1;
    snapshot.version = u64::try_from(version).unwrap_or(0);
    snapshot.published_at = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .format(&Rfc3339)
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    actor.clone_into(&mut snapshot.published_by);
    cleave_core::Engine::new(snapshot.clone()).map_err(|e| {
        AdminError::Internal(format!("the changed snapshot does not validate: {e}"))
    })?;
    let body = serde_json::to_vec(&snapshot).map_err(|e| AdminError::Internal(e.to_string()))?;
    let sha256 = hex::encode(Sha256::digest(&body));
    let name = env.name.clone();
    let result = upload_version(conn, out, &env, &snapshot, &sha256, actor, action).await;
    observability::count_publish(
        &name,
        "publish",
        if result.is_ok() {
            "published"
        } else {
            "failed"
        },
    );
    result?;
    Ok(Some(Published {
        environment: name,
        version,
        sha256,
        changed: true,
        plan: None,
    }))
}

/// Re-signs the expiry of every environment's current pointer and writes it again, so
/// workers keep following it. Environments without a stored signed pointer are skipped.
///
/// # Errors
/// The first database or upload failure; pointers re-signed before it stay written.
pub async fn resign_pointers(pool: &sqlx::PgPool, out: Outlet<'_>) -> Result<Vec<String>> {
    let Some(signer) = out.signer else {
        return Err(AdminError::BadRequest(
            "no snapshot signing key: set CLEAVE_SNAPSHOT_SIGNING_KEY or CLEAVE_SNAPSHOT_SIGNING_KEY_FILE"
                .to_owned(),
        ));
    };
    let mut done = Vec::new();
    for listed in environments::list(pool).await? {
        let mut tx = pool.begin().await?;
        // Under the row lock, so a publish never interleaves with its own pointer's re-sign.
        let env = lock(&mut tx, listed.id).await?;
        let Some(mut pointer) = environments::pointer(&mut *tx, env.id).await? else {
            continue;
        };
        if pointer.signature.is_none() {
            continue;
        }
        signer.stamp_expiry(&env.name, &mut pointer, OffsetDateTime::now_utc());
        out.flip_pointer(&env.name, &pointer).await.map_err(|e| {
            AdminError::Upload(format!("re-signing the pointer of {}: {e}", env.name))
        })?;
        environments::set_pointer(&mut *tx, env.id, &pointer).await?;
        tx.commit().await?;
        tracing::info!(environment = %env.name, version = pointer.version, expires_at = ?pointer.expires_at, "pointer re-signed");
        done.push(env.name);
    }
    Ok(done)
}

/// Re-signs every current pointer every `every` until the process ends; a failure is logged
/// and retried at the next tick.
pub async fn keep_pointers_fresh(ctx: crate::context::Ctx, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = resign_pointers(&ctx.pool, ctx.outlet()).await {
            tracing::error!(error = %e, "re-signing pointers failed");
        }
    }
}

/// Points `environment` back at stored version `to` without recompiling.
pub async fn rollback_in(
    conn: &mut PgConnection,
    out: Outlet<'_>,
    environment: Uuid,
    to: i64,
    actor: &str,
) -> Result<Published> {
    let env = lock(conn, environment).await?;
    let name = env.name.clone();
    let result = rollback_locked(conn, out, env, to, actor).await;
    observability::count_publish(&name, "rollback", outcome(&result));
    result
}

async fn rollback_locked(
    conn: &mut PgConnection,
    out: Outlet<'_>,
    env: Environment,
    to: i64,
    actor: &str,
) -> Result<Published> {
    let sink = out.sink;
    let environment = env.id;
    let stored = snapshots::get(&mut *conn, environment, to)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("{} has no version {to}", env.name)))?;
    let pointer_note = pointer_note(&env);
    // The body is re-sent too, so a sink that never saw this version (e.g. a fresh local KV)
    // still ends up consistent; bodies are immutable, so this rewrites identical bytes.
    // Going back, the pointer carries a signed rollback marker naming the newest version
    // ever published, so every worker (whatever version it holds) accepts it, while a replay
    // of this pointer after a later publish is refused.
    let newest = snapshots::latest_version(&mut *conn, environment).await?;
    let rollback_from = u64::try_from(newest)
        .ok()
        .filter(|&from| from > u64::try_from(to).unwrap_or(0));
    // The sidecar is derived from the stored body; a body this build cannot read (none should
    // exist) is rolled back to without one, and workers read its JSON.
    let sidecar = serde_json::from_str::<Snapshot>(&stored.body)
        .ok()
        .map(|s| encode_binary(&s));
    let pointer = signing::pointer_to(
        out.signer,
        &env.name,
        u64::try_from(to).unwrap_or(0),
        &stored.sha256,
        rollback_from,
        &stored.body,
        sidecar.as_deref(),
    );
    let uploaded = match sink
        .put_body(&env.name, to, &stored.body, sidecar.as_deref())
        .await
    {
        Ok(()) => out.flip_pointer(&env.name, &pointer).await,
        Err(e) => Err(e),
    };
    uploaded.map_err(|e| {
        AdminError::Upload(format!(
            "rolling {} back to v{to} failed: {e}; {pointer_note}",
            env.name
        ))
    })?;
    environments::set_current_version(&mut *conn, environment, to).await?;
    environments::set_pointer(&mut *conn, environment, &pointer).await?;
    audit::record(
        &mut *conn,
        Change {
            actor,
            action: "environment.rollback",
            entity: "environment",
            entity_id: environment.to_string(),
            before: Some(serde_json::json!({"version": env.current_version})),
            after: Some(serde_json::json!({
                "version": to, "sha256": stored.sha256, "rollback_from": rollback_from,
                "signed": pointer.signature.is_some(),
            })),
        },
    )
    .await?;
    Ok(Published {
        environment: env.name,
        version: to,
        sha256: stored.sha256,
        changed: true,
        plan: None,
    })
}

/// Where the pointer stays when an upload fails, for the error message.
fn pointer_note(env: &Environment) -> String {
    match env.current_version {
        Some(v) => format!("the pointer still names v{v}"),
        None => "no version is published".to_owned(),
    }
}
