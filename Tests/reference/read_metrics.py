"""Scrapes a Prometheus endpoint and parses it with the reference parser (prometheus_client's
text_string_to_metric_families); prints every sample as JSON {"name{k=v,...}": value} and the
metric types as {"#type name": type}. Exits non-zero when the text does not parse.

usage: read_metrics.py URL [BEARER_TOKEN]
"""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    req = urllib.request.Request(sys.argv[1])
    if len(sys.argv) > 2:
        req.add_header("Authorization", "Bearer " + sys.argv[2])
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read().decode("utf-8")
    out = {}
    for family in text_string_to_metric_families(text):
        out["#type " + family.name] = family.type
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
