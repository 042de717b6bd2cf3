//! `cleave-admin environments …`.

use clap::Subcommand;

use super::{json_arg, print};
use crate::db;
use crate::error::Result;
use crate::service::{self, Ctx};

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

pub async fn run(ctx: &Ctx, actor: &str, command: EnvironmentCommand) -> Result<()> {
    match command {
        EnvironmentCommand::Create { name } => {
            print(
                &service::create_environment(ctx, actor, service::NewEnvironment { name }).await?,
            );
            Ok(())
        }
        EnvironmentCommand::List => {
            print(&db::environments::list(&ctx.pool).await?);
            Ok(())
        }
        EnvironmentCommand::Settings { env, json } => {
            let env = service::environment_named(ctx, &env).await?;
            print(&service::set_settings(ctx, actor, env.id, json_arg(&json)?).await?);
            Ok(())
        }
    }
}
