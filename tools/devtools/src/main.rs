//! Developer commands behind `make dev` and the e2e checks:
//!
//! - `devtools migrate [--fresh]`: create the database of `DATABASE_URL` if missing (with `--fresh`,
//!   drop it first) and apply `migrations/`.
//! - `devtools seed-demo`: load a few demo tenants with realistic rows (idempotent).
//! - `devtools token <role> [tenant-uuid]`: print a JWT signed with `JWT_SECRET`, valid for 30 days.

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
        ["migrate"] => migrate(false).await,
        ["migrate", "--fresh"] => migrate(true).await,
        ["seed-demo"] => seed::demo(&connect().await?).await,
        ["token", role, rest @ ..] => token(role, rest.first().copied()),
        _ => bail!(
            "usage: devtools migrate | seed-demo | token <superadmin|admin|manager|employee> [tenant-uuid]"
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

async fn migrate(fresh: bool) -> Result<()> {
    let url = env("DATABASE_URL")?;
    if fresh && Postgres::database_exists(&url).await? {
        Postgres::force_drop_database(&url)
            .await
            .context("dropping the database")?;
        println!("dropped database");
    }
    if !Postgres::database_exists(&url).await? {
        Postgres::create_database(&url)
            .await
            .context("creating the database")?;
        println!("created database");
    }
    shared::db::MIGRATOR
        .run(&connect().await?)
        .await
        .context("applying migrations")?;
    println!("migrations applied");
    Ok(())
}

fn token(role: &str, tenant: Option<&str>) -> Result<()> {
    let role: Role =
        serde_json::from_value(role.into()).context("role must be superadmin, admin, manager or employee")?;
    let tenant_id = tenant
        .map(Uuid::parse_str)
        .transpose()
        .context("tenant must be a UUID")?;
    let claims = Claims {
        sub: format!("dev-{}", serde_json::to_value(role)?.as_str().unwrap_or("user")),
        role,
        tenant_id,
        exp: chrono::Utc::now().timestamp() + 30 * 24 * 3600,
    };
    println!("{}", issue_token(&env("JWT_SECRET")?, &claims));
    Ok(())
}
