//! The bundle's JSON shape: what [`super::query::compute`] fills from its rows, and how each value is
//! written (timestamps as RFC 3339 UTC, sums as Postgres's exact decimal text, digit for digit).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use sqlx::FromRow;
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct Bundle {
    pub stats: Stats,
    /// Per opportunity stage (the `salesPipeline` widget of a tenant's scopes; not in the global view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funnel: Option<Vec<FunnelStage>>,
    pub lists: Lists,
    pub meta: Meta,
}

/// One stage of the funnel: its opportunities and the sum of their finite amounts.
#[derive(Debug, Serialize, FromRow)]
pub struct FunnelStage {
    pub stage: Option<String>,
    pub count: i64,
    #[serde(serialize_with = "decimal")]
    pub amount: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub total_contacts: i64,
    pub total_accounts: i64,
    pub total_leads: i64,
    pub total_opportunities: i64,
    pub open_leads: i64,
    pub won_opportunities: i64,
    pub open_opportunities: i64,
    pub new_leads_last30_days: i64,
    pub activities_last30_days: i64,
    #[serde(serialize_with = "decimal")]
    pub pipeline_value: String,
    #[serde(serialize_with = "decimal")]
    pub won_value: String,
    /// Source (`"other"` for none) to number of leads: the `leadSourceChart` widget of a tenant's
    /// scopes; not in the global view.
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leads_by_source: Option<BTreeMap<String, i64>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lists {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_activities: Option<Vec<RecentActivity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_leads: Option<Vec<RecentLead>>,
    /// Part of the `salesPipeline` widget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_opportunities: Option<Vec<RecentOpportunity>>,
}

#[derive(Debug, Serialize, FromRow)]
pub struct RecentActivity {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: Option<String>,
    pub status: Option<String>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub created_date: Option<DateTime<Utc>>,
    pub assigned_to: Option<Uuid>,
}

#[derive(Debug, Serialize, FromRow)]
pub struct RecentLead {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub created_date: Option<DateTime<Utc>>,
    pub status: Option<String>,
}

#[derive(Debug, Serialize, FromRow)]
pub struct RecentOpportunity {
    pub id: Uuid,
    pub name: Option<String>,
    #[serde(serialize_with = "decimal_opt")]
    pub amount: Option<String>,
    pub stage: Option<String>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct Meta {
    pub tenant_id: Option<Uuid>,
    /// `tenant`, `employee` or `team` (absent in the global view), and the employee's or team's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<Uuid>,
    /// The widgets asked for, when not all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub widgets: Option<String>,
    pub include_test_data: bool,
    #[serde(serialize_with = "rfc3339")]
    pub generated_at: DateTime<Utc>,
    pub ttl_seconds: u64,
}

fn rfc3339<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn rfc3339_opt<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, s),
        None => s.serialize_none(),
    }
}

/// Writes Postgres's decimal text as a JSON number, digit for digit.
fn decimal<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let raw = RawValue::from_string(text.to_owned()).map_err(serde::ser::Error::custom)?;
    raw.serialize(s)
}

fn decimal_opt<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match text {
        Some(text) => decimal(text, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_serialize_as_exact_json_numbers() {
        #[derive(Serialize)]
        struct T {
            #[serde(serialize_with = "decimal")]
            v: String,
        }
        let json = serde_json::to_string(&T {
            v: "12345678901234567.89".into(),
        })
        .unwrap();
        assert_eq!(json, r#"{"v":12345678901234567.89}"#);
    }
}
