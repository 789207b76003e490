//! Which scoped bundles of a tenant a run warms beside its two whole ones: the employees', teams' and
//! widget selections read most in the read history's window (`WARM_SCOPES_PER_TENANT`).

use chrono::{DateTime, Utc};
use shared::bundle::identity::BundleId;
use shared::env::chain;
use shared::store::read_history::most_read_scopes;
use uuid::Uuid;

use super::tenants::Warmer;

/// The most-read scoped bundles of `tenant` among its read history's `fields`, at most `limit`.
pub(super) fn most_read(tenant: Uuid, fields: &[String], now: DateTime<Utc>, limit: usize) -> Vec<BundleId> {
    most_read_scopes(fields, now, limit)
        .iter()
        .filter_map(|spec| BundleId::from_spec(tenant, spec))
        .collect()
}

impl Warmer<'_> {
    /// [`most_read`] for a tenant the run did not list itself (a manual run, a fan-out chunk): its read
    /// history is read here. None when Redis cannot say.
    pub(super) async fn scopes_of(&self, tenant: Uuid) -> Vec<BundleId> {
        let limit = self.config.scopes_per_tenant;
        if limit == 0 {
            return Vec::new();
        }
        match self.bundles.read_histories(&[tenant]).await {
            Ok(histories) => histories
                .first()
                .map(|fields| most_read(tenant, fields, self.now, limit))
                .unwrap_or_default(),
            Err(e) => {
                tracing::debug!(%tenant, error = %chain(&e), "read history unavailable; no scoped bundle warmed");
                Vec::new()
            }
        }
    }
}
