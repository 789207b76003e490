//! Reads in as few round trips as the protocol allows: a read-only, repeatable-read transaction
//! driven by whole batches of statements in the simple query protocol, one round trip per batch
//! (the extended protocol costs two per statement in the pooler-safe unnamed mode, and sqlx does not
//! pipeline). Behind a transaction-mode pooler a batch, like any transaction, keeps its server
//! connection; the transaction settings are its first statements.
//!
//! The simple protocol takes no parameters: callers write values into the text as typed literals of
//! values they produced themselves (a UUID, a bool, an RFC 3339 instant), never text from a request.

use futures::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{Either, PgConnection, Postgres};

use super::db::{is_lost_connection, Database, TRANSIENT_ATTEMPTS};

/// Each statement's rows, in the order of the statements.
pub type Results = Vec<Vec<PgRow>>;

/// An open snapshot (a transaction begun by [`Database::snapshot`]).
pub struct Snapshot {
    conn: PoolConnection<Postgres>,
    open: bool,
}

impl Database {
    /// Opens a read-only repeatable-read transaction and runs `first` in it, in one round trip;
    /// returns the snapshot and the rows of each of `first`'s statements.
    pub async fn snapshot(&self, first: &[String]) -> Result<(Snapshot, Results), sqlx::Error> {
        let mut snapshot = self.begin_snapshot().await?;
        let results = snapshot.run(&self.opening(first)).await?;
        Ok((snapshot, last_statements(results, first.len(), 0)))
    }

    /// `statements` in a read-only repeatable-read transaction of their own: one round trip (tried
    /// again on another connection when the connection was lost).
    pub async fn read(&self, statements: &[String]) -> Result<Results, sqlx::Error> {
        let mut batch = self.opening(statements);
        batch.push("COMMIT".to_owned());
        let mut attempt = 1;
        loop {
            // A plain loop, not `retry_transient`'s async closure: the request handler's future must
            // stay `Send` for every lifetime, which rustc cannot yet prove through one.
            let result = async {
                let mut snapshot = self.begin_snapshot().await?;
                let results = snapshot.run(&batch).await?;
                snapshot.open = false;
                Ok(last_statements(results, statements.len(), 1))
            }
            .await;
            match result {
                Err(e) if attempt < TRANSIENT_ATTEMPTS && is_lost_connection(&e) => attempt += 1,
                result => return result,
            }
        }
    }

    async fn begin_snapshot(&self) -> Result<Snapshot, sqlx::Error> {
        let conn = match self.pool().acquire().await {
            Err(e) if self.renew_credentials(&e).await => self.pool().acquire().await?,
            result => result?,
        };
        Ok(Snapshot { conn, open: true })
    }

    /// The transaction's opening statements (`BEGIN` and the transaction settings), then `statements`.
    fn opening(&self, statements: &[String]) -> Vec<String> {
        let mut batch = vec![
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY".to_owned(),
            self.transaction_settings_sql(),
        ];
        batch.extend_from_slice(statements);
        batch
    }
}

/// The results of the `count` statements before the last `trailing` ones of a batch.
fn last_statements(mut results: Results, count: usize, trailing: usize) -> Results {
    results.truncate(results.len().saturating_sub(trailing));
    results.split_off(results.len().saturating_sub(count))
}

impl Snapshot {
    /// Runs `last` and commits, in one round trip; the rows of each of `last`'s statements.
    pub async fn finish(mut self, last: &[String]) -> Result<Results, sqlx::Error> {
        let mut batch = last.to_vec();
        batch.push("COMMIT".to_owned());
        let results = self.run(&batch).await?;
        self.open = false;
        Ok(last_statements(results, last.len(), 1))
    }

    /// Ends the snapshot without reading more (one round trip).
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        self.run(&["ROLLBACK".to_owned()]).await?;
        self.open = false;
        Ok(())
    }

    async fn run(&mut self, statements: &[String]) -> Result<Results, sqlx::Error> {
        let result = batch(&mut self.conn, &statements.join(";\n")).await;
        if result.is_err() {
            // The transaction may be open or aborted: the connection must not serve anyone else.
            self.conn.close_on_drop();
            self.open = false;
        }
        result
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if self.open {
            // Dropped with its transaction open (a cancelled request): closed rather than reused.
            self.conn.close_on_drop();
        }
    }
}

/// `sql` (one or more statements) in one round trip, the rows of each statement apart.
async fn batch(conn: &mut PgConnection, sql: &str) -> Result<Results, sqlx::Error> {
    let mut results: Results = vec![Vec::new()];
    let mut stream = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).fetch_many(conn);
    while let Some(item) = stream.try_next().await? {
        match item {
            Either::Left(_done) => results.push(Vec::new()),
            Either::Right(row) => {
                if let Some(last) = results.last_mut() {
                    last.push(row);
                }
            }
        }
    }
    results.pop();
    Ok(results)
}
