"""What the ops/bench.d renderers share: reading JSON-lines rows, a median, and an evaluation's ratio."""
import json


def read_rows(path):
    """The JSON objects of a JSON-lines file, blank lines skipped."""
    return [json.loads(line) for line in open(path) if line.strip()]


def median(values):
    """The median (the mean of the middle two for an even count)."""
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def ratio(row):
    """A recipe row's perplexity over the dense model's, from its manifest's evaluation."""
    e = row["evaluation"]
    return e["perplexity"] / e["original_perplexity"]
