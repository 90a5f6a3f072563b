"""Write a manifest of N jobs of one model and recipe: make_manifest.py OUT MODEL RECIPE N."""
import sys

out, model, recipe, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(out, "w") as f:
    for i in range(n):
        f.write(f"- {{model: {model}, recipe: {recipe}, key: bench-{i}}}\n")
