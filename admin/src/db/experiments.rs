//! Experiments with their variants, allocations and layer placement.

use cleave_core::snapshot::{Prerequisite, RouteAction, Routes, Rule};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{Allocation, Experiment, LayerPlacement, Status, Variant};

const SELECT: &str = "select e.id, e.environment_id, e.key::text as key, e.name, e.description,
    e.unit::text as unit, e.fallback_unit::text as fallback_unit, e.prerequisites, e.salt, e.status, e.traffic, e.targeting, e.layer_ranges, e.start_at,
    e.end_at, e.routes, e.route_all_methods, e.created_at, e.updated_at, l.key::text as layer_key, l.salt as layer_salt
    from experiments e left join layers l on l.id = e.layer_id";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    environment_id: Uuid,
    key: String,
    name: String,
    description: String,
    unit: String,
    fallback_unit: Option<String>,
    prerequisites: Json<Vec<Prerequisite>>,
    salt: String,
    status: String,
    traffic: i32,
    targeting: Json<Vec<Rule>>,
    layer_ranges: Json<Vec<[i64; 2]>>,
    start_at: Option<OffsetDateTime>,
    end_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    layer_key: Option<String>,
    layer_salt: Option<String>,
    routes: Option<Json<Routes>>,
    route_all_methods: bool,
}

#[derive(sqlx::FromRow)]
struct VariantRow {
    id: Uuid,
    key: String,
    name: String,
    payload: Value,
    allow: Json<Vec<String>>,
    route: Option<Json<RouteAction>>,
}

impl From<VariantRow> for Variant {
    fn from(v: VariantRow) -> Self {
        Self {
            id: v.id,
            key: v.key,
            name: v.name,
            payload: v.payload,
            allow: v.allow.0,
            route: v.route.map(|r| r.0),
        }
    }
}

#[derive(sqlx::FromRow)]
struct AllocationRow {
    variant_id: Uuid,
    range_start: i32,
    range_end: i32,
}

/// Fields of a new experiment.
#[derive(Debug)]
pub struct NewExperiment<'a> {
    pub environment_id: Uuid,
    pub key: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub unit: &'a str,
    pub salt: &'a str,
}

pub async fn insert(db: impl PgExecutor<'_>, e: NewExperiment<'_>) -> Result<Uuid, sqlx::Error> {
    let (id,): (Uuid,) = sqlx::query_as(
        "insert into experiments (environment_id, key, name, description, unit, salt)
         values ($1, $2, $3, $4, $5, $6) returning id",
    )
    .bind(e.environment_id)
    .bind(e.key)
    .bind(e.name)
    .bind(e.description)
    .bind(e.unit)
    .bind(e.salt)
    .fetch_one(db)
    .await?;
    Ok(id)
}

/// One experiment, whole. `lock` takes a row lock for the rest of the transaction.
pub async fn load(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<Experiment>, sqlx::Error> {
    let sql = if lock {
        format!("{SELECT} where e.id = $1 for update of e")
    } else {
        format!("{SELECT} where e.id = $1")
    };
    let Some(row) = sqlx::query_as::<_, Row>(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(assemble(conn, row).await?))
}

/// Experiments of one environment (or all), ordered by environment and key.
pub async fn list(
    conn: &mut PgConnection,
    environment: Option<Uuid>,
) -> Result<Vec<Experiment>, sqlx::Error> {
    let sql = format!(
        "{SELECT} where $1::uuid is null or e.environment_id = $1 order by e.environment_id, e.key"
    );
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(environment)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(assemble(conn, row).await?);
    }
    Ok(out)
}

