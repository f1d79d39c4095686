#!/usr/bin/python3
"""Parses a Prometheus text exposition with the Prometheus project's own Python parser
(Debian's python3-prometheus-client) and prints what it read as JSON:
{"families": {name: type}, "samples": [{"name", "labels", "value"}]}. Exits 1 with the
parser's message when the text does not parse."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1], encoding="utf-8").read()
out = {"families": {}, "samples": []}
try:
    for family in text_string_to_metric_families(text):
        out["families"][family.name] = family.type
        for s in family.samples:
            v = s.value
            out["samples"].append({"name": s.name, "labels": s.labels,
                                   "value": None if (isinstance(v, float) and math.isnan(v)) else v})
except Exception as e:  # the parser raises ValueError (and others) on malformed text
    print("parse error: %s" % e, file=sys.stderr)
    sys.exit(1)
json.dump(out, sys.stdout)
