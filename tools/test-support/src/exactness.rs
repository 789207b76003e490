//! The exactness check of the maintained bundle stats: the reference (full scan) and the maintained
//! figures of a scope, compared in one snapshot.

use chrono::{DateTime, Utc};
use shared::bundle::identity::Scope;
use shared::bundle::query::{Sql, Stats};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The reference (full scan) and the maintained stats of `scope`, in one snapshot.
pub async fn both(
    conn: &mut PgConnection,
    scope: Scope,
    include: bool,
    since: DateTime<Utc>,
) -> (Stats, Stats) {
    let sql = Sql::for_scope(scope);
    let mut out = Vec::new();
    for text in [&sql.stats, &sql.maintained_stats] {
        let stats: Stats = sqlx::query_as(text.as_str())
            .bind(scope.tenant_id())
            .bind(include)
            .bind(since)
            .fetch_one(&mut *conn)
            .await
            .expect("stats query");
        out.push(stats);
    }
    let maintained = out.pop().expect("maintained stats");
    (out.pop().expect("reference stats"), maintained)
}

/// Asserts the maintained stats equal the reference for every scope, with and without test data, and
/// returns how many scopes were compared.
pub async fn assert_exact(pool: &PgPool, tenants: &[Uuid], since: DateTime<Utc>, when: &str) -> usize {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .expect("begin");
    let mut compared = 0;
    let scopes = tenants.iter().map(|t| Scope::Tenant(*t)).chain([Scope::Global]);
    for scope in scopes {
        for include in [true, false] {
            let (reference, maintained) = both(&mut tx, scope, include, since).await;
            assert_eq!(
                maintained, reference,
                "{when}: {scope:?}, include_test_data {include}"
            );
            compared += 1;
        }
    }
    tx.commit().await.expect("commit");
    compared
}
