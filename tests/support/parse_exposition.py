#!/usr/bin/env python3
"""Parse an exposition from stdin with Python's prometheus_client and print its samples.

Usage: parse_exposition.py text|openmetrics < scrape
Prints one JSON object: {"families": [{"name", "type", "samples": [{"name", "labels", "value"}]}]}.
Exits non-zero (with the parser's message on stderr) when the input does not parse.
The OpenMetrics parser is the strict one from prometheus_client.openmetrics.parser.
"""
import json
import math
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text


def value(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return v


def main():
    fmt = sys.argv[1]
    data = sys.stdin.buffer.read().decode("utf-8")
    parse = parse_openmetrics if fmt == "openmetrics" else parse_text
    families = []
    for family in parse(data):
        families.append({
            "name": family.name,
            "type": family.type,
            "unit": getattr(family, "unit", ""),
            "documentation": family.documentation,
            "samples": [
                {"name": s.name, "labels": s.labels, "value": value(s.value)}
                for s in family.samples
            ],
        })
    json.dump({"families": families}, sys.stdout)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the message is what the test reports
        print(f"parse error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
