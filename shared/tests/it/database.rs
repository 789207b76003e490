//! The Postgres handle every function uses: what each of its transactions starts with, directly and
//! through PgBouncer (the second pass of `make test`).

use sqlx::PgPool;
use test_support::TestEnv;

#[sqlx::test(migrations = "../migrations")]
async fn every_transaction_has_the_statement_timeout_and_no_jit(pool: PgPool) {
    let db = TestEnv::new()
        .set("DB_STATEMENT_TIMEOUT_MS", "7000")
        .database(&pool);

    let timeout_and_jit = db
        .transaction(async |tx| {
            let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
                .fetch_one(&mut *tx)
                .await?;
            let jit: String = sqlx::query_scalar("SHOW jit").fetch_one(&mut *tx).await?;
            Ok((timeout, jit))
        })
        .await
        .unwrap();

    // JIT would compile the bundle's statement first once the tables make its (never-taken) full-scan
    // branches look expensive: about 30 ms of a 5 ms miss at 10^7 rows.
    assert_eq!(timeout_and_jit, ("7s".to_owned(), "off".to_owned()));
}
