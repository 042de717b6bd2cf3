//! Turns stored experiments into cleave-core snapshot types and checks them with core's own
//! validation, so whatever admin accepts is exactly what the worker can run.

use std::collections::{BTreeMap, BTreeSet};

use cleave_core::keys::is_valid_key;
use cleave_core::snapshot::{self, Condition, LayerSlot, Rule, Snapshot, SCHEMA_VERSION};
use cleave_core::{Engine, Problems};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;

use crate::model::{Audience, EnvironmentSettings, Experiment, Flag, Status};

/// Experiments a snapshot carries: running ones enrol units; paused ones stay visible.
pub fn is_published(status: Status) -> bool {
    matches!(status, Status::Running | Status::Paused)
}

/// A draft with variants travels too, marked `draft`: it enrols nobody, and a force token can
/// preview it at the edge.
pub fn is_previewable(e: &Experiment) -> bool {
    e.status == Status::Draft && !e.variants.is_empty()
}

/// The snapshot form of one experiment.
pub fn to_snapshot_experiment(e: &Experiment) -> snapshot::Experiment {
    let variants = e
        .variants
        .iter()
        .map(|v| snapshot::Variant {
            id: v.id.to_string(),
            key: v.key.clone(),
            payload: snapshot::Payload::new(&v.payload),
            allow: v.allow.clone(),
            route: v.route.clone(),
            ranges: e
                .allocations
                .iter()
                .filter(|a| a.variant_id == v.id)
                .map(|a| [a.range_start, a.range_end])
                .collect(),
        })
        .collect();
    snapshot::Experiment {
        id: e.id.to_string(),
        key: e.key.clone(),
        status: e.status.to_snapshot(),
        unit: e.unit.clone(),
        fallback_unit: e.fallback_unit.clone(),
        salt: Some(e.salt.clone()),
        traffic: i64::from(e.traffic),
        start_at: e.start_at.and_then(|t| t.format(&Rfc3339).ok()),
        end_at: e.end_at.and_then(|t| t.format(&Rfc3339).ok()),
        layer: e.layer.as_ref().map(|l| LayerSlot {
            key: l.key.clone(),
            salt: l.salt.clone().unwrap_or_else(|| l.key.clone()),
            ranges: l.ranges.clone(),
        }),
        targeting: e.targeting_rules.clone(),
        prerequisites: e.prerequisites.clone(),
        routes: e.routes.clone(),
        route_all_methods: e.route_all_methods,
        variants,
    }
}

/// Audience keys the rules reference, at any depth.
pub fn referenced_audiences(rules: &[Rule], out: &mut BTreeSet<String>) {
    fn walk(c: &Condition, out: &mut BTreeSet<String>) {
        if let Some(key) = &c.audience {
            out.insert(key.clone());
        }
        for child in c.all.iter().chain(c.any.iter()).flatten() {
            walk(child, out);
        }
        if let Some(inner) = &c.not {
            walk(inner, out);
        }
    }
    for rule in rules {
        for c in &rule.conditions {
            walk(c, out);
        }
    }
}

/// The snapshot form of the audiences `experiments` and `flags` reference.
fn audiences_for(
    experiments: &[snapshot::Experiment],
    audiences: &[Audience],
    flags: &[snapshot::Flag],
) -> Vec<snapshot::Audience> {
    let mut used = BTreeSet::new();
    for e in experiments {
        referenced_audiences(&e.targeting, &mut used);
    }
    for rule in flags.iter().flat_map(|f| &f.rules) {
        referenced_audiences(&rule.targeting, &mut used);
    }
    audiences
        .iter()
        .filter(|a| used.contains(&a.key))
        .map(to_snapshot_audience)
        .collect()
}

fn to_snapshot_audience(a: &Audience) -> snapshot::Audience {
    snapshot::Audience {
        key: a.key.clone(),
        targeting: a.targeting_rules.clone(),
    }
}

/// What a snapshot carries besides its header: experiments, the audiences they use and the
/// environment's settings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Content {
    pub experiments: Vec<snapshot::Experiment>,
    pub audiences: Vec<snapshot::Audience>,
    pub settings: EnvironmentSettings,
    /// In key order.
    pub flags: Vec<snapshot::Flag>,
}

/// The published content of an environment (experiments and flags in key order) and its
/// hash. `flags` are the environment's live flags.
pub fn content(
    experiments: &[Experiment],
    audiences: &[Audience],
    settings: &EnvironmentSettings,
    flags: &[Flag],
) -> (Content, String) {
    let mut published: Vec<snapshot::Experiment> = experiments
        .iter()
        .filter(|e| is_published(e.status) || is_previewable(e))
        .map(to_snapshot_experiment)
        .collect();
    published.sort_by(|a, b| a.key.cmp(&b.key));
    let mut flags: Vec<snapshot::Flag> = flags
        .iter()
        .filter(|f| !f.archived)
        .map(|f| f.spec.to_snapshot(&f.key))
        .collect();
    flags.sort_by(|a, b| a.key.cmp(&b.key));
    let content = Content {
        audiences: audiences_for(&published, audiences, &flags),
        experiments: published,
        settings: settings.clone(),
        flags,
    };
    let bytes = serde_json::to_vec(&content).unwrap_or_default();
    (content, hex::encode(Sha256::digest(bytes)))
}

