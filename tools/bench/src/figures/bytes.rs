//! Bytes stored per hit vs the raw JSON.

use anyhow::Result;
use chrono::Utc;
use shared::bundle::identity::{BundleId, Scope};
use shared::bundle::query as bundle;
use shared::store::Entry;

use super::context::Context;
use crate::report::{Check, Goal, Row};

pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (name, tenant) in [("large tenant", ctx.huge), ("median tenant", ctx.typical)] {
        let computed = bundle::compute(
            &ctx.db(),
            BundleId::new(Scope::Tenant(tenant), true),
            Utc::now(),
            300,
        )
        .await?;
        let json = serde_json::to_string(&computed.bundle)?;
        let raw = json.len();
        let stored = Entry {
            generated_at_ms: 0,
            validated_at_ms: 0,
            data_version: 0,
            day_ends_at_ms: 0,
            json,
        }
        .encode()
        .len();
        let share = stored as f64 / raw as f64;
        rows.push(Row {
            part: "",
            label: format!("Bytes per hit, {name}"),
            ours: format!("{stored} B stored"),
            floor: format!("{raw} B raw JSON"),
            ratio: format!("{share:.2}"),
            goal: "≤ 0.33".into(),
            checks: vec![Check::new(Goal::AtMost(0.33), share, format!("{share:.2}"))],
            how: "Entry::encode (29-byte header + zstd level 3 when smaller) of the bundle's JSON".into(),
        });
    }
    Ok(rows)
}
