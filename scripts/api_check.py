#!/usr/bin/env python3
"""Checks the library's public surface as `cargo doc` shows it.

* No item of target/doc/tinyprom/all.html (cargo doc's list of public items) is a
  binary or render internal: no path segment is on DENIED.
* Each public type (struct, enum, trait, type alias) has a runnable example in its own
  doc comment (a doc test that is not `ignore`, `no_run` or `compile_fail`, per
  `cargo test --doc -- --list` and the fence at the line it names), and the example
  comes before any heading of that doc (the doc starts with it, after its summary).
* README's "Public API" section names every public item (by its last path segment, in
  backticks), and each CamelCase name in backticks there is a public item, so the
  README cannot drift from cargo doc.

Everything with all features on, as docs.rs documents the crate (Cargo.toml's
package.metadata.docs.rs).

Usage: python3 scripts/api_check.py   (after cargo doc --no-deps --all-features;
make api-check)
Environment: CARGO (cargo), DOC_DIR (cargo doc's output, default
$CARGO_TARGET_DIR/doc or target/doc), CARGO_PROFILE_FLAG for the doc-test listing
(default --release, to reuse make unit-test's build).
"""

import html
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CARGO = os.environ.get("CARGO", "cargo")
DOC = Path(os.environ.get("DOC_DIR") or Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "doc") / "tinyprom"
DENIED = {"config", "supervisor", "signals", "health", "max_relays", "MIN_RELAYS", "values",
          "BucketRun", "BoundLabels", "HistogramView", "NativeBuckets"}
TYPE_KINDS = ("struct", "enum", "trait", "type")
NOT_RUN = {"ignore", "no_run", "compile_fail"}


def fail(problems):
    print("api-check: FAIL:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)


def public_items():
    """(kind, path, page) for each item of all.html."""
    text = (DOC / "all.html").read_text()
    items = []
    for page, name in re.findall(r'<a href="([^"]+)">([^<]+)</a>', text):
        m = re.search(r"(?:^|/)(struct|enum|trait|type|fn|constant|macro|union|static)\.[^/]+\.html$", page)
        if m:
            items.append((m[1], html.unescape(name), DOC / page))
    if not items:
        fail([f"no items found in {DOC / 'all.html'}"])
    return items


def runnable_type_examples():
    """Names of types whose own doc comment has a doc test that runs."""
    flag = os.environ.get("CARGO_PROFILE_FLAG", "--release")
    args = [CARGO, "test", "--quiet", "--doc", "--all-features", *([flag] if flag else []), "--", "--list"]
    listing = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    if listing.returncode != 0:
        fail([f"{' '.join(args)} failed:\n{listing.stderr}"])
    names = set()
    for line in listing.stdout.splitlines():
        m = re.match(r"(\S+) - ((?:[a-z_][a-z0-9_]*::)*)([A-Z]\w*) \(line (\d+)\)", line)
        if not m:
            continue  # a module's or a method's example
        fence = (REPO / m[1]).read_text().splitlines()[int(m[4]) - 1]
        attrs = set(re.split(r"[\s,]+", fence.split("```", 1)[1].strip()))
        if not attrs & NOT_RUN:
            names.add(m[3])
    return names


def example_first(page):
    """Whether the page's own doc has an example before any heading."""
    text = page.read_text()
    m = re.search(r'<details class="toggle top-doc"[^>]*>(.*?)</details>', text, re.S)
    if not m:
        return False
    doc = m[1]
    example = doc.find('<div class="example-wrap')
    heading = re.search(r"<h[1-6]", doc)
    return example >= 0 and (heading is None or example < heading.start())


def readme_api():
    """The identifiers in backticks in README's Public API section (tiny_http's own
    paths, which the crate re-exports, left out)."""
    text = (REPO / "README.md").read_text()
    m = re.search(r"^#+ Public API\n(.*?)(?=^#{1,4} )", text, re.S | re.M)
    if not m:
        fail(["README.md has no 'Public API' section"])
    snippets = [s for s in re.findall(r"`([^`]+)`", m[1]) if "tiny_http::" not in s]
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", " ".join(snippets)))


def variants(items):
    """The variant names of the public enums (README may name them too)."""
    names = set()
    for kind, _, page in items:
        if kind == "enum":
            names.update(re.findall(r'id="variant\.(\w+)"', page.read_text()))
    return names


def main():
    items = public_items()
    problems = []
    for kind, path, _ in items:
        denied = DENIED.intersection(path.split("::"))
        if denied:
            problems.append(f"{kind} {path} is public (denied: {', '.join(sorted(denied))})")

    runnable = runnable_type_examples()
    for kind, path, page in items:
        if kind not in TYPE_KINDS:
            continue
        name = path.split("::")[-1]
        if name not in runnable:
            problems.append(f"{kind} {path}: no runnable example in its doc comment")
        elif not example_first(page):
            problems.append(f"{kind} {path}: its doc does not start with its example")

    in_readme = readme_api()
    names = {path.split("::")[-1] for _, path, _ in items}
    for kind, path, _ in items:
        if path.split("::")[-1] not in in_readme:
            problems.append(f"{kind} {path} is public but not in README's Public API section")
    # A CamelCase name there must be a public item or variant; the hidden ones may be
    # named as such.
    known = names | variants(items) | DENIED
    for word in sorted(in_readme):
        if re.fullmatch(r"[A-Z][a-z0-9]+\w*", word) and word not in known:
            problems.append(f"README's Public API names `{word}`, which cargo doc does not list")
    if problems:
        fail(problems)
    types = sum(1 for kind, _, _ in items if kind in TYPE_KINDS)
    print(f"api-check: {len(items)} public items, none denied; {types} types, each starting "
          "with a runnable example; README's Public API names them all")


if __name__ == "__main__":
    main()
