#!/usr/bin/env python3
"""Each function may read exactly the secrets it uses, and sign-in is configured as docs/deploy.md says.

Translates template.yaml with the SAM translator (offline), resolves the conditions CloudFormation would,
and checks, for a deployment with an HS256 secret and one without:
- dashboard-bundle reads its own database secret (a read-only role) and the JWT secret; warm-cache its own
  database secret only; clear-cache the JWT secret only: in its environment (`*_SECRET_ARN`) and in its IAM
  role (secretsmanager actions on those ARNs and nothing else);
- without JwtSecretArn, no function gets JWT_SECRET_ARN or a grant on a JWT secret (HS256 is off);
- JwtAlgorithms reaches both HTTP functions as JWT_ALGORITHMS;
and that the template's Rules stop a deploy that has no key to verify tokens with, an IdP without an
audience, or one database secret for both functions.

  scripts/check_secret_grants.py [template.yaml]   (with the sam venv's Python: scripts/check-template.sh)
"""
import re
import sys

from sam_offline import Resolver, load, resources, translate

DASHBOARD_DB = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dashboard-bundle-db-AbCdEf"
WARM_DB = "arn:aws:secretsmanager:us-east-1:123456789012:secret:warm-cache-db-GhIjKl"
JWT = "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-MnOpQr"
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
BASE = {
    "DashboardBundleDatabaseUrlSecretArn": DASHBOARD_DB,
    "WarmCacheDatabaseUrlSecretArn": WARM_DB,
    "JwtIssuer": ISSUER,
    "JwtAudience": "client-a",
}
FUNCTIONS = ("DashboardBundleFunction", "ClearCacheFunction", "WarmCacheFunction")

errors = []


def check(ok, message):
    if not ok:
        errors.append(message)


def as_list(value):
    return value if isinstance(value, list) else [value]


def secret_grants(resolved, function):
    """The resources of every statement of `function`'s role that allows a secretsmanager action."""
    role = resolved[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    properties = resolved[role]["Properties"]
    check(
        not any("SecretsManager" in str(arn) for arn in properties.get("ManagedPolicyArns", [])),
        f"{function}: a managed Secrets Manager policy on its role",
    )
    granted = set()
    for policy in properties.get("Policies", []):
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            actions = as_list(statement.get("Action", []))
            if statement["Effect"] == "Allow" and any(a.lower().startswith("secretsmanager:") for a in actions):
                granted.update(str(r) for r in as_list(statement["Resource"]))
    return granted


def check_deployment(name, parameters, expected):
    """`expected`: function -> {variable: ARN} of the secrets it may read."""
    resolved = resources(translate(template, parameters), parameters)
    for function, secrets in expected.items():
        variables = resolved[function]["Properties"]["Environment"]["Variables"]
        arns = {k: v for k, v in variables.items() if k.endswith("_SECRET_ARN")}
        check(arns == secrets, f"{name}: {function} has secret variables {arns}, expected {secrets}")
        granted = secret_grants(resolved, function)
        check(
            granted == set(secrets.values()),
            f"{name}: {function} may read {sorted(granted)}, expected {sorted(secrets.values())}",
        )
    for function in ("DashboardBundleFunction", "ClearCacheFunction"):
        variables = resolved[function]["Properties"]["Environment"]["Variables"]
        algorithms = variables.get("JWT_ALGORITHMS")
        wanted = parameters.get("JwtAlgorithms", "")
        check(algorithms == wanted, f"{name}: {function} has JWT_ALGORITHMS={algorithms!r}, expected {wanted!r}")


def check_parameters():
    parameters = template["Parameters"]
    check(
        "DatabaseUrlSecretArn" not in parameters,
        "DatabaseUrlSecretArn: one database secret (and role) serves two functions",
    )
    for name in ("DashboardBundleDatabaseUrlSecretArn", "WarmCacheDatabaseUrlSecretArn"):
        check(name in parameters and "Default" not in parameters[name], f"{name}: missing, or not required")
    jwt = parameters.get("JwtSecretArn", {})
    pattern = jwt.get("AllowedPattern", "")
    check(jwt.get("Default") == "", "JwtSecretArn: required (HS256 cannot be switched off)")
    check(re.fullmatch(pattern, "") is not None, f"JwtSecretArn: {pattern} refuses an empty value")
    check(re.fullmatch(pattern, JWT) is not None, f"JwtSecretArn: {pattern} refuses an ARN")
    check(parameters.get("JwtAlgorithms", {}).get("Default") == "", "JwtAlgorithms: missing, or not optional")


def check_rules():
    rules = template.get("Rules", {})
    cases = [
        ("an IdP and a secret", {**BASE, "JwtSecretArn": JWT}, False),
        ("an IdP only", BASE, False),
        ("a secret only", {**BASE, "JwtIssuer": "", "JwtAudience": "", "JwtSecretArn": JWT}, False),
        ("HS256 only with an iss check", {**BASE, "JwtAudience": "", "JwtSecretArn": JWT, "JwtAlgorithms": "HS256"}, False),
        ("no key at all", {**BASE, "JwtIssuer": "", "JwtAudience": ""}, True),
        ("an IdP without an audience", {**BASE, "JwtAudience": "", "JwtSecretArn": JWT}, True),
        ("one database secret for both", {**BASE, "WarmCacheDatabaseUrlSecretArn": DASHBOARD_DB}, True),
    ]
    for name, parameters, refused in cases:
        failed = Resolver(template, parameters).failed_rules(rules)
        if refused:
            check(failed, f"rules: {name} is deployed")
        else:
            check(not failed, f"rules: {name} is refused: {failed}")


template = load(sys.argv[1] if len(sys.argv) > 1 else None)
check_parameters()
if not errors:
    check_deployment(
        "with JwtSecretArn",
        {**BASE, "JwtSecretArn": JWT, "JwtAlgorithms": "RS256,HS256"},
        {
            "DashboardBundleFunction": {"DATABASE_URL_SECRET_ARN": DASHBOARD_DB, "JWT_SECRET_ARN": JWT},
            "ClearCacheFunction": {"JWT_SECRET_ARN": JWT},
            "WarmCacheFunction": {"DATABASE_URL_SECRET_ARN": WARM_DB},
        },
    )
    check_deployment(
        "without JwtSecretArn",
        {**BASE, "JwtAlgorithms": "RS256"},
        {
            "DashboardBundleFunction": {"DATABASE_URL_SECRET_ARN": DASHBOARD_DB},
            "ClearCacheFunction": {},
            "WarmCacheFunction": {"DATABASE_URL_SECRET_ARN": WARM_DB},
        },
    )
check_rules()
if errors:
    print("check-template: secret grants and sign-in:", *errors, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print("check-template: each function may read only its own secrets; HS256 off without JwtSecretArn; rules hold")
