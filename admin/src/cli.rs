//! `cleave-admin` command line: the same operations as the REST API, plus migrate, serve,
//! compile, publish and rollback. Data goes to stdout as JSON, logs and errors to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{AdminError, Result};
use crate::http::{app, AppState};
use crate::model::Status;
use crate::service::{self, Ctx};
use crate::sink::Sink;
use crate::{db, publish};

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkKind {
    /// The local KV of the repo checkout, read by `npx wrangler dev` there.
    WranglerLocal,
    /// Workers KV through the Cloudflare REST API.
    Cloudflare,
    /// A folder such as config-snapshots/.
    File,
}

#[derive(Debug, Clone, Args)]
pub struct SinkArgs {
    /// Where publishes go.
    #[arg(
        long = "sink",
        env = "CLEAVE_SINK",
        global = true,
        value_enum,
        default_value = "wrangler-local"
    )]
    pub kind: SinkKind,
    /// Repo checkout whose local KV `wrangler-local` writes (its node_modules has wrangler).
    /// Default: the nearest folder upwards from here holding wrangler.toml, else the checkout
    /// this binary was built from.
    #[arg(long, env = "CLEAVE_REPO_ROOT", global = true)]
    pub repo_root: Option<PathBuf>,
    /// `--persist-to` for the local KV (default: wrangler's own, .wrangler/state).
    #[arg(long, env = "CLEAVE_KV_PERSIST_TO", global = true)]
    pub kv_persist_to: Option<PathBuf>,
    /// Folder for the `file` sink.
    #[arg(
        long,
        env = "CLEAVE_SINK_DIR",
        global = true,
        default_value = "config-snapshots"
    )]
    pub sink_dir: PathBuf,
    #[arg(long, env = "CF_ACCOUNT_ID", global = true)]
    pub cf_account_id: Option<String>,
    #[arg(long, env = "CF_KV_NAMESPACE_ID", global = true)]
    pub cf_namespace_id: Option<String>,
    #[arg(long, env = "CF_API_TOKEN", global = true, hide_env_values = true)]
    pub cf_api_token: Option<String>,
    #[arg(
        long,
        env = "CF_API_BASE",
        global = true,
        default_value = "https://api.cloudflare.com/client/v4"
    )]
    pub cf_api_base: String,
}

impl SinkArgs {
    /// The configured sink.
    ///
    /// # Errors
    /// When the `cloudflare` sink lacks its account, namespace or token.
    pub fn sink(&self) -> Result<Sink> {
        Ok(match self.kind {
            SinkKind::WranglerLocal => Sink::WranglerLocal {
                root: self.repo_root.clone().unwrap_or_else(default_repo_root),
                persist_to: self.kv_persist_to.clone(),
            },
            SinkKind::File => Sink::File {
                dir: self.sink_dir.clone(),
            },
            SinkKind::Cloudflare => {
                let need = |v: &Option<String>, name: &str| {
                    v.clone().ok_or_else(|| {
                        AdminError::BadRequest(format!("the cloudflare sink needs {name}"))
                    })
                };
                Sink::Cloudflare {
                    api_base: self.cf_api_base.clone(),
                    account_id: need(&self.cf_account_id, "CF_ACCOUNT_ID")?,
                    namespace_id: need(&self.cf_namespace_id, "CF_KV_NAMESPACE_ID")?,
                    api_token: need(&self.cf_api_token, "CF_API_TOKEN")?,
                }
            }
        })
    }
}

/// The checkout `npx wrangler dev` runs in: where its local KV lives.
fn default_repo_root() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_default();
    here.ancestors()
        .find(|dir| dir.join("wrangler.toml").is_file())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")))
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
        /// Bearer token every mutation must present.
        #[arg(long, env = "CLEAVE_ADMIN_API_TOKEN", hide_env_values = true)]
        api_token: Option<String>,
    },
    /// Compile, validate and publish an environment.
    Publish {
        #[arg(long)]
        env: String,
    },
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
    /// The audit log (optionally of one entity).
    Audit {
        #[arg(long)]
        entity: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EnvironmentCommand {
    Create { name: String },
    List,
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
    },
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
        } => {
            migrate(&pool).await?;
            if api_token.is_none() {
                tracing::warn!("CLEAVE_ADMIN_API_TOKEN is not set: every mutation will be refused");
            }
            let addr = SocketAddr::new(host, port);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| AdminError::Internal(format!("cannot listen on {addr}: {e}")))?;
            tracing::info!(%addr, sink = %ctx.sink.describe(), "cleave-admin serving");
            axum::serve(listener, app(AppState { ctx, api_token }))
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .map_err(|e| AdminError::Internal(e.to_string()))
        }
        Command::Publish { env } => {
            let env = service::environment_named(&ctx, &env).await?;
            print(&service::publish(&ctx, actor, env.id).await?);
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
            let done = publish::rollback_in(&mut tx, &ctx.sink, env.id, to, actor).await?;
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
        Command::Experiments(command) => experiments(&ctx, actor, command).await,
        Command::Audit { entity } => {
            print(&db::audit::list(&pool, entity.as_deref()).await?);
            Ok(())
        }
    }
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
        } => {
            let req = service::NewVariant {
                key,
                name,
                payload: json_arg(&payload)?,
            };
            print(&service::add_variant(ctx, actor, id, req).await?);
        }
        ExperimentCommand::Allocate { id, json } => {
            print(&service::set_allocations(ctx, actor, id, json_arg(&json)?).await?)
        }
        ExperimentCommand::SetStatus { id, status } => {
            let (experiment, published) = service::set_status(ctx, actor, id, status).await?;
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
