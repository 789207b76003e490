//! The previous system's manual trigger, `POST /api/cron/execute` with
//! `{"function_name": "warmDashboardBundleCache"}`, for `make dev` only: `cargo lambda watch` routes
//! that path to this function as an HTTP API event, answered here with an HTTP response. It is
//! answered only when `WARM_CRON_ROUTE=true` (set by `make dev`); no deployed route reaches it.

use serde_json::{json, Value};

/// The one job name the previous runbook uses.
pub const WARM_FUNCTION_NAME: &str = "warmDashboardBundleCache";
/// Bodies longer than this are refused before parsing.
const MAX_BODY_BYTES: usize = 4096;

/// Whether `event` is an HTTP API (payload 2.0) request rather than a schedule or warm event.
pub fn is_http_event(event: &Value) -> bool {
    event.get("requestContext").and_then(|c| c.get("http")).is_some()
}

/// What the route was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Warm,
    Refused(Value),
}

/// Reads the HTTP event: a POST with a JSON object whose `function_name` is [`WARM_FUNCTION_NAME`].
pub fn parse(event: &Value) -> Request {
    let method = event["requestContext"]["http"]["method"]
        .as_str()
        .unwrap_or_default();
    if !method.eq_ignore_ascii_case("POST") {
        return Request::Refused(response(
            405,
            &json!({"status": "error", "error": "method_not_allowed", "message": "use POST"}),
        ));
    }
    let body = match body_text(event) {
        Some(body) if body.len() <= MAX_BODY_BYTES => body,
        _ => return Request::Refused(bad_request("the body must be a JSON object of at most 4 KB")),
    };
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&body) else {
        return Request::Refused(bad_request(
            "the body must be a JSON object: {\"function_name\": \"warmDashboardBundleCache\"}",
        ));
    };
    match fields.get("function_name") {
        Some(Value::String(name)) if name == WARM_FUNCTION_NAME && fields.len() == 1 => Request::Warm,
        Some(Value::String(name)) if fields.len() == 1 => {
            let name: String = name.chars().take(100).collect();
            Request::Refused(response(
                404,
                &json!({
                    "status": "error",
                    "error": "unknown_function",
                    "message": format!("no cron function {name:?}; the one known here is {WARM_FUNCTION_NAME:?}"),
                }),
            ))
        }
        _ => Request::Refused(bad_request(
            "expected exactly {\"function_name\": \"<name>\"} with a string name",
        )),
    }
}

fn body_text(event: &Value) -> Option<String> {
    let body = match event.get("body") {
        None | Some(Value::Null) => return Some(String::new()),
        Some(Value::String(body)) => body,
        Some(_) => return None,
    };
    if event["isBase64Encoded"].as_bool() == Some(true) {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(body).ok()?;
        return String::from_utf8(bytes).ok();
    }
    Some(body.clone())
}

fn bad_request(message: &str) -> Value {
    response(
        400,
        &json!({"status": "error", "error": "bad_request", "message": message}),
    )
}

/// An HTTP API response with a JSON body.
pub fn response(status: u16, body: &Value) -> Value {
    // `cookies` included: `cargo lambda watch` reads the response as an API Gateway v2 response,
    // where that field is required, and answers 500 without it.
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
        "isBase64Encoded": false,
        "cookies": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: &str) -> Value {
        json!({"requestContext": {"http": {"method": "POST", "path": "/api/cron/execute"}},
               "rawPath": "/api/cron/execute", "body": body, "isBase64Encoded": false})
    }

    fn status(request: Request) -> u64 {
        match request {
            Request::Warm => 200,
            Request::Refused(r) => r["statusCode"].as_u64().unwrap(),
        }
    }

    #[test]
    fn the_runbook_body_warms_and_anything_else_is_a_json_error() {
        assert_eq!(
            parse(&post(r#"{"function_name": "warmDashboardBundleCache"}"#)),
            Request::Warm
        );
        assert_eq!(
            status(parse(&post(r#"{"function_name": "sendNewsletter"}"#))),
            404
        );
        for body in [
            "",
            "not json",
            "[]",
            r#"{"function_name": 3}"#,
            r#"{"name": "x"}"#,
        ] {
            assert_eq!(status(parse(&post(body))), 400, "{body}");
        }
        let mut get = post("{}");
        get["requestContext"]["http"]["method"] = "GET".into();
        assert_eq!(status(parse(&get)), 405);
    }

    #[test]
    fn only_http_events_are_taken_for_the_route() {
        assert!(is_http_event(&post("{}")));
        assert!(!is_http_event(&json!({"detail-type": "Scheduled Event"})));
    }
}
