//! `cleave-admin audiences …`.

use clap::Subcommand;
use uuid::Uuid;

use super::{json_arg, print};
use crate::error::Result;
use crate::service::{self, Ctx};

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

pub async fn run(ctx: &Ctx, actor: &str, command: AudienceCommand) -> Result<()> {
    match command {
        AudienceCommand::Create { json } => {
            print(&service::create_audience(ctx, actor, json_arg(&json)?).await?);
        }
        AudienceCommand::List => print(&service::list_audiences(ctx).await?),
        AudienceCommand::Update { id, json } => {
            let (audience, pending) =
                service::patch_audience(ctx, actor, id, json_arg(&json)?).await?;
            print(&serde_json::json!({"audience": audience, "pendingPublish": pending}));
        }
        AudienceCommand::Delete { id } => {
            service::delete_audience(ctx, actor, id).await?;
            eprintln!("audience {id} deleted");
        }
    }
    Ok(())
}
