//! Publish history: the versions an environment has published, each one's body, and what
//! changed between two of them, both as field edits and as the bucketing plan (which units
//! the newer version moves).

use cleave_core::plan::Plan;
use cleave_core::snapshot::Snapshot;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::db::{environments, snapshots};
use crate::error::{AdminError, Result};
use crate::service::Ctx;

/// One published version, as the history list shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    pub version: i64,
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: time::OffsetDateTime,
    pub published_by: String,
    pub experiments: i32,
    /// Whether the environment's pointer names this version now.
    pub current: bool,
}

/// What changed from version `from` to version `to`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    pub from: i64,
    pub to: i64,
    /// Environment-wide fields (holdout, audiences, origins, ...).
    pub settings: Vec<FieldChange>,
    pub experiments: Vec<ExperimentDiff>,
    /// What serving `to` instead of `from` does to units already bucketed.
    pub plan: Plan,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentDiff {
    pub key: String,
    pub change: Presence,
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Added,
    Removed,
    Changed,
}

/// One leaf that differs; `null` stands for absent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub before: Value,
    pub after: Value,
}

/// Fields that differ in every version and say nothing about what it serves.
const STAMPS: [&str; 4] = ["version", "published_at", "published_by", "experiments"];

pub async fn list(ctx: &Ctx, environment: Uuid) -> Result<Vec<Version>> {
    let env = environments::get(&ctx.pool, environment)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no environment {environment}")))?;
    let rows = snapshots::list(&ctx.pool, environment).await?;
    Ok(rows
        .into_iter()
        .map(|r| Version {
            current: env.current_version == Some(r.version),
            version: r.version,
            sha256: r.sha256,
            published_at: r.published_at,
            published_by: r.published_by,
            experiments: r.experiments,
        })
        .collect())
}

/// The exact body published as `version`.
pub async fn body(ctx: &Ctx, environment: Uuid, version: i64) -> Result<Value> {
    let stored = snapshots::get(&ctx.pool, environment, version)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no version {version} of {environment}")))?;
    serde_json::from_str(&stored.body)
        .map_err(|e| AdminError::Internal(format!("stored v{version} does not parse: {e}")))
}

/// What changed from `against` (default: the version before) to `version`.
pub async fn diff(
    ctx: &Ctx,
    environment: Uuid,
    version: i64,
    against: Option<i64>,
) -> Result<Diff> {
    let from = against.unwrap_or(version - 1);
    let newer = body(ctx, environment, version).await?;
    // Version 1 is compared with nothing: every experiment is added.
    let older = if from < 1 && against.is_none() {
        Value::Object(Map::new())
    } else {
        body(ctx, environment, from).await?
    };
    compare(&older, &newer, from, version)
}

/// What publishing now would change against the version in service: the same diff, from
/// the current version to the snapshot the next publish would upload.
pub async fn pending(ctx: &Ctx, environment: Uuid) -> Result<Diff> {
    let mut conn = ctx.pool.acquire().await?;
    let (env, next, _) = crate::publish::compile_next(&mut conn, environment, "pending").await?;
    drop(conn);
    let newer = serde_json::to_value(&next)
        .map_err(|e| AdminError::Internal(format!("snapshot does not serialise: {e}")))?;
    let older = match env.current_version {
        Some(current) => body(ctx, environment, current).await?,
        None => Value::Object(Map::new()),
    };
    let to = i64::try_from(next.version).unwrap_or(i64::MAX);
    compare(&older, &newer, env.current_version.unwrap_or(0), to)
}

fn compare(older: &Value, newer: &Value, from: i64, to: i64) -> Result<Diff> {
    let parse = |v: &Value| serde_json::from_value::<Snapshot>(v.clone()).ok();
    let plan = match parse(newer) {
        Some(next) => cleave_core::plan::plan(parse(older).as_ref(), &next),
        None => return Err(AdminError::Internal(format!("v{to} is not a snapshot"))),
    };
    Ok(Diff {
        from,
        to,
        settings: settings_changes(older, newer),
        experiments: experiment_changes(older, newer),
        plan,
    })
}

fn settings_changes(older: &Value, newer: &Value) -> Vec<FieldChange> {
    let strip = |v: &Value| -> Value {
        let mut map = v.as_object().cloned().unwrap_or_default();
        for stamp in STAMPS {
            map.remove(stamp);
        }
        Value::Object(map)
    };
    let mut out = Vec::new();
    changes("", &strip(older), &strip(newer), &mut out);
    out
}

