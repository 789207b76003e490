//! What the warmer asks of the store, as named questions: whether a scope's bundles were computed
//! since a time, the tenants' read histories, and since when reads have been recorded. The warmer never
//! reaches through to Redis keys or entry bytes itself.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::BundleCache;
use crate::bundle::identity::{BundleId, Scope};
use crate::store::{CacheError, Entry};

impl BundleCache {
    /// Whether both bundles of `scope` in Redis were computed at or after `since_ms` (unix ms). `false`
    /// when either is missing or Redis cannot say.
    pub async fn computed_since(&self, scope: Scope, since_ms: i64) -> bool {
        for id in BundleId::both(scope) {
            let entry = self.redis.get(&self.keys.bundle(id)).await.ok().flatten();
            let computed = entry
                .and_then(|bytes| Entry::decode(&bytes))
                .is_some_and(|e| e.generated_at_ms >= since_ms);
            if !computed {
                return false;
            }
        }
        true
    }

    /// The recorded read hours of each of `tenants`, in order, in one pipelined call.
    pub async fn read_histories(&self, tenants: &[Uuid]) -> Result<Vec<Vec<String>>, CacheError> {
        let keys: Vec<String> = tenants.iter().map(|id| self.keys.tenant_reads(*id)).collect();
        self.redis.hash_fields(&keys).await
    }

    /// Drops `fields` (read hours past the window) from `tenant`'s read history.
    pub async fn drop_reads(&self, tenant: Uuid, fields: &[String]) -> Result<(), CacheError> {
        self.redis
            .hash_delete(&self.keys.tenant_reads(tenant), fields)
            .await
    }

    /// Since when reads have been recorded: the first caller sets it to `now`, later ones read it.
    /// `None` when what is stored is not a time.
    pub async fn reads_recorded_since(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, CacheError> {
        let stored = self
            .redis
            .set_once(
                &self.keys.reads_recorded_since(),
                &now.timestamp_millis().to_string(),
            )
            .await?;
        Ok(stored.parse().ok().and_then(DateTime::from_timestamp_millis))
    }
}
