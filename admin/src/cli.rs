//! `cleave-admin` command line: the same operations as the REST API, plus migrate, serve,
//! compile, publish and rollback. Data goes to stdout as JSON, logs and errors to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use uuid::Uuid;

use crate::access::Access;
use crate::error::{AdminError, Result};
use crate::http::{app, AppState};
use crate::model::Status;
use crate::service::{self, Ctx};
use crate::targeting_service;
use crate::{db, publish};

mod analysis;
mod keys;
mod settings;

pub use settings::{SigningArgs, SinkArgs, SinkKind};

#[derive(Debug, Parser)]
#[command(
    name = "cleave-admin",
    version,
    about = "cleave's control plane: experiments in Postgres, published as snapshots"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Postgres connection string.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Who the audit log names for changes made from this command line.
    #[arg(long, env = "CLEAVE_ACTOR", global = true, default_value = "cli")]
    pub actor: String,
    #[command(flatten)]
    pub sink: SinkArgs,
    #[command(flatten)]
    pub signing: SigningArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the database migrations.
    Migrate,
    /// Serve the REST API (migrates first).
    Serve {
        #[arg(long, env = "CLEAVE_ADMIN_PORT", default_value_t = 3001)]
        port: u16,
        /// Address to listen on; loopback unless told otherwise.
        #[arg(long, env = "CLEAVE_ADMIN_HOST", default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// A publisher token; alone, it leaves reads open.
        #[arg(long, env = "CLEAVE_ADMIN_API_TOKEN", hide_env_values = true)]
        api_token: Option<String>,
        /// Tokens with roles, `role:name:token,...` (viewer, editor, publisher); with them,
        /// reads need a token too.
        #[arg(long, env = "CLEAVE_ADMIN_TOKENS", hide_env_values = true)]
        tokens: Option<String>,
        /// Seconds between guardrail checks of running experiments; 0 turns them off.
        #[arg(long, env = "CLEAVE_GUARDRAIL_INTERVAL", default_value_t = 300)]
        guardrail_interval: u64,
    },
    /// Compile, validate and publish an environment. Refused when the plan moves
    /// already-enrolled units between variants, unless --confirm.
    Publish {
        #[arg(long)]
        env: String,
        #[arg(long)]
        confirm: bool,
    },
    /// Show what publishing an environment now would change, experiment by experiment.
    Plan {
        #[arg(long)]
        env: String,
    },
    /// Mint a QA force token (`exp=variant ...`) for one environment, signed with the force
    /// key derived from CLEAVE_SIGNING_KEY, for `force=` on the decide API or the
    /// `cleave_force` cookie in proxy mode.
    ForceToken {
        /// Pairs such as checkout-button-color=treatment.
        #[arg(required = true, value_parser = parse_pair)]
        force: Vec<(String, String)>,
        /// The environment the token is good in (the worker's CLEAVE_ENV or `env=`).
        #[arg(long)]
        env: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u32,
        /// Longest lifetime allowed; workers refuse tokens that live longer.
        #[arg(long, env = "CLEAVE_FORCE_MAX_SECONDS", default_value_t = 604_800)]
        max_ttl: u32,
        #[arg(long, env = "CLEAVE_SIGNING_KEY", hide_env_values = true)]
        signing_key: Option<String>,
    },
    /// Print the key origins verify `cleave-signature` with (hex), derived from
    /// CLEAVE_SIGNING_KEY; it cannot mint force tokens or sticky records.
    HeaderKey {
        #[arg(long, env = "CLEAVE_SIGNING_KEY", hide_env_values = true)]
        signing_key: Option<String>,
    },
    /// Re-sign the expiry of every environment's current pointer (for cron when `serve` is
    /// not running); workers refuse a pointer past its expiry.
    ResignPointers,
    /// Create an Ed25519 key for signing snapshots: writes the private key to `--out`
    /// (mode 0600, refusing to overwrite) and prints the public key for the worker's
    /// CLEAVE_SNAPSHOT_PUBLIC_KEY.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key of the configured snapshot signing key.
    PublicKey,
    /// Compile an environment into a snapshot file without publishing.
    Compile {
        #[arg(long)]
        env: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Point an environment back at an earlier version, without recompiling.
    Rollback {
        #[arg(long)]
        env: String,
        #[arg(long)]
        to: i64,
    },
    /// Check snapshot files against the v1 contract and list every problem.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Environments.
    #[command(subcommand)]
    Environments(EnvironmentCommand),
    /// Experiments.
    #[command(subcommand)]
    Experiments(ExperimentCommand),
    /// Audiences: reusable targeting segments.
    #[command(subcommand)]
    Audiences(AudienceCommand),
    /// Metric definitions, and the metrics an experiment is judged on.
    #[command(subcommand)]
    Metrics(analysis::MetricCommand),
    /// Results of an experiment: per-variant estimates, differences to control, SRM,
    /// corrected and sequential p-values, guardrails (JSON on stdout, a table on stderr).
    Results {
        /// Experiment id, or key (with --env when the key exists in several environments).
        #[arg(long)]
        experiment: String,
        #[arg(long)]
        env: Option<String>,
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// holm or bh.
        #[arg(long, default_value = "holm")]
        correction: String,
    },
    /// Guardrails: `check` pauses running experiments in breach (which publishes).
    Guardrails {
        #[arg(value_enum)]
        action: GuardrailAction,
    },
    /// The audit log (optionally of one entity); `audit verify` checks its hash chain.
    Audit {
        /// `verify`: check that no entry was edited or deleted (exit 4 if one was).
        #[arg(value_enum)]
        action: Option<AuditAction>,
        #[arg(long)]
        entity: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuditAction {
    Verify,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GuardrailAction {
    Check,
}

#[derive(Debug, Subcommand)]
pub enum EnvironmentCommand {
    Create {
        name: String,
    },
    List,
    /// Replace holdout, bot policy and context schema: JSON as for PUT /environments/:id/settings.
    Settings {
        env: String,
        json: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AudienceCommand {
    /// JSON as for POST /audiences.
    Create {
        json: String,
    },
    List,
    /// JSON as for PATCH /audiences/:id; republishes environments that use it.
    Update {
        id: Uuid,
        json: String,
    },
    Delete {
        id: Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    Create {
        #[arg(long)]
        env: String,
        #[arg(long)]
        key: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        salt: Option<String>,
    },
    List {
        #[arg(long)]
        env: Option<String>,
    },
    Show {
        id: Uuid,
    },
    /// Change fields: a JSON object as for PATCH /experiments/:id.
    Update {
        id: Uuid,
        json: String,
    },
    AddVariant {
        id: Uuid,
        #[arg(long)]
        key: String,
        #[arg(long, default_value = "")]
        name: String,
        /// JSON payload.
        #[arg(long, default_value = "null")]
        payload: String,
        /// JSON routing action, e.g. '{"origin":"beta"}' or '{"redirect":"/b","status":307}'.
        #[arg(long)]
        route: Option<String>,
    },
    /// Replace allocations: JSON as for PUT /experiments/:id/allocations.
    Allocate {
        id: Uuid,
        json: String,
    },
    SetStatus {
        id: Uuid,
        #[arg(value_parser = parse_status)]
        status: Status,
        /// Accept a publish that moves already-enrolled units between variants.
        #[arg(long)]
        confirm: bool,
    },
}

fn parse_pair(text: &str) -> std::result::Result<(String, String), String> {
    text.split_once('=')
        .map(|(e, v)| (e.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not experiment=variant"))
}

fn parse_status(text: &str) -> std::result::Result<Status, String> {
    Status::parse(&text.to_ascii_uppercase())
        .ok_or_else(|| "expected DRAFT, RUNNING, PAUSED, STOPPED or ARCHIVED".to_owned())
}

fn print(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("cannot print result: {e}"),
    }
}

fn json_arg<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| AdminError::BadRequest(format!("invalid JSON argument: {e}")))
}

/// Runs one command.
///
/// # Errors
/// The failure, classed so `main` can pick the exit code.
pub async fn run(cli: Cli) -> Result<()> {
    // Validating files is the one command that needs no database.
    if let Command::Validate { files } = &cli.command {
        return crate::validate::files(files);
    }
    match &cli.command {
        Command::ForceToken {
            force,
            env,
            ttl,
            max_ttl,
            signing_key,
        } => return keys::force_token(force, env, *ttl, *max_ttl, signing_key.as_deref()),
        Command::HeaderKey { signing_key } => return keys::header_key(signing_key.as_deref()),
        _ => {}
    }
    match &cli.command {
        Command::Keygen { out } => return keys::keygen(out),
        Command::PublicKey => {
            let signer = cli.signing.signer()?.ok_or_else(|| {
                AdminError::BadRequest(
                    "no snapshot signing key: set CLEAVE_SNAPSHOT_SIGNING_KEY or CLEAVE_SNAPSHOT_SIGNING_KEY_FILE"
                        .to_owned(),
                )
            })?;
            println!("{}", signer.public_key());
            return Ok(());
        }
        _ => {}
    }
    let url = cli.database_url.clone().ok_or_else(|| {
        AdminError::BadRequest("DATABASE_URL is not set (or pass --database-url)".to_owned())
    })?;
    let pool = db::connect(&url).await?;
    let migrate = |pool| async move {
        db::migrate(pool)
            .await
            .map_err(|e| AdminError::Internal(format!("migration failed: {e}")))
    };
    let ctx = Ctx {
        pool: pool.clone(),
        sink: cli.sink.sink()?,
        signer: cli.signing.signer()?,
    };
    let actor = cli.actor.as_str();
    match cli.command {
        Command::Validate { files } => crate::validate::files(&files),
        Command::Migrate => {
            migrate(&pool).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Serve {
            port,
            host,
            api_token,
            tokens,
            guardrail_interval,
        } => {
            let access = Access::from_config(tokens.as_deref(), api_token.as_deref())
                .map_err(AdminError::BadRequest)?;
            migrate(&pool).await?;
            if access.is_empty() {
                tracing::warn!(
                    "neither CLEAVE_ADMIN_TOKENS nor CLEAVE_ADMIN_API_TOKEN is set: every mutation will be refused"
                );
            }
            let addr = SocketAddr::new(host, port);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| AdminError::Internal(format!("cannot listen on {addr}: {e}")))?;
            tracing::info!(%addr, sink = %ctx.sink.describe(), dashboard = %format!("http://{addr}/ui/"), "cleave-admin serving");
            if guardrail_interval > 0 {
                let every = std::time::Duration::from_secs(guardrail_interval);
                tokio::spawn(crate::analysis::guardrails::watch(ctx.clone(), every));
            }
            if let Some(signer) = &ctx.signer {
                // A quarter of the validity, at most hourly: several chances before expiry.
                let every = (signer.validity() / 4).min(std::time::Duration::from_secs(3600));
                tokio::spawn(publish::keep_pointers_fresh(ctx.clone(), every));
            }
            axum::serve(listener, app(AppState { ctx, access }))
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .map_err(|e| AdminError::Internal(e.to_string()))
        }
        Command::Publish { env, confirm } => {
            let env = service::environment_named(&ctx, &env).await?;
            print(&service::publish(&ctx, actor, env.id, confirm).await?);
            Ok(())
        }
        Command::Plan { env } => {
            let env = service::environment_named(&ctx, &env).await?;
            let plan = service::plan(&ctx, actor, env.id).await?;
            for c in &plan.changes {
                eprintln!(
                    "{:<32} {:<10} changes {:>8.4}% of units, moves {:>8.4}% between variants",
                    c.experiment,
                    format!("{:?}", c.kind).to_lowercase(),
                    c.changed_share * 100.0,
                    c.moved_share * 100.0
                );
            }
            if !plan.needs_confirmation.is_empty() {
                eprintln!(
                    "publishing needs --confirm (or a new salt) for: {}",
                    plan.needs_confirmation.join(", ")
                );
            }
            print(&plan);
            Ok(())
        }
        Command::Compile { env, out } => {
            let env = service::environment_named(&ctx, &env).await?;
            let mut conn = pool.acquire().await?;
            let (_, snapshot, _) = publish::compile_next(&mut conn, env.id, actor).await?;
            let body = serde_json::to_string_pretty(&snapshot)
                .map_err(|e| AdminError::Internal(e.to_string()))?;
            std::fs::write(&out, body + "\n")
                .map_err(|e| AdminError::Internal(format!("{}: {e}", out.display())))?;
            eprintln!(
                "wrote {} (environment {}, would be v{})",
                out.display(),
                snapshot.environment,
                snapshot.version
            );
            Ok(())
        }
        Command::Rollback { env, to } => {
            let env = service::environment_named(&ctx, &env).await?;
            let mut tx = pool.begin().await?;
            let done = publish::rollback_in(&mut tx, ctx.outlet(), env.id, to, actor).await?;
            tx.commit().await?;
            print(&done);
            Ok(())
        }
        Command::Environments(EnvironmentCommand::Create { name }) => {
            print(
                &service::create_environment(&ctx, actor, service::NewEnvironment { name }).await?,
            );
            Ok(())
        }
        Command::Environments(EnvironmentCommand::List) => {
            print(&db::environments::list(&pool).await?);
            Ok(())
        }
        Command::Environments(EnvironmentCommand::Settings { env, json }) => {
            let env = service::environment_named(&ctx, &env).await?;
            print(&targeting_service::set_settings(&ctx, actor, env.id, json_arg(&json)?).await?);
            Ok(())
        }
        Command::Experiments(command) => experiments(&ctx, actor, command).await,
        Command::Audiences(command) => audiences(&ctx, actor, command).await,
        Command::Metrics(command) => analysis::metric_command(&ctx, actor, command).await,
        Command::Results {
            experiment,
            env,
            alpha,
            correction,
        } => analysis::results(&ctx, &experiment, env.as_deref(), alpha, &correction).await,
        Command::Guardrails {
            action: GuardrailAction::Check,
        } => analysis::check_guardrails(&ctx).await,
        Command::Audit {
            action: Some(AuditAction::Verify),
            ..
        } => {
            let report = db::audit::verify(&pool).await?;
            print(&report);
            if report.intact() {
                Ok(())
            } else {
                Err(AdminError::Conflict(format!(
                    "audit chain broken: {} problem(s)",
                    report.problems.len()
                )))
            }
        }
        Command::Audit {
            action: None,
            entity,
        } => {
            print(&db::audit::list(&pool, entity.as_deref()).await?);
            Ok(())
        }
        Command::ResignPointers => {
            let done = publish::resign_pointers(&pool, ctx.outlet()).await?;
            eprintln!("re-signed {} pointer(s)", done.len());
            print(&done);
            Ok(())
        }
        Command::ForceToken { .. }
        | Command::HeaderKey { .. }
        | Command::Keygen { .. }
        | Command::PublicKey => Ok(()),
    }
}

async fn audiences(ctx: &Ctx, actor: &str, command: AudienceCommand) -> Result<()> {
    match command {
        AudienceCommand::Create { json } => {
            print(&targeting_service::create_audience(ctx, actor, json_arg(&json)?).await?);
        }
        AudienceCommand::List => print(&targeting_service::list_audiences(ctx).await?),
        AudienceCommand::Update { id, json } => {
            let (audience, pending) =
                targeting_service::patch_audience(ctx, actor, id, json_arg(&json)?).await?;
            print(&serde_json::json!({"audience": audience, "pendingPublish": pending}));
        }
        AudienceCommand::Delete { id } => {
            targeting_service::delete_audience(ctx, actor, id).await?;
            eprintln!("audience {id} deleted");
        }
    }
    Ok(())
}

async fn experiments(ctx: &Ctx, actor: &str, command: ExperimentCommand) -> Result<()> {
    match command {
        ExperimentCommand::Create {
            env,
            key,
            name,
            description,
            unit,
            salt,
        } => {
            let env = service::environment_named(ctx, &env).await?;
            let req = service::NewExperiment {
                key,
                name,
                description,
                environment_id: env.id,
                unit,
                salt,
            };
            print(&service::create_experiment(ctx, actor, req).await?);
        }
        ExperimentCommand::List { env } => {
            let env = match env {
                Some(name) => Some(service::environment_named(ctx, &name).await?.id),
                None => None,
            };
            print(&service::list_experiments(ctx, env).await?);
        }
        ExperimentCommand::Show { id } => print(&service::experiment(ctx, id).await?),
        ExperimentCommand::Update { id, json } => {
            print(&service::patch_experiment(ctx, actor, id, json_arg(&json)?).await?)
        }
        ExperimentCommand::AddVariant {
            id,
            key,
            name,
            payload,
            route,
        } => {
            let req = service::NewVariant {
                key,
                name,
                payload: json_arg(&payload)?,
                route: route.as_deref().map(json_arg).transpose()?,
            };
            print(&service::add_variant(ctx, actor, id, req).await?);
        }
        ExperimentCommand::Allocate { id, json } => {
            print(&service::set_allocations(ctx, actor, id, json_arg(&json)?).await?)
        }
        ExperimentCommand::SetStatus {
            id,
            status,
            confirm,
        } => {
            let change = service::StatusChange { status, confirm };
            let (experiment, published) = service::set_status(ctx, actor, id, change).await?;
            print(&serde_json::json!({"experiment": experiment, "published": published}));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn statuses_parse_in_any_case() {
        assert_eq!(parse_status("running"), Ok(Status::Running));
        assert_eq!(parse_status("ARCHIVED"), Ok(Status::Archived));
        assert!(parse_status("live").is_err());
    }
}
