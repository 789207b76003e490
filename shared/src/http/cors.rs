//! CORS for the HTTP functions (`CORS_ALLOWED_ORIGINS`): which origins may call the API from a browser,
//! the headers their responses carry and the answer to their preflight requests. Unset, nothing changes.
//!
//! Only exact origins are allowed, never `*`: the API is called with a bearer token, and a wildcard would
//! let any page that obtained one read tenant data through a visitor's browser.

use lambda_http::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Response};

use crate::env::{ConfigError, Env};

const VARIABLE: &str = "CORS_ALLOWED_ORIGINS";
const ALLOW_METHODS: &str = "GET, POST, OPTIONS";
const ALLOW_HEADERS: &str = "authorization, content-type";
/// The dashboard page reads the cache outcome from `X-Cache` and where a hit came from from
/// `X-Cache-Level`.
const EXPOSE_HEADERS: &str = "X-Cache, X-Cache-Level";
const MAX_AGE_SECONDS: &str = "600";

/// The origins allowed to call the API from a browser, exactly as browsers send them in `Origin`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsConfig {
    origins: Vec<String>,
}

impl CorsConfig {
    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins (`scheme://host[:port]`); empty or unset, none.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let raw = env.optional(VARIABLE).unwrap_or_default();
        let origins = raw
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                valid_origin(o)
                    .then(|| o.to_owned())
                    .ok_or_else(|| ConfigError::Invalid {
                        name: VARIABLE,
                        reason: format!("{o:?} is not an origin like http://localhost:4000 (no path, no *)"),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { origins })
    }

    /// The CORS decision for one request, taken before routing and applied to the routed response.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Cors {
        let origin = headers
            .get(header::ORIGIN)
            .filter(|value| self.origins.iter().any(|o| o.as_bytes() == value.as_bytes()))
            .cloned();
        let preflight = method == Method::OPTIONS
            && origin.is_some()
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        Cors { origin, preflight }
    }
}

/// What [`CorsConfig::check`] decided: the allowed origin of the request, if any, and whether the
/// request is a preflight to answer without routing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    origin: Option<HeaderValue>,
    preflight: bool,
}

impl Cors {
    /// `204` with the allowed methods and headers, for a preflight from an allowed origin.
    pub fn preflight(&self) -> Option<Response<Body>> {
        if !self.preflight {
            return None;
        }
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECONDS),
        );
        Some(self.apply(response))
    }

    /// Adds the CORS headers to a response when the request came from an allowed origin.
    pub fn apply(&self, mut response: Response<Body>) -> Response<Body> {
        let Some(origin) = &self.origin else {
            return response;
        };
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        response
    }
}

/// `scheme://host[:port]` as a browser serializes it: no path, query, credentials or wildcard.
fn valid_origin(origin: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "http://localhost:4000";

    fn config(value: &str) -> CorsConfig {
        CorsConfig::from_env(&Env::new(|name| (name == VARIABLE).then(|| value.to_owned()))).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn header_of(response: &Response<Body>, name: header::HeaderName) -> Option<&str> {
        response.headers().get(name).map(|v| v.to_str().unwrap())
    }

    fn ok() -> Response<Body> {
        Response::new(Body::Text("{}".into()))
    }

    #[test]
    fn unset_or_blank_allows_no_origin() {
        assert_eq!(
            CorsConfig::from_env(&Env::new(|_| None)).unwrap(),
            CorsConfig::default()
        );
        assert_eq!(config(" , "), CorsConfig::default());
        let cors = CorsConfig::default().check(&Method::GET, &headers(&[("origin", PAGE)]));
        assert!(cors.apply(ok()).headers().is_empty());
    }

    #[test]
    fn list_is_split_on_commas_and_trimmed() {
        let config = config("http://localhost:4000, https://crm.example.com");
        for origin in [PAGE, "https://crm.example.com"] {
            let cors = config.check(&Method::GET, &headers(&[("origin", origin)]));
            assert_eq!(
                header_of(&cors.apply(ok()), header::ACCESS_CONTROL_ALLOW_ORIGIN),
                Some(origin)
            );
        }
    }

    #[test]
    fn malformed_origin_is_rejected_naming_the_variable() {
        for bad in [
            "*",
            "localhost:4000",
            "http://localhost:4000/",
            "http://localhost:4000/dashboard",
            "ftp://x",
        ] {
            let err = CorsConfig::from_env(&Env::new(|_| Some(bad.to_owned()))).unwrap_err();
            assert!(err.to_string().contains(VARIABLE), "{bad}: {err}");
        }
    }

    #[test]
    fn allowed_origin_gets_origin_vary_and_exposed_x_cache() {
        let cors = config(PAGE).check(&Method::GET, &headers(&[("origin", PAGE)]));
        assert_eq!(cors.preflight().map(|r| r.status()), None);
        let mut response = ok();
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept"));
        let response = cors.apply(response);
        assert_eq!(
            header_of(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some(PAGE)
        );
        assert_eq!(
            header_of(&response, header::ACCESS_CONTROL_EXPOSE_HEADERS),
            Some("X-Cache, X-Cache-Level")
        );
        let vary: Vec<_> = response.headers().get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["Accept", "Origin"], "an existing Vary is kept");
    }

    #[test]
    fn other_or_missing_origin_gets_no_headers() {
        let config = config(PAGE);
        for request in [
            headers(&[("origin", "http://localhost:4001")]),
            headers(&[("origin", "http://localhost:40000")]),
            headers(&[("origin", "HTTP://LOCALHOST:4000")]),
            headers(&[("origin", "null")]),
            headers(&[]),
        ] {
            let cors = config.check(&Method::GET, &request);
            assert!(cors.apply(ok()).headers().is_empty(), "{request:?}");
        }
    }

    #[test]
    fn preflight_from_allowed_origin_is_204_with_methods_headers_and_max_age() {
        let request = headers(&[
            ("origin", PAGE),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "authorization, content-type"),
        ]);
        let response = config(PAGE)
            .check(&Method::OPTIONS, &request)
            .preflight()
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            header_of(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some(PAGE)
        );
        assert_eq!(
            header_of(&response, header::ACCESS_CONTROL_ALLOW_METHODS),
            Some("GET, POST, OPTIONS")
        );
        assert_eq!(
            header_of(&response, header::ACCESS_CONTROL_ALLOW_HEADERS),
            Some("authorization, content-type")
        );
        assert_eq!(header_of(&response, header::ACCESS_CONTROL_MAX_AGE), Some("600"));
        assert_eq!(header_of(&response, header::VARY), Some("Origin"));
    }

    #[test]
    fn options_that_is_not_an_allowed_preflight_is_routed() {
        let config = config(PAGE);
        let other_origin = headers(&[
            ("origin", "http://evil.test"),
            ("access-control-request-method", "GET"),
        ]);
        let no_request_method = headers(&[("origin", PAGE)]);
        assert!(config
            .check(&Method::OPTIONS, &other_origin)
            .preflight()
            .is_none());
        assert!(config
            .check(&Method::OPTIONS, &no_request_method)
            .preflight()
            .is_none());
        assert!(CorsConfig::default()
            .check(
                &Method::OPTIONS,
                &headers(&[("origin", PAGE), ("access-control-request-method", "GET")])
            )
            .preflight()
            .is_none());
    }
}
