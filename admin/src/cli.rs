//! `cleave-admin` command line: the same operations as the REST API, plus migrate, serve,
//! compile, publish and rollback. Data goes to stdout as JSON, logs and errors to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::access::Access;
use crate::analytics_store::Analytics;
use crate::db;
use crate::error::{AdminError, Result};
use crate::model::Status;
use crate::service::Ctx;

mod analysis;
mod audiences;
mod environments;
mod experiments;
mod flags;
mod keys;
mod publishing;
mod serve;
mod settings;

pub use audiences::AudienceCommand;
pub use environments::EnvironmentCommand;
pub use experiments::ExperimentCommand;
pub use flags::FlagCommand;
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
    /// Where exposures and events are kept and results computed: unset for the Postgres of
    /// DATABASE_URL, or a ClickHouse cluster, `clickhouse://host:port[,host:port…]/database`.
    #[arg(
        long,
        env = "CLEAVE_ANALYTICS_URL",
        global = true,
        hide_env_values = true
    )]
    pub analytics_url: Option<String>,
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
    /// Feature flags of an environment, and their kill switch.
    #[command(subcommand)]
    Flags(FlagCommand),
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
        /// holm or bh (default holm, and bh with --by).
        #[arg(long)]
        correction: Option<String>,
        /// An earlier phase (1 is the first run); the current one unless given.
        #[arg(long)]
        phase: Option<i32>,
        /// The sample size plan's smallest relative change worth detecting.
        #[arg(long, default_value_t = 0.05)]
        mde: f64,
        /// The sample size plan's power.
        #[arg(long, default_value_t = 0.8)]
        power: f64,
        /// CUPED's pre-exposure window in days (0: off).
        #[arg(long, default_value_t = 14)]
        cuped_days: i32,
        /// Exploratory results by slice instead: country, device or browser (BH-corrected
        /// across slices unless --correction says otherwise).
        #[arg(long)]
        by: Option<String>,
    },
    /// An environment holdout's report: everyone else against the held-out units.
    Holdout {
        env: String,
        /// Metric keys (every defined metric unless given).
        #[arg(long, value_delimiter = ',')]
        metrics: Vec<String>,
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        #[arg(long, default_value = "holm")]
        correction: String,
        #[arg(long, default_value_t = 14)]
        cuped_days: i32,
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

/// The commands that need no database (validating files, keys and tokens), run; `None` for
/// the others.
fn without_database(cli: &Cli) -> Option<Result<()>> {
    Some(match &cli.command {
        Command::Validate { files } => crate::validate::files(files),
        Command::ForceToken {
            force,
            env,
            ttl,
            max_ttl,
            signing_key,
        } => keys::force_token(force, env, *ttl, *max_ttl, signing_key.as_deref()),
        Command::HeaderKey { signing_key } => keys::header_key(signing_key.as_deref()),
        Command::Keygen { out } => keys::keygen(out),
        Command::PublicKey => keys::public_key(&cli.signing),
        _ => return None,
    })
}

/// Runs one command.
///
/// # Errors
/// The failure, classed so `main` can pick the exit code.
pub async fn run(cli: Cli) -> Result<()> {
    if let Some(done) = without_database(&cli) {
        return done;
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
    let analytics = Analytics::connect(cli.analytics_url.as_deref(), pool.clone())?;
    let ctx = Ctx {
        pool: pool.clone(),
        analytics,
        sink: cli.sink.sink()?,
        signer: cli.signing.signer()?,
        relay: cli.sink.relay()?,
    };
    let actor = cli.actor.as_str();
    match cli.command {
        Command::Migrate => {
            migrate(&pool).await?;
            ctx.analytics.migrate().await?;
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
            ctx.analytics.migrate().await?;
            serve::serve(ctx, access, SocketAddr::new(host, port), guardrail_interval).await
        }
        Command::Publish { env, confirm } => publishing::publish(&ctx, actor, &env, confirm).await,
        Command::Plan { env } => publishing::plan(&ctx, actor, &env).await,
        Command::Compile { env, out } => publishing::compile(&ctx, actor, &env, &out).await,
        Command::Rollback { env, to } => publishing::rollback(&ctx, actor, &env, to).await,
        Command::Environments(command) => environments::run(&ctx, actor, command).await,
        Command::Experiments(command) => experiments::run(&ctx, actor, command).await,
        Command::Audiences(command) => audiences::run(&ctx, actor, command).await,
        Command::Flags(command) => flags::run(&ctx, actor, command).await,
        Command::Metrics(command) => analysis::metric_command(&ctx, actor, command).await,
        Command::Results {
            experiment,
            env,
            alpha,
            correction,
            phase,
            mde,
            power,
            cuped_days,
            by,
        } => {
            let default = if by.is_some() { "bh" } else { "holm" };
            let options = crate::analysis::Options {
                alpha,
                correction: crate::analysis::parse_correction(
                    correction.as_deref().unwrap_or(default),
                )
                .map_err(crate::error::AdminError::BadRequest)?,
                phase,
                mde,
                power,
                cuped_days,
            };
            match by {
                Some(by) => analysis::slices(&ctx, &experiment, env.as_deref(), &by, options).await,
                None => analysis::results(&ctx, &experiment, env.as_deref(), options).await,
            }
        }
        Command::Holdout {
            env,
            metrics,
            alpha,
            correction,
            cuped_days,
        } => {
            let options = crate::analysis::Options {
                alpha,
                correction: crate::analysis::parse_correction(&correction)
                    .map_err(crate::error::AdminError::BadRequest)?,
                cuped_days,
                ..crate::analysis::Options::default()
            };
            analysis::holdout(&ctx, &env, &metrics, options).await
        }
        Command::Guardrails {
            action: GuardrailAction::Check,
        } => analysis::check_guardrails(&ctx).await,
        Command::Audit { action, entity } => audit(&pool, action, entity.as_deref()).await,
        Command::ResignPointers => publishing::resign_pointers(&ctx).await,
        Command::Validate { .. }
        | Command::ForceToken { .. }
        | Command::HeaderKey { .. }
        | Command::Keygen { .. }
        | Command::PublicKey => Ok(()),
    }
}

/// `audit` lists entries; `audit verify` checks the hash chain and fails when it is broken.
async fn audit(
    pool: &sqlx::PgPool,
    action: Option<AuditAction>,
    entity: Option<&str>,
) -> Result<()> {
    match action {
        Some(AuditAction::Verify) => {
            let report = db::audit::verify(pool).await?;
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
        None => {
            print(&db::audit::list(pool, entity).await?);
            Ok(())
        }
    }
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
