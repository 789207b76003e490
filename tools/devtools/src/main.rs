//! Developer commands behind `make dev` and the e2e checks:
//!
//! - `devtools migrate [--fresh | --recreate-if-stale]`: create the database of `DATABASE_URL` if missing
//!   (with `--fresh`, drop it first) and apply `migrations/`; with `--recreate-if-stale` (`make dev`'s
//!   disposable database), a database migrated by migrations that no longer exist is recreated.
//! - `devtools seed-demo`: load a few demo tenants with realistic rows (idempotent).
//! - `devtools token <role> [tenant-uuid]`: print a JWT signed with `JWT_SECRET`, valid for 30 days.
//! - `devtools warm-runs` / `devtools tenants`: print the last warm runs / the tenants as a JSON array,
//!   for the dev dashboard page's operations panel and tenant picker (`scripts/dev_web.py`).

mod seed;

use anyhow::{bail, Context, Result};
use shared::auth::{issue_token, Claims, Role};
use sqlx::migrate::MigrateDatabase;
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["migrate"] => migrate(Reset::Never).await,
        ["migrate", "--fresh"] => migrate(Reset::Always).await,
        ["migrate", "--recreate-if-stale"] => migrate(Reset::IfStale).await,
        ["seed-demo"] => seed::demo(&connect().await?).await,
        ["token", role] => token(role, None, None),
        ["token", role, tenant] => token(role, Some(tenant), None),
        ["token", role, tenant, employee] => token(role, Some(tenant), Some(employee)),
        ["warm-runs"] => print_json(WARM_RUNS).await,
        ["tenants"] => print_json(TENANTS).await,
        ["scopes"] => print_json(SCOPES).await,
        _ => bail!(
            "usage: devtools migrate | seed-demo | token <superadmin|admin|manager|employee> [tenant-uuid [employee-uuid]] \
             | warm-runs | tenants | scopes"
        ),
    }
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

async fn connect() -> Result<PgPool> {
    PgPool::connect(&env("DATABASE_URL")?)
        .await
        .context("connecting to DATABASE_URL")
}

/// When `devtools migrate` drops the database first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reset {
    Never,
    Always,
    /// When it was migrated by migrations this checkout does not have (or has changed).
    IfStale,
}

async fn migrate(reset: Reset) -> Result<()> {
    let url = env("DATABASE_URL")?;
    if reset == Reset::Always {
        drop_database(&url).await?;
    }
    if !Postgres::database_exists(&url).await? {
        Postgres::create_database(&url)
            .await
            .context("creating the database")?;
        println!("created database");
    }
    let migrated = shared::platform::db::MIGRATOR.run(&connect().await?).await;
    match migrated {
        Err(
            sqlx::migrate::MigrateError::VersionMissing(version)
            | sqlx::migrate::MigrateError::VersionMismatch(version),
        ) if reset == Reset::IfStale => {
            println!("migration {version} of this database is not this checkout's: recreating it");
            drop_database(&url).await?;
            Box::pin(migrate(Reset::Never)).await?;
            return Ok(());
        }
        Err(sqlx::migrate::MigrateError::VersionMissing(version)) => bail!(
            "this database was migrated by migration {version}, which no longer exists (the migrations were \
             squashed before the first release): run `devtools migrate --fresh` to recreate it"
        ),
        other => other.context("applying migrations")?,
    }
    println!("migrations applied");
    Ok(())
}

async fn drop_database(url: &str) -> Result<()> {
    if Postgres::database_exists(url).await? {
        Postgres::force_drop_database(url)
            .await
            .context("dropping the database")?;
        println!("dropped database");
    }
    Ok(())
}

/// A dev token. Its employee id (`sub`) is `employee`, or the seeded demo employee of the role.
fn token(role: &str, tenant: Option<&str>, employee: Option<&str>) -> Result<()> {
    let role: Role =
        serde_json::from_value(role.into()).context("role must be superadmin, admin, manager or employee")?;
    let tenant_id = tenant
        .map(Uuid::parse_str)
        .transpose()
        .context("tenant must be a UUID")?;
    let employee = match employee {
        Some(id) => Uuid::parse_str(id).context("employee must be a UUID")?,
        None => seed::demo_employee(role),
    };
    let claims = Claims {
        sub: employee.hyphenated().to_string(),
        role,
        tenant_id,
        exp: chrono::Utc::now().timestamp() + 30 * 24 * 3600,
        employee_id: None,
    };
    println!(
        "{}",
        issue_token(&env("JWT_SECRET")?, &claims).context("signing the token")?
    );
    Ok(())
}

/// The ten most recent rows of `cache_warm_run`, newest first (the README's monitoring query).
const WARM_RUNS: &str = "SELECT coalesce(json_agg(r ORDER BY r.started_at DESC), '[]')::text FROM (
       SELECT id, trigger, started_at, finished_at, tenants_total, bundles_warmed, failures,
              skipped_deadline, chunks_published, error_summary
         FROM cache_warm_run ORDER BY started_at DESC LIMIT 10) r";

const TENANTS: &str = "SELECT coalesce(json_agg(t ORDER BY t.name, t.id), '[]')::text
       FROM (SELECT id, slug, name, status FROM tenant) t";

/// Per tenant, its teams (with their members) and the employees its records or teams name: what the
/// dashboard page's scope picker offers.
const SCOPES: &str = "SELECT coalesce(json_object_agg(t.id, json_build_object(
         'teams', (SELECT coalesce(json_agg(json_build_object('id', g.team_id, 'members', g.members)
                                             ORDER BY g.team_id), '[]')
                     FROM (SELECT team_id, json_agg(DISTINCT employee_id) AS members
                             FROM team_members WHERE tenant_id = t.id GROUP BY team_id) g),
         'employees', (SELECT coalesce(json_agg(e.id ORDER BY e.id), '[]')
                         FROM (SELECT employee_id AS id FROM team_members WHERE tenant_id = t.id
                               UNION SELECT assigned_to FROM leads WHERE tenant_id = t.id
                               UNION SELECT assigned_to FROM opportunities WHERE tenant_id = t.id
                               UNION SELECT assigned_to FROM activities WHERE tenant_id = t.id) e
                        WHERE e.id IS NOT NULL))), '{}')::text
       FROM tenant t";

/// Runs a query that returns one JSON text and prints it.
async fn print_json(sql: &'static str) -> Result<()> {
    let json: String = sqlx::query_scalar(sql)
        .fetch_one(&connect().await?)
        .await
        .context("querying the database")?;
    println!("{json}");
    Ok(())
}
