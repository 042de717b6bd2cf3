//! `cleave-admin flags …`.

use clap::Subcommand;
use uuid::Uuid;

use super::{json_arg, print};
use crate::error::Result;
use crate::service::{self, Ctx};

#[derive(Debug, Subcommand)]
pub enum FlagCommand {
    /// JSON as for POST /environments/:id/flags.
    Create { env: String, json: String },
    /// The environment's live flags.
    List { env: String },
    /// JSON as for PATCH /flags/:id (each field named is replaced); publishes nothing.
    Update { id: Uuid, json: String },
    /// The kill switch: off for everyone, published at once.
    Kill { id: Uuid },
    /// Turns a killed flag back on, published at once.
    Revive { id: Uuid },
    /// Launches a draft flag: the next publish serves it to everyone its rules take.
    Launch { id: Uuid },
    /// Deletes a draft flag, or archives one that went live (the next publish drops it).
    #[command(visible_alias = "archive")]
    Delete { id: Uuid },
    /// Copies a flag into another environment (by name).
    Promote { id: Uuid, env: String },
}

pub async fn run(ctx: &Ctx, actor: &str, command: FlagCommand) -> Result<()> {
    match command {
        FlagCommand::Create { env, json } => {
            let env = service::environment_named(ctx, &env).await?;
            print(&service::create_flag(ctx, actor, env.id, json_arg(&json)?).await?);
        }
        FlagCommand::List { env } => {
            let env = service::environment_named(ctx, &env).await?;
            print(&service::list_flags(ctx, env.id).await?);
        }
        FlagCommand::Update { id, json } => {
            print(&service::patch_flag(ctx, actor, id, json_arg(&json)?).await?);
        }
        FlagCommand::Kill { id } | FlagCommand::Revive { id } => {
            let killed = matches!(command, FlagCommand::Kill { .. });
            let (flag, published) = service::kill_flag(ctx, actor, id, killed).await?;
            print(&serde_json::json!({"flag": flag, "published": published}));
        }
        FlagCommand::Launch { id } => {
            let launch = serde_json::json!({"draft": false});
            print(&service::patch_flag(ctx, actor, id, launch).await?);
        }
        FlagCommand::Delete { id } => match service::remove_flag(ctx, actor, id).await? {
            service::Removed::Deleted => print(&serde_json::json!({"deleted": id})),
            service::Removed::Archived(flag) => print(&flag),
        },
        FlagCommand::Promote { id, env } => {
            let env = service::environment_named(ctx, &env).await?;
            print(&service::promote_flag(ctx, actor, id, env.id).await?);
        }
    }
    Ok(())
}
