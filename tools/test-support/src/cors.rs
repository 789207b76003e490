//! The dev dashboard page as a browser origin: the preflight it sends and what the functions must answer.

use lambda_http::{Body, Response};
use serde_json::Value;

use crate::{with_header, with_method};

/// The page's origin under `make dev`.
pub const PAGE: &str = "http://localhost:4000";

/// `ev` as the browser's preflight of it: OPTIONS from [`PAGE`], asking for `method` and `headers`.
pub fn preflight(ev: Value, method: &str, headers: &str) -> Value {
    let ev = with_header(with_method(ev, "OPTIONS"), "origin", PAGE);
    let ev = with_header(ev, "access-control-request-method", method);
    with_header(ev, "access-control-request-headers", headers)
}

/// A header of `response` as text.
pub fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The answer every function gives the page's preflight: 204, the page allowed, the methods and
/// headers the API takes, cached for ten minutes.
pub fn assert_preflight_allowed(response: &Response<Body>) {
    assert_eq!(response.status(), 204);
    assert_eq!(header(response, "access-control-allow-origin"), Some(PAGE));
    assert_eq!(
        header(response, "access-control-allow-methods"),
        Some("GET, POST, OPTIONS")
    );
    assert_eq!(
        header(response, "access-control-allow-headers"),
        Some("authorization, content-type")
    );
    assert_eq!(header(response, "access-control-max-age"), Some("600"));
}
