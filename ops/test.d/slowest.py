#!/usr/bin/env python3
"""The slowest tests of a `swift test --event-stream-output-path` run (Swift Testing's JSON event
stream, version 0): each test function's wall time from testStarted to testEnded. Tests run in
parallel, so these are the tests that hold the run up, not CPU time.

  slowest.py EVENTS.jsonl LABEL [N]
"""
import json
import sys


def main():
    path, label = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    names, started, took = {}, {}, {}
    with open(path) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            p = e.get("payload", {})
            if e.get("kind") == "test" and p.get("kind") == "function":
                names[p["id"]] = p["id"].split("/")[0].split(".")[-1] + "." + p["name"]
            elif e.get("kind") == "event" and p.get("testID") in names:
                t = p["instant"]["absolute"]
                if p["kind"] == "testStarted":
                    started[p["testID"]] = t
                elif p["kind"] == "testEnded" and p["testID"] in started:
                    took[p["testID"]] = t - started[p["testID"]]
    print(f"== slowest tests ({label}, wall time while running in parallel)")
    for tid, s in sorted(took.items(), key=lambda kv: -kv[1])[:n]:
        print(f"  {s:7.1f} s  {names[tid]}")


if __name__ == "__main__":
    main()
