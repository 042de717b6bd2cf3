//! `cleave-admin metrics …`, `results` (whole or by slice), `holdout` and `guardrails check`.

use clap::Subcommand;
use uuid::Uuid;

use super::print;
use crate::analysis::{self, guardrails, holdout, metrics, slices, Results};
use crate::analytics_store::Dimension;
use crate::error::{AdminError, Result};
use crate::model::MetricRole;
use crate::service::{self, Ctx};

#[derive(Debug, Subcommand)]
pub enum MetricCommand {
    /// Define a metric.
    Create {
        #[arg(long)]
        key: String,
        /// conversion (did the unit do it), continuous (sum of event values per unit) or
        /// ratio (--numerator's sum over --denominator's, e.g. revenue per order).
        #[arg(long)]
        kind: String,
        /// A ratio's numerator: the event key whose values are summed.
        #[arg(long)]
        numerator: Option<String>,
        /// A ratio's denominator: the event key whose values are summed.
        #[arg(long)]
        denominator: Option<String>,
        /// Which way is good: increase or decrease.
        #[arg(long, default_value = "increase")]
        direction: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    List,
    /// Set the metrics an experiment is judged on (replaces the previous set).
    Use {
        /// Experiment id, or key (with --env when the key exists in several environments).
        experiment: String,
        #[arg(long)]
        env: Option<String>,
        #[arg(long, value_delimiter = ',')]
        primary: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        secondary: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        guardrail: Vec<String>,
    },
}

pub async fn metric_command(ctx: &Ctx, actor: &str, command: MetricCommand) -> Result<()> {
    match command {
        MetricCommand::Create {
            key,
            kind,
            numerator,
            denominator,
            direction,
            name,
        } => {
            let req = metrics::NewMetric {
                key,
                name,
                description: String::new(),
                kind,
                direction,
                numerator,
                denominator,
            };
            print(&metrics::create(ctx, actor, req).await?);
        }
        MetricCommand::List => print(&crate::db::analysis::list_metrics(&ctx.pool).await?),
        MetricCommand::Use {
            experiment,
            env,
            primary,
            secondary,
            guardrail,
        } => {
            let id = experiment_id(ctx, &experiment, env.as_deref()).await?;
            let uses = [
                (MetricRole::Primary, primary),
                (MetricRole::Secondary, secondary),
                (MetricRole::Guardrail, guardrail),
            ]
            .into_iter()
            .flat_map(|(role, keys)| {
                keys.into_iter().map(move |metric| metrics::MetricUse {
                    metric,
                    role: role.as_str().to_owned(),
                })
            })
            .collect();
            let req = metrics::ExperimentMetrics { metrics: uses };
            print(&metrics::set_for_experiment(ctx, actor, id, req).await?);
        }
    }
    Ok(())
}

/// An experiment named by id or by key.
pub async fn experiment_id(ctx: &Ctx, text: &str, env: Option<&str>) -> Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(id);
    }
    let environment = match env {
        Some(name) => Some(service::environment_named(ctx, name).await?.id),
        None => None,
    };
    let found: Vec<Uuid> = service::list_experiments(ctx, environment)
        .await?
        .into_iter()
        .filter(|e| e.key == text)
        .map(|e| e.id)
        .collect();
    match found.as_slice() {
        [id] => Ok(*id),
        [] => Err(AdminError::NotFound(format!("no experiment {text:?}"))),
        _ => Err(AdminError::BadRequest(format!(
            "experiment {text:?} exists in several environments; pass --env"
        ))),
    }
}

pub async fn results(
    ctx: &Ctx,
    experiment: &str,
    env: Option<&str>,
    options: analysis::Options,
) -> Result<()> {
    let id = experiment_id(ctx, experiment, env).await?;
    let results = analysis::results(ctx, id, options).await?;
    describe(&results);
    print(&results);
    Ok(())
}

pub async fn slices(
    ctx: &Ctx,
    experiment: &str,
    env: Option<&str>,
    by: &str,
    options: analysis::Options,
) -> Result<()> {
    let dimension = Dimension::parse(by).ok_or_else(|| {
        AdminError::BadRequest(format!("--by {by:?}: slice by country, device or browser"))
    })?;
    let id = experiment_id(ctx, experiment, env).await?;
    print(&slices::slices(ctx, id, dimension, options).await?);
    Ok(())
}

pub async fn holdout(
    ctx: &Ctx,
    env: &str,
    metrics: &[String],
    options: analysis::Options,
) -> Result<()> {
    let environment = service::environment_named(ctx, env).await?;
    print(&holdout::report(ctx, environment.id, metrics, options).await?);
    Ok(())
}

/// A table for people, on stderr (stdout keeps the JSON).
fn describe(r: &Results) {
    eprintln!("{} (phase {}), control {}", r.experiment, r.salt, r.control);
    for v in &r.variants {
        eprintln!(
            "  {:<16} {:>9} units  {:>6.2}% (expected {:>6.2}%)",
            v.key,
            v.units,
            v.observed_share * 100.0,
            v.expected_share * 100.0
        );
    }
    if let Some(srm) = r.srm.filter(|s| s.mismatch) {
        eprintln!(
            "  SAMPLE RATIO MISMATCH: sequential p = {:.2e} (one-look chi2 = {:.1}, p = {:.2e}); \
             results are not trustworthy",
            srm.sequential_p_value, srm.chi_square, srm.p_value
        );
    }
    for m in &r.metrics {
        eprintln!(
            "  {} ({}, {}, {} is good)",
            m.key, m.role, m.kind, m.direction
        );
        for c in &m.comparisons {
            eprintln!(
                "    {:<14} diff {:+.5} [{:+.5}, {:+.5}]  p {:.4} (adj {:.4})  sequential p {:.4}  {}",
                c.variant,
                c.test.difference,
                c.test.ci_low,
                c.test.ci_high,
                c.test.p_value,
                c.adjusted_p_value,
                c.adjusted_sequential_p_value,
                c.verdict
            );
            if let Some(b) = &c.bayesian {
                eprintln!(
                    "    {:<14} lift {:+.2}% [{:+.2}%, {:+.2}%]  chance to beat control {:.1}%  expected loss {:.3}%",
                    "",
                    b.lift * 100.0,
                    b.lift_ci_low * 100.0,
                    b.lift_ci_high * 100.0,
                    b.chance_to_beat_control * 100.0,
                    b.expected_loss * 100.0
                );
            }
        }
    }
    if let Some(p) = &r.plan {
        let left = p.plan.days_left.map_or_else(
            || "no enrolment yet".to_owned(),
            |d| format!("{d:.1} days left"),
        );
        eprintln!(
            "  plan: {} needs {} units ({} per variant) to detect {:.1}% at power {:.0}%; {left}",
            p.metric,
            p.plan.units_needed,
            p.plan.units_per_variant,
            p.plan.minimum_detectable_effect * 100.0,
            p.plan.power * 100.0
        );
    }
    for b in &r.guardrail_breaches {
        eprintln!("  GUARDRAIL BREACH: {} worse in {}", b.metric, b.variant);
    }
}

pub async fn check_guardrails(ctx: &Ctx) -> Result<()> {
    let paused = guardrails::check(ctx).await?;
    for p in &paused {
        eprintln!("paused {} (guardrail breach)", p.experiment);
    }
    print(&paused);
    Ok(())
}
