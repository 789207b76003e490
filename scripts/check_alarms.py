#!/usr/bin/env python3
"""Every alarm reaches a person, and its description leads to its runbook entry (docs/RUNBOOK.md).

Translates template.yaml with the SAM translator (offline), resolves the conditions CloudFormation would,
and checks:
- every AWS::CloudWatch::Alarm notifies, on alarm and on recovery, AlarmTopicArn when it is given and
  else the topic the stack creates (which exists exactly then); AlarmEmail subscribes an address to that
  topic; CloudWatch may publish to the created topic;
- every AlarmDescription ends with `Runbook: docs/RUNBOOK.md#<anchor>`, the anchor of a `## <logical id>`
  heading of docs/RUNBOOK.md whose entry says what the alarm means, how to check and what to do (and, for
  a queue's alarm, how to replay a dead letter); RUNBOOK.md has no entry for an alarm that does not exist;
- the rules refuse Stage=prod (as the prod profile of samconfig.toml deploys) without AlarmEmail or
  AlarmTopicArn, and let dev deploy without either;
- the BYPASS and STALE shares are alarmed on, out of the requests of every Cache value dashboard-bundle
  emits (shared/src/serving/mod.rs) under the namespace, metric and dimension of its EMF line
  (functions/dashboard-bundle/src/get_bundle.rs); a metric-math alarm returns exactly one expression.

  scripts/check_alarms.py [template.yaml]   (with the sam venv's Python: scripts/check-template.sh)
"""
import re
import shlex
import sys
import tomllib

from sam_offline import ROOT, Resolver, load, resources, translate

