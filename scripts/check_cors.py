#!/usr/bin/env python3
"""Deployed CORS is API Gateway's: the HttpApi's CorsConfiguration answers the page's origin.

API Gateway answers preflights itself and ignores CORS headers a function returns, so the template is the
one place CORS is set. Translates template.yaml with the SAM translator (offline), resolves the conditions
for a parameter set, and reads the `x-amazon-apigateway-cors` of the OpenAPI body API Gateway imports:
- AllowedOrigins empty (the default): no CORS configuration at all (same-origin callers only);
- AllowedOrigins set (one origin, or two): exactly those origins, and the preflights a dashboard page on
  one of them sends (GET with Authorization, POST with Authorization and Content-Type, every method a
  route of the API takes) are answered as allowed, the page may read X-Cache and X-Cache-Level, no
  credentials mode; the same preflights from another origin are not;
- AllowedOrigins refuses a wildcard, and no function is given a CORS setting of its own.
Run with a Python that has samtranslator (the sam venv): scripts/check-template.sh does.
"""
import re

from sam_offline import load, resources, translate

# What the dashboard page sends and reads (web/dashboard/app.js), as a browser's preflight names them.
PAGE_REQUESTS = [("GET", ["authorization"]), ("POST", ["authorization", "content-type"])]
PAGE_READS = {"x-cache", "x-cache-level"}
ORIGIN_SETS = ["https://crm.example.com", "https://crm.example.com,http://localhost:4000"]
OTHER_ORIGIN = "https://evil.example.net"


def cors_of(template, parameters):
    """The API's resolved CORS configuration (None without one) and the methods its routes take."""
    translated = translate(template, parameters)
    body = resources(translated, parameters)["HttpApi"]["Properties"]["Body"]
    methods = {method.upper() for operations in body["paths"].values() for method in operations}
    return body.get("x-amazon-apigateway-cors"), methods


def preflight_allowed(cors, origin, method, headers):
    """Whether API Gateway's CORS allows this preflight: exact origin, the method, every header
    (header names compared case-insensitively, as HTTP does)."""
    allowed_headers = {h.lower() for h in cors.get("allowHeaders", [])}
    return (
        origin in cors.get("allowOrigins", [])
        and method in cors.get("allowMethods", [])
        and all(h in allowed_headers for h in headers)
    )


template = load()

cors, _ = cors_of(template, {})
assert cors is None, f"AllowedOrigins empty: expected no CORS configuration, found {cors}"

for origins in ORIGIN_SETS:
    cors, route_methods = cors_of(template, {"AllowedOrigins": origins})
    assert cors is not None, f"AllowedOrigins={origins}: the API has no CORS configuration"
    expected = origins.split(",")
    assert cors.get("allowOrigins") == expected, f"allowOrigins {cors.get('allowOrigins')}, expected {expected}"
    requests = PAGE_REQUESTS + [(m, []) for m in sorted(route_methods)]
    for origin in expected:
        for method, headers in requests:
            assert preflight_allowed(cors, origin, method, headers), (
                f"a preflight from {origin} for {method} with {headers} is refused by {cors}"
            )
    for method, headers in PAGE_REQUESTS:
        assert not preflight_allowed(cors, OTHER_ORIGIN, method, headers), f"{OTHER_ORIGIN} is allowed"
    exposed = {h.lower() for h in cors.get("exposeHeaders", [])}
    assert PAGE_READS <= exposed, f"the page cannot read {sorted(PAGE_READS - exposed)}"
    assert cors.get("allowCredentials") is False, "bearer tokens need no credentials mode"

pattern = template["Parameters"]["AllowedOrigins"]["AllowedPattern"]
for origins in ["", *ORIGIN_SETS]:
    assert re.fullmatch(pattern, origins), f"AllowedOrigins refuses {origins!r}"
for wildcard in ["*", "https://*.example.com", "https://crm.example.com,*"]:
    assert not re.fullmatch(pattern, wildcard), f"AllowedOrigins accepts {wildcard!r}"

function_settings = {name: r.get("Properties", {}) for name, r in template["Resources"].items()}
function_settings["Globals"] = template.get("Globals", {}).get("Function", {})
for name, properties in function_settings.items():
    variables = properties.get("Environment", {}).get("Variables", {})
    assert not [v for v in variables if "CORS" in v], f"{name} has a CORS setting of its own"
print("check-template: CORS is the HttpApi's; it answers the page's preflights from AllowedOrigins only")
