#!/usr/bin/env python3
"""Gateway mode (JwtGatewayAuthorizer) wires the HTTP API's JWT authorizer as docs/configuration.md says.

Translates template.yaml with the SAM translator (offline) for two parameter sets, resolves the
conditions CloudFormation would, and checks the OpenAPI body API Gateway imports:
- off (the default): the body is exactly the one SAM generates from the HttpApi events alone, as before
  gateway mode existed (no authorizer, no security on any route);
- on: one JWT authorizer (the Authorization header, JwtIssuer, JwtAudience split on commas) on
  GET /api/reports/dashboard-bundle and POST /api/reports/clear-cache; GET /api/system/health has none;
  the body is the one SAM generates when that authorizer is given in the two events' Auth.
In both, every route has its Lambda integration, the health route keeps its throttling, and no
AWS::ApiGatewayV2::Route or Authorizer resource sits next to the imported body (a re-import of the body
would delete them). Run with a Python that has samtranslator (the sam venv): scripts/check-template.sh does.
"""
import copy
import json

from sam_offline import Resolver, load, translate

ROUTES = {
    ("/api/reports/dashboard-bundle", "get"): "DashboardBundleFunction",
    ("/api/reports/clear-cache", "post"): "ClearCacheFunction",
    ("/api/system/health", "get"): "DashboardBundleFunction",
}
AUTHENTICATED = {("/api/reports/dashboard-bundle", "get"), ("/api/reports/clear-cache", "post")}
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
GATEWAY_ON = {"JwtGatewayAuthorizer": "true", "JwtIssuer": ISSUER, "JwtAudience": "client-a,client-b"}


def api(template, parameters):
    """The resolved HttpApi body, the stage and the resource types of the translated template."""
    out = translate(template, parameters)
    resolver = Resolver(out, parameters)
    resources = {
        name: r for name, r in out["Resources"].items() if "Condition" not in r or resolver.condition(r["Condition"])
    }
    body = resolver.resolve(resources["HttpApi"]["Properties"]["Body"])
    stage = resolver.resolve(resources["HttpApiApiGatewayDefaultStage"]["Properties"])
    return body, stage, {r["Type"] for r in resources.values()}


def check_common(mode, body, stage, types):
    for (path, method), function in ROUTES.items():
        operation = body["paths"][path][method]
        uri = json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
        assert f"${{{function}.Arn}}" in uri, f"{mode}: {method.upper()} {path} does not invoke {function}"
    assert set(body["paths"]) == {p for p, _ in ROUTES}, f"{mode}: unexpected paths {sorted(body['paths'])}"
    health = stage["RouteSettings"]["GET /api/system/health"]
    assert health == {"ThrottlingRateLimit": "2", "ThrottlingBurstLimit": "5"}, f"{mode}: health throttling {health}"
    assert stage["DefaultRouteSettings"] == {"ThrottlingRateLimit": "50", "ThrottlingBurstLimit": "100"}
    assert "AccessLogSettings" in stage, f"{mode}: no access logs"
    mixed = types & {"AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Authorizer", "AWS::ApiGatewayV2::Integration"}
    assert not mixed, f"{mode}: {sorted(mixed)} next to the imported OpenAPI body"


template = load()

# Off: the same body as SAM makes from the events without any DefinitionBody (the API before gateway mode).
body, stage, types = api(template, {})
check_common("off", body, stage, types)
events_only = copy.deepcopy(template)
del events_only["Resources"]["HttpApi"]["Properties"]["DefinitionBody"]
expected, _, _ = api(events_only, {})
assert body == expected, "off: the API's body differs from the one SAM generates from the events alone"
assert "components" not in body, "off: an authorizer is defined"

# On: the authorizer on the bundle and clear routes, none on health.
body, stage, types = api(template, GATEWAY_ON)
check_common("on", body, stage, types)
schemes = body["components"]["securitySchemes"]
assert len(schemes) == 1, f"on: expected one security scheme, found {sorted(schemes)}"
(name, scheme), = schemes.items()
authorizer = scheme["x-amazon-apigateway-authorizer"]
assert scheme["type"] == "oauth2" and authorizer["type"] == "jwt", f"on: {name} is not a JWT authorizer"
assert authorizer["identitySource"] == "$request.header.Authorization", f"on: identity source {authorizer}"
assert authorizer["jwtConfiguration"] == {"issuer": ISSUER, "audience": ["client-a", "client-b"]}, authorizer
for path, method in ROUTES:
    security = body["paths"][path][method].get("security")
    if (path, method) in AUTHENTICATED:
        assert security == [{name: []}], f"on: {method.upper()} {path} security {security}"
    else:
        assert security is None, f"on: {method.upper()} {path} must stay unauthenticated, has {security}"
# And the same body as SAM makes from the events given that authorizer in their Auth (no condition there).
with_auth = copy.deepcopy(events_only)
with_auth["Resources"]["HttpApi"]["Properties"]["Auth"] = {
    "Authorizers": {
        name: {
            "IdentitySource": "$request.header.Authorization",
            "JwtConfiguration": {"issuer": ISSUER, "audience": GATEWAY_ON["JwtAudience"].split(",")},
        }
    }
}
for function, event in (("DashboardBundleFunction", "Bundle"), ("ClearCacheFunction", "Clear")):
    with_auth["Resources"][function]["Properties"]["Events"][event]["Properties"]["Auth"] = {"Authorizer": name}
expected, _, _ = api(with_auth, GATEWAY_ON)
assert body == expected, "on: the API's body differs from the one SAM generates with the authorizer in the events' Auth"
print("check-template: gateway mode off by default; on, a JWT authorizer on the bundle and clear routes, not health")
