#!/usr/bin/env python3
"""Cargo.toml's rust-version is the true minimum, and rust-toolchain.toml's channel meets it (make lint).

The minimum is the highest rust-version among the locked dependencies that are built for Lambda or the
tests (aarch64 and x86-64 Linux): declaring less lets an older toolchain start a build that the
dependencies then refuse; declaring more refuses toolchains that would work. Every workspace crate
inherits the one value.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["aarch64-unknown-linux-gnu", "x86_64-unknown-linux-gnu"]


def version(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def metadata(target):
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


errors = []
needed = {}
declared = set()
for target in TARGETS:
    meta = metadata(target)
    resolved = {node["id"] for node in meta["resolve"]["nodes"]}
    members = set(meta["workspace_members"])
    for package in meta["packages"]:
        if package["id"] in members:
            declared.add(package.get("rust_version"))
        elif package["id"] in resolved and package.get("rust_version"):
            needed[f"{package['name']} {package['version']}"] = package["rust_version"]

highest = max(needed.values(), key=version)
asking = sorted(name for name, v in needed.items() if version(v) == version(highest))
if len(declared) != 1 or None in declared:
    errors.append(f"every workspace crate should inherit one rust-version, found {sorted(map(str, declared))}")
else:
    (rust_version,) = declared
    if version(rust_version) != version(highest):
        errors.append(
            f"Cargo.toml declares rust-version {rust_version}, the locked dependencies need {highest} "
            f"({', '.join(asking[:3])}{' ...' if len(asking) > 3 else ''})"
        )

channel = re.search(r'^channel = "([^"]+)"$', (ROOT / "rust-toolchain.toml").read_text(), re.M).group(1)
if not re.fullmatch(r"\d+\.\d+\.\d+", channel):
    errors.append(f"rust-toolchain.toml's channel {channel} is not a release (pin one)")
elif version(channel) < version(highest):
    errors.append(f"rust-toolchain.toml's channel {channel} is older than the dependencies' {highest}")

if errors:
    sys.exit("check_rust_version: " + "; ".join(errors))
print(f"check_rust_version: rust-version {highest} (asked by {asking[0]} and {len(asking) - 1} more), toolchain {channel}")
