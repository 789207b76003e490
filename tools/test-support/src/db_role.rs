//! Real, non-superuser login roles for privilege tests, with exactly the grants docs/database.md lists.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use uuid::Uuid;

/// A login role of the test cluster. Roles belong to the whole cluster, so the guard drops it (and
/// its privileges in the test's database) when it goes, also when the test fails.
pub struct DbRole {
    name: String,
    admin: PgConnectOptions,
}

impl DbRole {
    /// Creates a role named after `placeholder` plus a unique suffix and runs `grants` for it, with
    /// every occurrence of `placeholder` in them replaced by the role's name.
    pub async fn create(pool: &PgPool, placeholder: &str, grants: &str) -> Self {
        let name = format!("{placeholder}_{}", Uuid::new_v4().simple());
        let role = Self {
            name: name.clone(),
            admin: (*pool.connect_options()).clone(),
        };
        let sql = format!(
            "CREATE ROLE {name} LOGIN;\n{}",
            grants.replace(placeholder, &name)
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("creating role {name} with its grants: {e}"));
        role
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection options of the test's database, logging in as this role.
    pub fn options(&self) -> PgConnectOptions {
        self.admin.clone().username(&self.name)
    }

    /// A lazy pool of the test's database, logging in as this role.
    pub fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(self.options())
    }

    /// One session as this role.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect_with(&self.options())
            .await
            .unwrap_or_else(|e| panic!("logging in as {}: {e}", self.name))
    }
}

impl Drop for DbRole {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run inside the test's runtime: a thread with a runtime of its own does the I/O.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect_with(&admin).await {
                    let sql = format!("DROP OWNED BY {name}; DROP ROLE IF EXISTS {name}");
                    if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await {
                        eprintln!("could not drop test role {name}: {e}");
                    }
                }
            });
        })
        .join();
    }
}

/// The grants docs/database.md lists for `who` (the SQL block after `<!-- grants: who -->`): tests
/// give their roles exactly these, so docs/database.md stays the truth.
pub fn readme_grants(who: &str) -> String {
    let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/database.md");
    let text = std::fs::read_to_string(&readme).unwrap_or_else(|e| panic!("{}: {e}", readme.display()));
    let marker = format!("<!-- grants: {who} -->");
    let after = text
        .split_once(&marker)
        .unwrap_or_else(|| panic!("docs/database.md has no `{marker}`"))
        .1;
    let block = after
        .split_once("```sql\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .unwrap_or_else(|| panic!("docs/database.md: no ```sql block after `{marker}`"))
        .0;
    block.to_owned()
}
