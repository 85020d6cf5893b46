#!/usr/bin/env python3
"""Checks that the crate is ready to publish: `cargo publish --dry-run` passes without a
warning (it packages the crate, then builds the packaged copy on its own), and the
package holds what a user needs and nothing else.

* the package lists no build output, deployment, container, dashboard or script
  files, and has README.md, CHANGELOG.md, both license files and Cargo.lock;
* it stays small: at most MAX_COMPRESSED_KIB compressed;
* `cargo publish --dry-run` prints no warning but the one every dry run prints.

The dry run refuses a working tree with uncommitted changes to packaged files. CI
checks a fresh clone, so it runs strictly there (CI=true) and wherever the tree is
clean; on a developer's tree with uncommitted changes it adds --allow-dirty and says
so, since a check that fails for work in progress would only be skipped.

Usage: python3 scripts/publish_check.py   (CARGO selects cargo; make publish-check)
"""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CARGO = os.environ.get("CARGO", "cargo")
MAX_COMPRESSED_KIB = 512
REQUIRED = {"Cargo.toml", "Cargo.lock", "README.md", "CHANGELOG.md", "LICENSE-MIT", "LICENSE-APACHE", "src/lib.rs"}
FORBIDDEN = re.compile(
    r"^(target|dist|deploy|scripts|dashboards|grafana|rules|docs|\.ci|\.github)/"
    r"|(^|/)(Dockerfile[^/]*|docker-compose[^/]*|[^/]*\.ya?ml|Makefile)$"
    r"|__pycache__|\.pyc$"
)
# Printed by every dry run, whatever the package.
DRY_RUN_NOTE = "warning: aborting upload due to dry run"


def fail(msg):
    print(f"publish-check: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    listing = subprocess.run([CARGO, "package", "--list", "--allow-dirty"], cwd=REPO,
                             capture_output=True, text=True)
    if listing.returncode != 0:
        fail(f"cargo package --list failed:\n{listing.stderr}")
    files = set(listing.stdout.split())
    bad = sorted(f for f in files if FORBIDDEN.search(f))
    if bad:
        fail(f"the package would ship files it should not: {', '.join(bad)}")
    missing = sorted(REQUIRED - files)
    if missing:
        fail(f"the package lacks {', '.join(missing)}")

    args = [CARGO, "publish", "--dry-run"]
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True)
    if os.environ.get("CI") != "true" and (dirty.returncode != 0 or dirty.stdout.strip()):
        print("publish-check: uncommitted changes here: dry run with --allow-dirty "
              "(CI checks its clean checkout without it)")
        args.append("--allow-dirty")
    run = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    out = run.stdout + run.stderr
    if run.returncode != 0:
        fail(f"{' '.join(args)} failed:\n{out}")
    warnings = [line for line in out.splitlines()
                if line.lstrip().startswith("warning") and line.strip() != DRY_RUN_NOTE]
    if warnings:
        fail("the dry run warns:\n" + "\n".join(warnings))
    m = re.search(r"Packaged (\d+) files?, ([\d.]+)(KiB|MiB|B) \(([\d.]+)(KiB|MiB|B) compressed\)", out)
    if not m:
        fail(f"no 'Packaged ...' line in the dry run's output:\n{out}")
    scale = {"B": 1 / 1024, "KiB": 1, "MiB": 1024}
    compressed = float(m[4]) * scale[m[5]]
    if compressed > MAX_COMPRESSED_KIB:
        fail(f"the package is {compressed:.0f} KiB compressed, over {MAX_COMPRESSED_KIB} KiB")
    print(f"publish-check: dry run clean; {m[1]} files, {m[2]} {m[3]} ({m[4]} {m[5]} compressed), "
          "and the packaged crate builds on its own")


if __name__ == "__main__":
    main()
