#!/usr/bin/env python3
"""Check structured pruning, the cubic schedule and low-rank factors independently with numpy.

structured: every selected tensor (viewed as [numel/last, last]) has exactly round(s*R) zero
  rows (or columns), and they are the ones numpy ranks lowest by L1/L2 norm (float64, ties by
  index); every other value is bit-identical to the input.
magnitude: exactly round(s*numel) zeros per tensor, the smallest |w| (the schedule's last step).
lowrank: the output holds T.lowrank_u [R, r] and T.lowrank_v [r, C] instead of T (factors), or T
  itself (dense); r is numpy's rank for the energy target (or the fixed rank), and u@v is within
  1e-4 (relative, Frobenius; plus the unit roundoff of F16/BF16 outputs) of numpy's best rank-r approximation.
Prints JSON; exit 1 on failure.
Usage: check_structured_lowrank.py INPUT OUTPUT MODE [--sparsity S] [--dim rows|columns] [--norm l1|l2]
       [--rank R | --energy E] [--form dense|factors] --targets P... [--ignore P...]"""
import argparse
import fnmatch
import json
import sys

import ml_dtypes  # noqa: F401
import numpy as np
from safetensors import safe_open


def selected(keys, a):
    return [k for k in keys if any(fnmatch.fnmatchcase(k, p) for p in a.targets)
            and not any(fnmatch.fnmatchcase(k, p) for p in a.ignore)]


def matrix(x):
    return x.astype(np.float32).reshape(-1, x.shape[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("mode", choices=["structured", "magnitude", "lowrank"])
    ap.add_argument("--sparsity", type=float)
    ap.add_argument("--dim", default="rows")
    ap.add_argument("--norm", default="l2")
    ap.add_argument("--rank", type=int)
    ap.add_argument("--energy", type=float)
    ap.add_argument("--form", default="dense", choices=["dense", "factors"])
    ap.add_argument("--targets", nargs="+", required=True)
    ap.add_argument("--ignore", nargs="*", default=[])
    a = ap.parse_args()
    src, dst = safe_open(a.input, framework="np"), safe_open(a.output, framework="np")
    names = selected(src.keys(), a)
    out_keys = set(dst.keys())
    errors, report = [], {}
    for n in names:
        w = matrix(src.get_tensor(n))
        if a.mode == "structured":
            y = matrix(dst.get_tensor(n))
            m = w if a.dim == "rows" else w.T
            ym = y if a.dim == "rows" else y.T
            w64 = m.astype(np.float64)
            norms = np.abs(w64).sum(axis=1) if a.norm == "l1" else np.sqrt((w64 * w64).sum(axis=1))
            k = int(np.floor(a.sparsity * m.shape[0] + 0.5))
            want = set(np.argsort(norms, kind="stable")[:k].tolist())
            was_zero = {i for i in range(m.shape[0]) if not m[i].any()}
            got = {i for i in range(m.shape[0]) if not ym[i].any()}
            if not want <= got or got - want - was_zero:
                errors.append(f"{n}: pruned {sorted(got)[:8]}..., numpy wants {sorted(want)[:8]}...")
            keep = [i for i in range(m.shape[0]) if i not in want]
            if not np.array_equal(ym[keep].view(np.uint32), m[keep].view(np.uint32)):
                errors.append(f"{n}: kept {a.dim} changed")
            report[n] = k
        elif a.mode == "magnitude":
            y = matrix(dst.get_tensor(n)).ravel()
            x = w.ravel()
            k = int(np.floor(a.sparsity * x.size + 0.5))
            if int((y == 0).sum()) != max(k, int((x == 0).sum())):
                errors.append(f"{n}: {int((y == 0).sum())} zeros, want {k}")
            kept = y != 0
            if kept.any() and (~kept).any() and np.abs(x[~kept]).max() > np.abs(x[kept]).min():
                errors.append(f"{n}: a pruned |w| exceeds a kept one")
            if not np.array_equal(y[kept], x[kept]):
                errors.append(f"{n}: kept values changed")
            report[n] = int((y == 0).sum())
        else:
            u_name, v_name = n + ".lowrank_u", n + ".lowrank_v"
            s_full = np.linalg.svd(w.astype(np.float64), compute_uv=False)
            if a.rank is not None:
                want_r = min(a.rank, len(s_full))
            else:
                e = np.cumsum(s_full ** 2) / (s_full ** 2).sum()
                want_r = int(np.searchsorted(e, a.energy - 1e-12) + 1)
            if a.form == "factors":
                if n in out_keys or u_name not in out_keys or v_name not in out_keys:
                    errors.append(f"{n}: factors missing or original kept")
                    continue
                u, v = dst.get_tensor(u_name).astype(np.float32), dst.get_tensor(v_name).astype(np.float32)
                r = u.shape[1]
                if u.shape != (w.shape[0], r) or v.shape != (r, w.shape[1]):
                    errors.append(f"{n}: factor shapes {u.shape} {v.shape}")
                    continue
                approx = u.astype(np.float64) @ v.astype(np.float64)
            else:
                approx = matrix(dst.get_tensor(n)).astype(np.float64)
                r = want_r
            if abs(r - want_r) > 0:
                # float32 vs float64 singular values may move an energy boundary by one
                e = np.cumsum(s_full ** 2) / (s_full ** 2).sum()
                near = a.energy is not None and abs(e[min(r, want_r) - 1] - a.energy) < 1e-5
                if not near:
                    errors.append(f"{n}: rank {r}, numpy wants {want_r}")
            uu, ss, vv = np.linalg.svd(w.astype(np.float64), full_matrices=False)
            best = (uu[:, :r] * ss[:r]) @ vv[:r]
            rel = np.linalg.norm(approx - best) / max(np.linalg.norm(w), 1e-30)
            # Outputs keep the input's dtype: allow its rounding (unit roundoff) on top of 1e-4.
            dt = src.get_tensor(n).dtype
            tol = 1e-4 + {np.dtype(np.float16): 2.0 ** -11, np.dtype(ml_dtypes.bfloat16): 2.0 ** -8}.get(dt, 0.0)
            if rel > tol:
                errors.append(f"{n}: differs from numpy's rank-{r} approximation by {rel:.2e}")
            report[n] = {"rank": int(r), "rel_to_best": float(rel)}
    print(json.dumps({"ok": not errors, "checked": len(names), "errors": errors[:5], "report": report}, default=str)[:4000])
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
