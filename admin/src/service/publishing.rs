//! Publishing an environment, and the plan a publish would make.

use cleave_core::plan::Plan;
use uuid::Uuid;

use super::Ctx;
use crate::error::Result;
use crate::model::Published;
use crate::publish;

pub async fn publish(
    ctx: &Ctx,
    actor: &str,
    environment: Uuid,
    confirm: bool,
) -> Result<Published> {
    let mut tx = ctx.pool.begin().await?;
    let published = publish::publish_in(&mut tx, ctx.outlet(), environment, actor, confirm).await?;
    tx.commit().await?;
    Ok(published)
}

/// What publishing `environment` now would change, without publishing.
pub async fn plan(ctx: &Ctx, actor: &str, environment: Uuid) -> Result<Plan> {
    let mut conn = ctx.pool.acquire().await?;
    Ok(publish::plan_next(&mut conn, environment, actor).await?.1)
}
