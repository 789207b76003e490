#!/usr/bin/env python3
"""What each file of events/ must produce end to end (see scripts/e2e.sh).

  e2e_expect.py --order DIR     print DIR's event files in invocation order; fail on a file with no expectation
  e2e_expect.py --check NAME    read NAME's Lambda response on stdin and check it
"""
import json
import sys
from pathlib import Path

ACME = "a11dfb63-4b18-4eb8-872e-747af2e37c46"
DEMO_TENANTS = 3


def http(response):
    """An API Gateway v2 response: status code, lower-cased headers, JSON body."""
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return response["statusCode"], headers, json.loads(response["body"])


def dashboard_bundle(r):
    status, headers, body = http(r)
    assert status == 200, (status, body)
    assert headers.get("x-cache") in ("HIT", "MISS"), headers
    assert body["status"] == "success" and body["data"]["meta"]["tenant_id"] == ACME, body["data"]["meta"]
    assert body["data"]["stats"]["totalLeads"] > 0, body["data"]["stats"]


def dashboard_bundle_bust(r):
    status, headers, body = http(r)
    assert status == 200 and headers.get("x-cache") == "MISS", (status, headers)
    assert body["data"]["meta"]["include_test_data"] is False and body["cached"] is False, body


def dashboard_bundle_global(r):
    status, _, body = http(r)
    assert status == 200 and body["data"]["meta"]["tenant_id"] is None, (status, body)


def health(r):
    status, _, body = http(r)
    assert status == 200, (status, body)
    assert (body["status"], body["redis_cache"], body["database"]) == ("ok", "connected", "connected"), body


def warm_schedule(r):
    assert r["trigger"] == "schedule" and r["failures"] == 0, r
    assert r["bundles_warmed"] == 2 * DEMO_TENANTS + 2, r


def warm_tenants(r):
    assert r["trigger"] == "manual" and r["bundles_warmed"] == 2 and r["failures"] == 0, r


def heartbeat(r):
    if r.get("due") is False:
        assert r["next_run"], r
    else:  # the run crossed midnight UTC: the beat fired the schedule
        warm_schedule(r)


def compact(r):
    assert isinstance(r["deltas_compacted"], int) and r["deltas_compacted"] >= 0, r


def clear_tenant(r):
    status, _, body = http(r)
    assert status == 200, (status, body)
    assert body["data"] == {"cleared": True, "scope": "tenant", "tenant_id": ACME, "deleted": 2}, body


def clear_all(r):
    status, _, body = http(r)
    assert status == 200 and body["data"]["scope"] == "all" and body["data"]["cleared"] is True, body
    assert body["data"]["deleted"] >= 2 * (DEMO_TENANTS - 1) + 2, body


# In invocation order.
EXPECTATIONS = {
    "health.json": health,
    "dashboard-bundle.json": dashboard_bundle,
    "dashboard-bundle-bust.json": dashboard_bundle_bust,
    "dashboard-bundle-global.json": dashboard_bundle_global,
    "warm-cache-schedule.json": warm_schedule,
    # EventBridge Scheduler's input (template.yaml): a scheduled run too.
    "warm-cache-scheduler.json": warm_schedule,
    "warm-cache-tenants.json": warm_tenants,
    # The template's minute heartbeat: cron_job's schedule (midnight UTC) is not due, so nothing runs.
    "warm-cache-heartbeat.json": heartbeat,
    # The compaction schedule's input (template.yaml): folds the change deltas, records no run.
    "warm-cache-compact.json": compact,
    "clear-cache-tenant.json": clear_tenant,
    "clear-cache-all.json": clear_all,
}


def main():
    if sys.argv[1] == "--order":
        directory = Path(sys.argv[2])
        files = sorted(p.name for p in directory.glob("*.json"))
        missing = [f for f in files if f not in EXPECTATIONS]
        if missing:
            sys.exit(f"e2e: no expectation for {', '.join(missing)} (add one to scripts/e2e_expect.py)")
        print(" ".join(str(directory / name) for name in EXPECTATIONS if name in files))
    elif sys.argv[1] == "--check":
        name = sys.argv[2]
        text = sys.stdin.read()
        try:
            EXPECTATIONS[name](json.loads(text))
        except (AssertionError, KeyError, ValueError) as e:
            sys.exit(f"e2e: {name}: unexpected response: {e!r}\n{text[:2000]}")
        print(f"e2e: {name}: ok")


if __name__ == "__main__":
    main()