async fn assemble(conn: &mut PgConnection, row: Row) -> Result<Experiment, sqlx::Error> {
    let variants: Vec<VariantRow> = sqlx::query_as(
        "select id, key::text as key, name, payload, allow, route from variants where experiment_id = $1 order by created_at, key",
    )
    .bind(row.id)
    .fetch_all(&mut *conn)
    .await?;
    let allocations: Vec<AllocationRow> = sqlx::query_as(
        "select variant_id, range_start, range_end from allocations where experiment_id = $1 order by range_start",
    )
    .bind(row.id)
    .fetch_all(&mut *conn)
    .await?;
    let status = Status::parse(&row.status)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown status {:?}", row.status).into()))?;
    let layer = row.layer_key.map(|key| LayerPlacement {
        key,
        salt: row.layer_salt,
        ranges: row.layer_ranges.0,
    });
    Ok(Experiment {
        id: row.id,
        environment_id: row.environment_id,
        key: row.key,
        name: row.name,
        description: row.description,
        unit: row.unit,
        fallback_unit: row.fallback_unit,
        salt: row.salt,
        status,
        traffic: row.traffic,
        targeting_rules: row.targeting.0,
        prerequisites: row.prerequisites.0,
        layer,
        routes: row.routes.map(|r| r.0),
        route_all_methods: row.route_all_methods,
        start_at: row.start_at,
        end_at: row.end_at,
        variants: variants.into_iter().map(Variant::from).collect(),
        allocations: allocations
            .into_iter()
            .map(|a| Allocation {
                variant_id: a.variant_id,
                range_start: a.range_start.into(),
                range_end: a.range_end.into(),
            })
            .collect(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Writes the editable fields of `e` back (after a patch was applied to a locked copy).
pub async fn update(conn: &mut PgConnection, e: &Experiment) -> Result<(), sqlx::Error> {
    let layer_id = match &e.layer {
        Some(layer) => Some(layer_id(conn, e.environment_id, layer).await?),
        None => None,
    };
    let ranges = e
        .layer
        .as_ref()
        .map(|l| l.ranges.clone())
        .unwrap_or_default();
    sqlx::query(
        "update experiments set name = $2, description = $3, targeting = $4, traffic = $5,
         layer_id = $6, layer_ranges = $7, start_at = $8, end_at = $9, fallback_unit = $10,
         prerequisites = $11, routes = $12, route_all_methods = $13, updated_at = now()
         where id = $1",
    )
    .bind(e.id)
    .bind(&e.name)
    .bind(&e.description)
    .bind(Json(&e.targeting_rules))
    .bind(e.traffic)
    .bind(layer_id)
    .bind(Json(ranges))
    .bind(e.start_at)
    .bind(e.end_at)
    .bind(&e.fallback_unit)
    .bind(Json(&e.prerequisites))
    .bind(e.routes.as_ref().map(Json))
    .bind(e.route_all_methods)
    .execute(&mut *conn)
    .await?;
    for v in &e.variants {
        sqlx::query("update variants set allow = $2, route = $3 where id = $1")
            .bind(v.id)
            .bind(Json(&v.allow))
            .bind(v.route.as_ref().map(Json))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The layer's id in the environment, creating it (salt defaults to the key) on first use.
async fn layer_id(
    conn: &mut PgConnection,
    environment: Uuid,
    layer: &LayerPlacement,
) -> Result<Uuid, sqlx::Error> {
    let salt = layer.salt.clone().unwrap_or_else(|| layer.key.clone());
    let (id,): (Uuid,) = sqlx::query_as(
        "insert into layers (environment_id, key, salt) values ($1, $2, $3)
         on conflict (environment_id, key) do update set key = excluded.key returning id",
    )
    .bind(environment)
    .bind(&layer.key)
    .bind(salt)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// The salt a layer already has in the environment, if it exists.
pub async fn layer_salt(
    db: impl PgExecutor<'_>,
    environment: Uuid,
    key: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("select salt from layers where environment_id = $1 and key = $2::text")
            .bind(environment)
            .bind(key)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|r| r.0))
}

/// Moves the experiment to `to` only if it is in one of `from`; returns whether it moved.
/// One conditional UPDATE, so racing transitions cannot both succeed.
pub async fn transition(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from: &[Status],
    to: Status,
) -> Result<bool, sqlx::Error> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let done = sqlx::query(
        "update experiments set status = $3, updated_at = now() where id = $1 and status = any($2)",
    )
    .bind(id)
    .bind(&from)
    .bind(to.as_str())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_variant(
    db: impl PgExecutor<'_>,
    experiment: Uuid,
    key: &str,
    name: &str,
    payload: &Value,
    route: Option<&RouteAction>,
) -> Result<Variant, sqlx::Error> {
    let row: VariantRow = sqlx::query_as(
        "insert into variants (experiment_id, key, name, payload, route) values ($1, $2, $3, $4, $5)
         returning id, key::text as key, name, payload, allow, route",
    )
    .bind(experiment)
    .bind(key)
    .bind(name)
    .bind(payload)
    .bind(route.map(Json))
    .fetch_one(db)
    .await?;
    Ok(row.into())
}

/// Renames a variant or replaces its payload; `None` when the experiment has no such variant.
pub async fn update_variant(
    db: impl PgExecutor<'_>,
    experiment: Uuid,
    variant: Uuid,
    name: &str,
    payload: &Value,
) -> Result<Option<Variant>, sqlx::Error> {
    let row: Option<VariantRow> = sqlx::query_as(
        "update variants set name = $3, payload = $4 where id = $2 and experiment_id = $1
         returning id, key::text as key, name, payload, allow, route",
    )
    .bind(experiment)
    .bind(variant)
    .bind(name)
    .bind(payload)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Variant::from))
}

/// Replaces all allocations of the experiment.
pub async fn replace_allocations(
    conn: &mut PgConnection,
    experiment: Uuid,
    allocations: &[Allocation],
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from allocations where experiment_id = $1")
        .bind(experiment)
        .execute(&mut *conn)
        .await?;
    for a in allocations {
        sqlx::query("insert into allocations (experiment_id, variant_id, range_start, range_end) values ($1, $2, $3, $4)")
            .bind(experiment)
            .bind(a.variant_id)
            .bind(i32::try_from(a.range_start).unwrap_or(-1))
            .bind(i32::try_from(a.range_end).unwrap_or(-1))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("update experiments set updated_at = now() where id = $1")
        .bind(experiment)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes an experiment with its variants, allocations and metric links.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    for sql in [
        "delete from allocations where experiment_id = $1",
        "delete from experiment_metrics where experiment_id = $1",
        "delete from variants where experiment_id = $1",
        "delete from experiments where id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Deletes one variant of an experiment with its allocation.
pub async fn delete_variant(
    conn: &mut PgConnection,
    experiment: Uuid,
    variant: Uuid,
) -> Result<(), sqlx::Error> {
    for sql in [
        "delete from allocations where experiment_id = $1 and variant_id = $2",
        "delete from variants where experiment_id = $1 and id = $2",
    ] {
        sqlx::query(sql)
            .bind(experiment)
            .bind(variant)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Makes the experiment a DRAFT under `salt`, its next phase.
pub async fn begin_phase(db: impl PgExecutor<'_>, id: Uuid, salt: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update experiments set salt = $2, status = 'DRAFT', updated_at = now() where id = $1",
    )
    .bind(id)
    .bind(salt)
    .execute(db)
    .await?;
    Ok(())
}