/// Builds and validates a snapshot; problems name experiments by key.
pub fn build(
    environment: &str,
    version: i64,
    published_at: &str,
    published_by: &str,
    content: Content,
) -> Result<Snapshot, Problems> {
    let keys: Vec<String> = content.experiments.iter().map(|e| e.key.clone()).collect();
    let snapshot = assemble(environment, version, published_at, published_by, content);
    match Engine::new(snapshot.clone()) {
        Ok(_) => Ok(snapshot),
        Err(problems) => Err(name_by_key(problems, &keys)),
    }
}

fn assemble(
    environment: &str,
    version: i64,
    published_at: &str,
    published_by: &str,
    content: Content,
) -> Snapshot {
    Snapshot {
        schema: SCHEMA_VERSION,
        environment: environment.to_owned(),
        version: u64::try_from(version).unwrap_or(0),
        published_at: published_at.to_owned(),
        published_by: published_by.to_owned(),
        experiments: content.experiments,
        audiences: content.audiences,
        context_schema: content.settings.context_schema,
        holdout: content.settings.holdout,
        bot_policy: content.settings.bot_policy,
        anonymous_exposures: content.settings.anonymous_exposures,
        ofrep: content.settings.ofrep.to_snapshot(),
        consent: content.settings.consent,
        identity: content.settings.identity,
        origins: content.settings.origins,
        flags: content.flags,
    }
}

/// Checks `content` as the next snapshot would carry it; problems name experiments by key.
pub fn check_content(content: Content) -> Result<(), Problems> {
    let keys: Vec<String> = content.experiments.iter().map(|e| e.key.clone()).collect();
    Engine::new(probe(content))
        .map(|_| ())
        .map_err(|problems| name_by_key(problems, &keys))
}

/// A snapshot made only to be checked by cleave-core, never published.
pub fn probe(content: Content) -> Snapshot {
    assemble("check", 1, "", "", content)
}

/// Checks an experiment being edited, as if it were running, next to the running or paused
/// experiments of its environment (its layer siblings as if running too) and every audience.
/// A draft may lack variants; everything else must already hold.
pub fn check_edit(
    edited: &Experiment,
    others: &[Experiment],
    audiences: &[Audience],
    origins: &BTreeMap<String, String>,
) -> Result<(), Problems> {
    let mut subject = to_snapshot_experiment(edited);
    subject.status = snapshot::Status::Running;
    let mut experiments = vec![subject];
    let layer = edited.layer.as_ref().map(|l| l.key.as_str());
    // Drafts and stopped experiments are present too (they enrol nobody), so a prerequisite
    // may name one; publishing refuses it until it runs.
    for other in others
        .iter()
        .filter(|o| o.id != edited.id && o.status != Status::Archived)
    {
        let mut published = to_snapshot_experiment(other);
        let sibling = other.layer.as_ref().map(|l| l.key.as_str()) == layer;
        if layer.is_some() && sibling && is_published(other.status) {
            published.status = snapshot::Status::Running;
        }
        experiments.push(published);
    }
    let keys: Vec<String> = experiments.iter().map(|e| e.key.clone()).collect();
    let snapshot = probe(Content {
        experiments,
        audiences: audiences.iter().map(to_snapshot_audience).collect(),
        // Only the allow-list of origins matters to one experiment's routing actions.
        settings: EnvironmentSettings {
            origins: origins.clone(),
            ..EnvironmentSettings::default()
        },
        flags: Vec::new(),
    });
    let Err(problems) = Engine::new(snapshot) else {
        return Ok(());
    };
    let mut problems = name_by_key(problems, &keys);
    // Only the edited experiment's own problems count here.
    let own = format!("experiments[{}]", edited.key);
    problems.retain(|p| p.path.starts_with(&own) || p.path.starts_with("audiences"));
    if edited.status == Status::Draft {
        use cleave_core::problems::Code;
        problems.retain(|p| !matches!(p.code, Code::NoVariants | Code::DraftPrerequisite));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Checks flag `key` as the next snapshot would carry it in `content`; problems are the
/// flag's own, with paths inside it (`rules[0].serve.variant`).
pub fn check_flag(content: Content, key: &str) -> Result<(), Problems> {
    let Some(index) = content.flags.iter().position(|f| f.key == key) else {
        return Ok(());
    };
    let Err(problems) = Engine::new(probe(content)) else {
        return Ok(());
    };
    let own = format!("flags[{index}]");
    let mut out = Problems::default();
    for p in problems.iter() {
        if let Some(rest) = p.path.strip_prefix(&own) {
            out.push_coded(rest.trim_start_matches('.'), p.code, p.message.clone());
        }
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(out)
    }
}

/// Checks the fields of a new experiment.
pub fn check_new(key: &str, unit: &str, salt: &str) -> Result<(), Problems> {
    let mut problems = Problems::default();
    if !is_valid_key(key) {
        problems.push("key", cleave_core::keys::key_problem(key));
    }
    if !is_valid_key(unit) {
        problems.push("unit", cleave_core::keys::key_problem(unit));
    }
    if let Some(problem) = cleave_core::keys::salt_problem(salt) {
        problems.push("salt", problem);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Rewrites `experiments[i]` paths to `experiments[<key>]` so problems point at something a
/// user recognises.
fn name_by_key(problems: Problems, keys: &[String]) -> Problems {
    let mut out = Problems::default();
    for p in problems.iter() {
        let mut path = p.path.clone();
        for (i, key) in keys.iter().enumerate() {
            let prefix = format!("experiments[{i}]");
            if let Some(rest) = p.path.strip_prefix(&prefix) {
                path = format!("experiments[{key}]{rest}");
                break;
            }
        }
        out.push_coded(path, p.code, p.message.clone());
    }
    out
}
