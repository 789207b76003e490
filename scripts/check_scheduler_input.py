#!/usr/bin/env python3
"""The warm heartbeat's Scheduler input in template.yaml and events/warm-cache-heartbeat.json agree (and the
compaction schedule's and events/warm-cache-compact.json).

The template sends a document with Scheduler placeholders; the event file is the same document filled in,
and is what the tests and the end-to-end check feed the warmer. Run with a Python that has samtranslator
(the sam venv): scripts/check-template.sh does.
"""
import json
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse

PLACEHOLDERS = {
    "scheduled_time": "<aws.scheduler.scheduled-time>",
    "execution_id": "<aws.scheduler.execution-id>",
}
root = Path(__file__).resolve().parent.parent
template = yaml_parse((root / "template.yaml").read_text())
events = template["Resources"]["WarmCacheFunction"]["Properties"]["Events"]
schedules = {name: e["Properties"]["Input"] for name, e in events.items() if e["Type"] == "ScheduleV2"}
assert set(schedules) == {"Heartbeat", "Compact"}, f"ScheduleV2 events on WarmCacheFunction: {sorted(schedules)}"
compact = json.loads((root / "events" / "warm-cache-compact.json").read_text())
assert json.loads(schedules["Compact"]) == compact, f"Compact sends {schedules['Compact']}, not {compact}"
sent = json.loads(schedules["Heartbeat"])
example = json.loads((root / "events" / "warm-cache-heartbeat.json").read_text())

expected = {"source": "aws.scheduler", "detail-type": "Warm Heartbeat", **PLACEHOLDERS}
assert sent == expected, f"template Scheduler input {sent} is not {expected}"
assert set(example) == set(sent), f"event file keys {sorted(example)} differ from {sorted(sent)}"
for key, value in sent.items():
    if key not in PLACEHOLDERS:
        assert example[key] == value, f"event file {key}={example[key]!r}, template sends {value!r}"
print("check-template: the heartbeat's Scheduler input and events/warm-cache-heartbeat.json agree")