RUNBOOK = ROOT / "docs" / "RUNBOOK.md"
TOPIC = {"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}
OWN_TOPIC = "arn:aws:sns:us-east-1:123456789012:team-on-call"
EMAIL = "oncall@example.com"
# Values the other rules accept (an IdP with an audience, one database secret per function).
BASE = {
    "DashboardBundleDatabaseUrlSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:dashboard-bundle-db-AbCdEf",
    "WarmCacheDatabaseUrlSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:warm-cache-db-GhIjKl",
    "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
    "JwtAudience": "client-a",
}
SHARES = {"BypassShareAlarm": "BYPASS", "StaleShareAlarm": "STALE"}
SECTIONS = ("**What it means", "**How to check", "**What to do")
REPLAY = "**How to replay"

errors = []


def check(ok, message):
    if not ok:
        errors.append(message)


def slug(heading):
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_entries():
    """`## ` heading anchor -> (heading, the entry's text up to the next `## ` heading)."""
    if not RUNBOOK.exists():
        return {}
    entries = {}
    for part in re.split(r"^## ", RUNBOOK.read_text(), flags=re.M)[1:]:
        heading, _, body = part.partition("\n")
        entries[slug(heading)] = (heading.strip(), body)
    return entries


def emitted_cache_values():
    """The Cache dimension values dashboard-bundle emits: CacheStatus::as_str."""
    source = (ROOT / "shared" / "src" / "serving" / "mod.rs").read_text()
    return set(re.findall(r'CacheStatus::\w+ => "(\w+)"', source))


def check_emf_names():
    """The share alarms read what get_bundle.rs's EMF line writes (a format string: spaces and the
    doubled braces of format! are ignored)."""
    source = (ROOT / "functions" / "dashboard-bundle" / "src" / "get_bundle.rs").read_text()
    source = source.replace(" ", "").replace("{{", "{").replace("}}", "}")
    for fragment in ('"Namespace":"DashboardCache"', '"Dimensions":[["Cache"]]', '{"Name":"Requests"'):
        check(fragment in source, f"get_bundle.rs: its EMF line no longer has {fragment}")


def check_alarm(name, alarm, entries):
    properties = alarm["Properties"]
    for actions in ("AlarmActions", "OKActions"):
        check(properties.get(actions) == [TOPIC], f"{name}: {actions} is {properties.get(actions)}, expected [{TOPIC}]")
    description = properties.get("AlarmDescription", "")
    if not isinstance(description, str):
        check(False, f"{name}: AlarmDescription is not a plain string")
        return
    check(len(description) <= 1024, f"{name}: AlarmDescription longer than 1024 characters")
    link = re.search(r"Runbook: docs/RUNBOOK\.md#([\w-]+)$", description)
    if not link:
        check(False, f"{name}: AlarmDescription does not end with 'Runbook: docs/RUNBOOK.md#<anchor>'")
        return
    anchor = link.group(1)
    check(anchor == slug(name), f"{name}: its runbook anchor is #{anchor}, expected #{slug(name)} (its own entry)")
    if anchor not in entries:
        check(False, f"{name}: docs/RUNBOOK.md has no heading '## {name}' (anchor #{anchor})")
        return
    heading, body = entries[anchor]
    sections = SECTIONS + ((REPLAY,) if properties.get("Namespace") == "AWS/SQS" else ())
    for section in sections:
        check(section in body, f"docs/RUNBOOK.md#{anchor}: no {section}...** part")


def check_metric_math(name, alarm):
    metrics = alarm["Properties"].get("Metrics")
    if metrics is None:
        return
    returned = [m for m in metrics if m.get("ReturnData", True) is not False]
    check(
        len(returned) == 1 and "Expression" in returned[0],
        f"{name}: {len(returned)} entries return data; exactly one expression must",
    )


def check_share(name, status, alarm, cache_values):
    properties = alarm["Properties"]
    metrics = {m["Id"]: m for m in properties.get("Metrics", [])}
    stats = {i: m["MetricStat"] for i, m in metrics.items() if "MetricStat" in m}
    values = {}
    for i, stat in stats.items():
        metric = stat["Metric"]
        check(metric["Namespace"] == "DashboardCache" and metric["MetricName"] == "Requests",
              f"{name}: {i} reads {metric['Namespace']}/{metric['MetricName']}, not DashboardCache/Requests")
        check(stat["Stat"] == "Sum" and stat["Period"] == 300, f"{name}: {i} is not a 5-minute Sum")
        dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
        values[dimensions.get("Cache")] = i
    check(set(values) == cache_values, f"{name}: counts Cache values {sorted(values, key=str)}, dashboard-bundle emits {sorted(cache_values)}")
    returned = [m for m in metrics.values() if m.get("ReturnData", True) is not False]
    if len(returned) != 1 or status not in values:
        check(False, f"{name}: no single share expression over {status}")
        return
    expression = returned[0].get("Expression", "")
    check(re.search(rf"\b{values[status]}\b", expression) is not None, f"{name}: {expression} does not divide {status}")
    # The denominator: every count, directly or through another expression.
    used = set(re.findall(r"\b[a-z]\w*\b", expression))
    for other in metrics.values():
        if other is not returned[0] and "Expression" in other and other["Id"] in used:
            used |= set(re.findall(r"\b[a-z]\w*\b", other["Expression"]))
    check(set(stats) <= used, f"{name}: {sorted(set(stats) - used)} left out of the total")
    check(properties.get("ComparisonOperator") == "GreaterThanThreshold", f"{name}: not a 'greater than' alarm")
    check(properties.get("TreatMissingData") == "notBreaching", f"{name}: no traffic must not breach")


def check_deployment(label, parameters, topic_created, subscription_topic):
    """The resolved alarms' actions, the topic and the email subscription for one parameter set."""
    resolved = resources(translate(template, parameters), parameters)
    topic = {"Ref": "AlarmTopic"} if topic_created else parameters["AlarmTopicArn"]
    check(("AlarmTopic" in resolved) == topic_created, f"{label}: AlarmTopic created: {'AlarmTopic' in resolved}")
    check(("AlarmTopicPolicy" in resolved) == topic_created, f"{label}: AlarmTopicPolicy present: {'AlarmTopicPolicy' in resolved}")
    for name, r in resolved.items():
        if r["Type"] == "AWS::CloudWatch::Alarm":
            for actions in ("AlarmActions", "OKActions"):
                got = r["Properties"].get(actions)
                check(got == [topic], f"{label}: {name} {actions} resolve to {got}, expected [{topic}]")
    subscription = resolved.get("AlarmEmailSubscription")
    if subscription_topic is None:
        check(subscription is None, f"{label}: an email subscription without AlarmEmail")
    else:
        expected = {"TopicArn": subscription_topic, "Protocol": "email", "Endpoint": parameters.get("AlarmEmail")}
        got = subscription and subscription["Properties"]
        check(got == expected, f"{label}: the email subscription is {got}, expected {expected}")
    if topic_created and "AlarmTopicPolicy" in resolved:
        statements = resolved["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        check(
            any(s["Effect"] == "Allow" and s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
                and s["Action"] in ("sns:Publish", ["sns:Publish"]) for s in statements),
            f"{label}: the topic policy does not let CloudWatch publish",
        )


def profile_overrides(profile):
    """The parameter_overrides of a samconfig.toml profile's deploy command, as a dict."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    line = config.get(profile, {}).get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    return dict(item.split("=", 1) for item in shlex.split(line))


def check_rules():
    parameters = template["Parameters"]
    stage = parameters.get("Stage", {})
    check({"dev", "prod"} <= set(stage.get("AllowedValues", [])), "Stage: missing, or not dev/prod")
    check("Default" not in stage, "Stage: has a default (a deploy must say which it is)")
    prod, dev = profile_overrides("prod"), profile_overrides("dev")
    check(prod.get("Stage") == "prod", f"samconfig.toml: the prod profile deploys Stage={prod.get('Stage')}")
    check(dev.get("Stage") == "dev", f"samconfig.toml: the dev profile deploys Stage={dev.get('Stage')}")
    check(not prod.get("AlarmEmail") and not prod.get("AlarmTopicArn"),
          "samconfig.toml: the prod profile names an alarm recipient (a placeholder would satisfy the rule)")
    rules = template.get("Rules", {})
    cases = [
        ("the prod profile as committed", {**BASE, **prod}, True),
        ("prod without a topic or an address", {**BASE, "Stage": "prod"}, True),
        ("prod with AlarmEmail", {**BASE, "Stage": "prod", "AlarmEmail": EMAIL}, False),
        ("prod with AlarmTopicArn", {**BASE, "Stage": "prod", "AlarmTopicArn": OWN_TOPIC}, False),
        ("prod with both", {**BASE, "Stage": "prod", "AlarmEmail": EMAIL, "AlarmTopicArn": OWN_TOPIC}, False),
        ("the dev profile as committed", {**BASE, **dev}, False),
        ("dev without a topic or an address", {**BASE, "Stage": "dev"}, False),
    ]
    for label, values, refused in cases:
        failed = Resolver(template, values).failed_rules(rules)
        if refused:
            check(any("AlarmEmail" in f and "AlarmTopicArn" in f for f in failed),
                  f"rules: {label} is deployed (or refused without naming AlarmEmail/AlarmTopicArn): {failed}")
        else:
            check(not failed, f"rules: {label} is refused: {failed}")


template = load(sys.argv[1] if len(sys.argv) > 1 else None)
entries = runbook_entries()
alarms = {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
for name, alarm in alarms.items():
    check_alarm(name, alarm, entries)
    check_metric_math(name, alarm)
for anchor, (heading, _) in entries.items():
    if heading.endswith("Alarm"):
        check(heading in alarms, f"docs/RUNBOOK.md: '## {heading}' is the entry of no alarm of the template")
check_emf_names()
cache_values = emitted_cache_values()
check(cache_values >= {"HIT", "MISS", "STALE", "BYPASS"}, f"CacheStatus values read as {sorted(cache_values)}")
for name, status in SHARES.items():
    if name in alarms:
        check_share(name, status, alarms[name], cache_values)
    else:
        check(False, f"{name}: missing (the {status} share of bundle requests is not alarmed on)")
if not errors:
    check_deployment("no AlarmTopicArn, no AlarmEmail", BASE, True, None)
    check_deployment("AlarmEmail", {**BASE, "AlarmEmail": EMAIL}, True, {"Ref": "AlarmTopic"})
    check_deployment("AlarmTopicArn", {**BASE, "AlarmTopicArn": OWN_TOPIC}, False, None)
    check_deployment("AlarmTopicArn and AlarmEmail", {**BASE, "AlarmTopicArn": OWN_TOPIC, "AlarmEmail": EMAIL}, False, OWN_TOPIC)
check_rules()
if errors:
    print("check-template: alarms:", *errors, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"check-template: the {len(alarms)} alarms notify the alarm topic and name their runbook entry; prod needs a recipient")