/// Experiments matched by key, in the newer version's order, then the removed ones.
pub fn experiment_changes(older: &Value, newer: &Value) -> Vec<ExperimentDiff> {
    let by_key = |v: &Value| -> Vec<(String, Value)> {
        v.get("experiments")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|e| (key_of(e), e.clone()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let (old, new) = (by_key(older), by_key(newer));
    let find = |list: &[(String, Value)], key: &str| {
        list.iter().find(|(k, _)| k == key).map(|(_, e)| e.clone())
    };
    let mut out = Vec::new();
    for (key, after) in &new {
        match find(&old, key) {
            None => out.push(ExperimentDiff {
                key: key.clone(),
                change: Presence::Added,
                fields: Vec::new(),
            }),
            Some(before) => {
                let mut fields = Vec::new();
                changes("", &before, after, &mut fields);
                if !fields.is_empty() {
                    out.push(ExperimentDiff {
                        key: key.clone(),
                        change: Presence::Changed,
                        fields,
                    });
                }
            }
        }
    }
    for (key, _) in &old {
        if find(&new, key).is_none() {
            out.push(ExperimentDiff {
                key: key.clone(),
                change: Presence::Removed,
                fields: Vec::new(),
            });
        }
    }
    out
}

fn key_of(experiment: &Value) -> String {
    experiment
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Collects the leaves that differ. Objects are walked key by key; arrays of equal length
/// element by element; anything else (or arrays that grew or shrank) is one change.
pub fn changes(path: &str, before: &Value, after: &Value, out: &mut Vec<FieldChange>) {
    if before == after {
        return;
    }
    let join = |segment: &str| {
        if path.is_empty() {
            segment.to_owned()
        } else {
            format!("{path}.{segment}")
        }
    };
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (x, y) = (
                    b.get(key).unwrap_or(&Value::Null),
                    a.get(key).unwrap_or(&Value::Null),
                );
                changes(&join(key), x, y, out);
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (i, (x, y)) in b.iter().zip(a).enumerate() {
                changes(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ => out.push(FieldChange {
            path: path.to_owned(),
            before: before.clone(),
            after: after.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(before: Value, after: Value) -> Vec<String> {
        let mut out = Vec::new();
        changes("", &before, &after, &mut out);
        out.into_iter().map(|c| c.path).collect()
    }

    #[test]
    fn leaves_are_named_by_path() {
        let before = json!({"traffic": 5000, "variants": [{"key": "a", "payload": {"c": 1}}]});
        let after = json!({"traffic": 10000, "variants": [{"key": "a", "payload": {"c": 2}}],
                           "layer": {"key": "l"}});
        assert_eq!(
            paths(before, after),
            ["layer", "traffic", "variants[0].payload.c"]
        );
    }

    #[test]
    fn arrays_that_change_length_are_one_change() {
        let mut out = Vec::new();
        changes(
            "ranges",
            &json!([[0, 1]]),
            &json!([[0, 1], [2, 3]]),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].path, "ranges");
        assert_eq!(out[0].after, json!([[0, 1], [2, 3]]));
    }

    #[test]
    fn experiments_are_matched_by_key() {
        let older = json!({"experiments": [
            {"key": "kept", "traffic": 1}, {"key": "same", "traffic": 1}, {"key": "gone"}]});
        let newer = json!({"experiments": [
            {"key": "new"}, {"key": "same", "traffic": 1}, {"key": "kept", "traffic": 2}]});
        let diff = experiment_changes(&older, &newer);
        let summary: Vec<(&str, Presence, usize)> = diff
            .iter()
            .map(|d| (d.key.as_str(), d.change, d.fields.len()))
            .collect();
        assert_eq!(
            summary,
            [
                ("new", Presence::Added, 0),
                ("kept", Presence::Changed, 1),
                ("gone", Presence::Removed, 0)
            ]
        );
        assert_eq!(diff[1].fields[0].before, json!(1));
    }

    #[test]
    fn stamps_are_not_settings_changes() {
        let older = json!({"version": 1, "published_by": "a", "holdout": null, "experiments": []});
        let newer = json!({"version": 2, "published_by": "b", "holdout": {"salt": "h"},
                           "experiments": [{"key": "x"}]});
        let out = settings_changes(&older, &newer);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].path, "holdout");
    }
}
