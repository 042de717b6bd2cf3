//! `cleave-admin experiments …`.

use clap::Subcommand;
use uuid::Uuid;

use super::{json_arg, parse_status, print};
use crate::error::Result;
use crate::model::Status;
use crate::service::{self, Ctx};

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
    /// Delete a DRAFT experiment (anything that ran can only be archived).
    Delete {
        id: Uuid,
    },
    /// Delete a variant of a DRAFT experiment.
    DeleteVariant {
        id: Uuid,
        variant: Uuid,
    },
    /// Copy an experiment into another environment (by name) as a draft.
    Promote {
        id: Uuid,
        env: String,
    },
    /// Run a STOPPED experiment again as a new phase (a DRAFT under a new salt).
    NewPhase {
        id: Uuid,
        /// The new salt; `<key>-<phase number>` unless given.
        #[arg(long)]
        salt: Option<String>,
    },
}

pub async fn run(ctx: &Ctx, actor: &str, command: ExperimentCommand) -> Result<()> {
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
        ExperimentCommand::Delete { id } => {
            service::delete_experiment(ctx, actor, id).await?;
            eprintln!("experiment {id} deleted");
        }
        ExperimentCommand::NewPhase { id, salt } => {
            print(&service::new_phase(ctx, actor, id, salt).await?);
        }
        ExperimentCommand::Promote { id, env } => {
            let env = service::environment_named(ctx, &env).await?;
            print(&service::promote_experiment(ctx, actor, id, env.id).await?);
        }
        ExperimentCommand::DeleteVariant { id, variant } => {
            service::delete_variant(ctx, actor, id, variant).await?;
            eprintln!("variant {variant} deleted");
        }
    }
    Ok(())
}
