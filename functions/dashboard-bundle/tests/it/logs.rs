//! The lines one request leaves in Lambda's log: Powertools' keys at the top level of each log line,
//! the request id on every line and in the metrics document, and one `ColdStart` metric.

use serde_json::Value;
use sqlx::PgPool;
use test_support::{self as testing, log_lines, TestEnv};
use tracing::Instrument;

use crate::app;

const TRACE: &str = "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1";

fn with_request(lines: &[Value], request_id: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l["request_id"] == request_id)
        .cloned()
        .collect()
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_request_logs_powertools_keys_and_its_metrics_carry_the_request_id(pool: PgPool) {
    let tenant = testing::insert_tenant(&pool, "Acme").await;
    let env = TestEnv::new();
    let state = app::state(&env, &pool);
    let lines = log_lines::capture("dashboard-bundle");
    let (first, second) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());

    for request_id in [&first, &second] {
        // What lambda_runtime wraps each invocation in.
        let invocation = tracing::info_span!(
            "Lambda runtime invoke",
            requestId = request_id,
            xrayTraceId = TRACE
        );
        app::get(&state, tenant).instrument(invocation).await;
    }
    let lines: Vec<Value> = lines
        .parsed()
        .into_iter()
        .filter(|l| l["request_id"] == *first || l["request_id"] == *second)
        .collect();

    // The test binary's first invocation span is this test's first request: no other test makes one.
    let cold: Vec<&Value> = lines.iter().filter(|l| l.get("ColdStart").is_some()).collect();
    assert_eq!(cold.len(), 1, "one ColdStart metric: {lines:#?}");
    assert_eq!(cold[0]["request_id"], *first);
    assert_eq!(cold[0]["service"], "dashboard-bundle");
    assert_eq!(
        cold[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
        "ColdStart"
    );

    for (request_id, cold_start, cache) in [(&first, true, "MISS"), (&second, false, "HIT")] {
        let of_request = with_request(&lines, request_id);
        let log = of_request
            .iter()
            .find(|l| l["message"] == "dashboard bundle")
            .unwrap_or_else(|| panic!("no bundle log line for {request_id}: {of_request:#?}"));
        assert_eq!(log["level"], "INFO");
        assert_eq!(log["service"], "dashboard-bundle");
        assert_eq!(log["cold_start"], cold_start);
        assert_eq!(log["xray_trace_id"], TRACE);
        assert!(
            chrono::DateTime::parse_from_rfc3339(log["timestamp"].as_str().unwrap_or_default()).is_ok(),
            "{log}"
        );
        assert!(
            log["location"]
                .as_str()
                .is_some_and(|l| l.starts_with("dashboard_bundle::")),
            "{log}"
        );
        // The event's own fields, flattened beside Powertools' keys.
        assert_eq!(log["cache"], cache, "{log}");
        assert!(log["duration_ms"].is_u64(), "{log}");
        assert!(log.get("fields").is_none() && log.get("span").is_none(), "{log}");
        let metrics = of_request
            .iter()
            .find(|l| l.get("Requests").is_some())
            .unwrap_or_else(|| panic!("no metrics document for {request_id}: {of_request:#?}"));
        assert_eq!(metrics["Cache"], cache);
        assert_eq!(
            metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "DashboardCache"
        );
    }
    assert!(with_request(&lines, &first)
        .iter()
        .all(|l| l.get("_aws").is_some() || l["cold_start"] == true));
    testing::cleanup_prefix(&env.prefix()).await;
}
