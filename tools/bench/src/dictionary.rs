//! Training the zstd dictionary that cached bundles are compressed with. A bundle is a few KB of JSON
//! whose keys, number and timestamp formats recur in every bundle; alone, one bundle is too small for
//! the compressor to learn them, a dictionary of them brings it from ~45% to ~25% of its raw size.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::Utc;
use shared::bundle::identity::BundleId;
use shared::bundle::identity::Scope;
use shared::bundle::query as bundle;
use sqlx::PgPool;
use uuid::Uuid;

/// Bytes of dictionary: a few KB of shared structure, compiled into every function.
const DICTIONARY_BYTES: usize = 16 * 1024;
/// Tenants sampled (both variants of each), spread over all sizes.
const SAMPLED_TENANTS: i64 = 2_000;

pub async fn train(pool: &PgPool) -> Result<()> {
    let db = test_support::TestEnv::new().database(pool);
    let tenants: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM bench_tenant WHERE n % 5 = 0 ORDER BY n LIMIT $1")
            .bind(SAMPLED_TENANTS)
            .fetch_all(pool)
            .await?;
    let mut samples = Vec::with_capacity(tenants.len() * 2);
    for id in tenants {
        for include in [true, false] {
            let computed =
                bundle::compute(&db, BundleId::new(Scope::Tenant(id), include), Utc::now(), 300).await?;
            samples.push(serde_json::to_vec(&computed.bundle)?);
        }
    }
    let dictionary =
        zstd::dict::from_samples(&samples, DICTIONARY_BYTES).context("training the dictionary")?;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/src/bundle.dict");
    std::fs::write(&path, &dictionary)?;
    eprintln!(
        "bench: wrote a {} B dictionary from {} bundles to {}",
        dictionary.len(),
        samples.len(),
        path.display()
    );
    Ok(())
}
