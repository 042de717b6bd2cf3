//! Running a stopped experiment again as a new phase: a new salt (chosen, or the key with the
//! phase number), so every unit is drawn again and the new phase's exposures and results are
//! its own. The experiment becomes a DRAFT; starting it shows the plan and publishes as usual.

use time::OffsetDateTime;
use uuid::Uuid;

use super::experiments::load_for_edit;
use super::{invalid, Ctx};
use crate::db::audit::{self, Change, Entry};
use crate::db::experiments;
use crate::db::phases::{self, Phase};
use crate::db::snapshots::{self, Carried};
use crate::error::{AdminError, Result};
use crate::model::{Experiment, Status};

/// One phase with its history: what was published and changed while it was the current one.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseHistory {
    #[serde(flatten)]
    pub phase: Phase,
    /// When the next phase began; absent for the current phase.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ended_at: Option<OffsetDateTime>,
    /// The published versions that carried the experiment under this phase's salt.
    pub versions: Vec<Carried>,
    /// The audit entries about the experiment from this phase's start to the next one's.
    pub changes: Vec<Entry>,
}

/// The experiment's phases, oldest first, each with its history; one (its salt since
/// creation) when it never ran again.
pub async fn list_phases(ctx: &Ctx, id: Uuid) -> Result<Vec<PhaseHistory>> {
    let mut conn = ctx.pool.acquire().await?;
    let experiment = experiments::load(&mut conn, id, false)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no experiment {id}")))?;
    let phases = phases_of(&mut conn, &experiment).await?;
    let mut carried =
        snapshots::carrying(&mut *conn, experiment.environment_id, &experiment.key).await?;
    let mut changes = audit::list(&mut *conn, Some(&id.to_string())).await?;
    let ends: Vec<Option<OffsetDateTime>> = phases
        .iter()
        .skip(1)
        .map(|p| Some(p.started_at))
        .chain([None])
        .collect();
    let mut out = Vec::with_capacity(phases.len());
    for (phase, ended_at) in phases.into_iter().zip(ends) {
        let (versions, rest): (Vec<Carried>, Vec<Carried>) =
            carried.into_iter().partition(|c| c.salt == phase.salt);
        carried = rest;
        // The entry that began a later phase belongs to it, whatever its timestamp.
        let opens_later = |e: &Entry| {
            e.action == "experiment.phase"
                && e.after
                    .as_ref()
                    .and_then(|after| after["phase"].as_i64())
                    .is_some_and(|n| n > i64::from(phase.number))
        };
        let (mine, later): (Vec<Entry>, Vec<Entry>) = changes
            .into_iter()
            .partition(|e| !opens_later(e) && ended_at.is_none_or(|end| e.at < end));
        changes = later;
        out.push(PhaseHistory {
            phase,
            ended_at,
            versions,
            changes: mine,
        });
    }
    Ok(out)
}

/// The phases alone, oldest first.
async fn phase_list(ctx: &Ctx, id: Uuid) -> Result<Vec<Phase>> {
    let mut conn = ctx.pool.acquire().await?;
    let experiment = experiments::load(&mut conn, id, false)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no experiment {id}")))?;
    phases_of(&mut conn, &experiment).await
}

async fn phases_of(conn: &mut sqlx::PgConnection, experiment: &Experiment) -> Result<Vec<Phase>> {
    let recorded = phases::list(&mut *conn, experiment.id).await?;
    if recorded.is_empty() {
        return Ok(vec![Phase {
            number: 1,
            salt: experiment.salt.clone(),
            started_at: experiment.created_at,
        }]);
    }
    Ok(recorded)
}

/// Makes STOPPED experiment `id` a DRAFT of its next phase under `salt` (or `<key>-<n>`).
pub async fn new_phase(
    ctx: &Ctx,
    actor: &str,
    id: Uuid,
    salt: Option<String>,
) -> Result<Experiment> {
    let mut tx = ctx.pool.begin().await?;
    let before = load_for_edit(&mut tx, id).await?;
    if before.status != Status::Stopped {
        return Err(AdminError::Conflict(format!(
            "experiment {:?} is {}; stop it before starting a new phase",
            before.key,
            before.status.as_str()
        )));
    }
    let past = phases_of(&mut tx, &before).await?;
    let number = past.last().map_or(1, |p| p.number) + 1;
    let salt = salt.unwrap_or_else(|| format!("{}-{number}", before.key));
    if let Some(problem) = cleave_core::keys::salt_problem(&salt) {
        return Err(invalid("salt", problem));
    }
    if past.iter().any(|p| p.salt == salt) {
        return Err(invalid(
            "salt",
            format!("phase salts must differ: {salt:?} was used before"),
        ));
    }
    if phases::list(&mut *tx, id).await?.is_empty() {
        phases::insert(&mut *tx, id, 1, &before.salt, before.created_at).await?;
    }
    phases::insert(&mut *tx, id, number, &salt, OffsetDateTime::now_utc()).await?;
    experiments::begin_phase(&mut *tx, id, &salt).await?;
    let after = load_for_edit(&mut tx, id).await?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "experiment.phase",
            entity: "experiment",
            entity_id: id.to_string(),
            before: Some(serde_json::json!({"status": before.status, "salt": before.salt})),
            after: Some(
                serde_json::json!({"status": after.status, "salt": after.salt, "phase": number}),
            ),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// The salt of phase `number` of experiment `id`.
pub async fn phase_salt(ctx: &Ctx, id: Uuid, number: i32) -> Result<String> {
    phase_list(ctx, id)
        .await?
        .into_iter()
        .find(|p| p.number == number)
        .map(|p| p.salt)
        .ok_or_else(|| AdminError::NotFound(format!("experiment {id} has no phase {number}")))
}
