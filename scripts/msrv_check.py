#!/usr/bin/env python3
"""Checks Cargo.toml's rust-version against what can be checked with one toolchain.

* rust-version is set, and at least the edition's minimum (2024: 1.85);
* it is not above the running rustc (which builds and tests everything);
* every runtime dependency (normal dependencies, transitively, as resolved by
  Cargo.lock) declares a rust-version no higher than ours, or none;
* clippy's incompatible_msrv lint, which reads rust-version, finds no std API newer
  than it in any target with all features (and no source allows that lint).

* the language features of LANGUAGE_FEATURES found in the sources need no newer Rust
  (clippy checks std APIs only; with one toolchain these are found by pattern).

What this cannot see: other language features newer than rust-version; an older
toolchain is the only full check. The lowest version that passes the lint is 1.87
(u64::is_multiple_of); let chains make it 1.88 (see the comment in Cargo.toml).

Usage: python3 scripts/msrv_check.py   (CARGO selects cargo; make msrv-check runs it)
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CARGO = os.environ.get("CARGO", "cargo")
# (name, first stable version, pattern over a source line outside comments)
LANGUAGE_FEATURES = [
    ("let chains", (1, 88), re.compile(r"&&\s*let\s|\b(?:if|while)\s+let\b[^{]*&&")),
]
EDITION_MINIMUM = {"2015": (1, 0), "2018": (1, 31), "2021": (1, 56), "2024": (1, 85)}


def fail(msg):
    print(f"msrv-check: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def version(text):
    m = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not m:
        fail(f"not a version: {text!r}")
    return (int(m[1]), int(m[2]))


def show(v):
    return f"{v[0]}.{v[1]}"


def main():
    meta = json.loads(subprocess.run([CARGO, "metadata", "--format-version", "1"],
                                     cwd=REPO, check=True, capture_output=True, text=True).stdout)
    packages = {p["id"]: p for p in meta["packages"]}
    root = packages[meta["resolve"]["root"]]
    if not root.get("rust_version"):
        fail("Cargo.toml has no rust-version")
    ours = version(root["rust_version"])
    edition_min = EDITION_MINIMUM.get(root["edition"])
    if edition_min is None or ours < edition_min:
        fail(f"rust-version {show(ours)} is below edition {root['edition']}'s minimum")

    rustc = subprocess.run(["rustc", "-V"], check=True, capture_output=True, text=True).stdout
    running = version(rustc.split()[1].split("-")[0])
    if ours > running:
        fail(f"rust-version {show(ours)} is above the running {rustc.strip()}")

    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    runtime, stack = set(), [root["id"]]
    while stack:
        for dep in nodes[stack.pop()]["deps"]:
            normal = any(kind["kind"] is None for kind in dep["dep_kinds"])
            if normal and dep["pkg"] not in runtime:
                runtime.add(dep["pkg"])
                stack.append(dep["pkg"])
    for pkg in sorted(runtime):
        p = packages[pkg]
        if p.get("rust_version") and version(p["rust_version"]) > ours:
            fail(f"runtime dependency {p['name']} {p['version']} needs Rust {p['rust_version']}, above {show(ours)}")

    for name, needed, pattern in LANGUAGE_FEATURES:
        if needed <= ours:
            continue
        sources = sorted(p for top in ("src", "examples", "benches", "tests") for p in (REPO / top).rglob("*.rs"))
        for path in sources:
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("//", 1)[0]
                if pattern.search(code):
                    fail(f"{path.relative_to(REPO)}:{number} uses {name}, stable since "
                         f"{show(needed)}, above rust-version {show(ours)}")

    allowed = subprocess.run(["grep", "-rln", "incompatible_msrv", "src", "examples", "benches", "tests"],
                             cwd=REPO, capture_output=True, text=True).stdout.split()
    if allowed:
        fail(f"incompatible_msrv is mentioned (allowed?) in: {', '.join(allowed)}")
    lint = subprocess.run([CARGO, "clippy", "--quiet", "--all-targets", "--all-features", "--",
                           "-D", "clippy::incompatible_msrv"], cwd=REPO)
    if lint.returncode != 0:
        fail(f"clippy's incompatible_msrv: an API above rust-version {show(ours)} (see above)")
    print(f"msrv-check: rust-version {show(ours)} (edition {root['edition']}, running {show(running)}); "
          f"{len(runtime)} runtime dependencies within it; clippy incompatible_msrv clean")


if __name__ == "__main__":
    main()
