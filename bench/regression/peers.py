#!/usr/bin/env python3
"""Runs one peer change-point detector over series.json and prints its change points.

    python peers.py otava     series.json > otava.json      # in a venv with apache-otava
    python peers.py edivisive series.json > edivisive.json  # in a venv with signal-processing-algorithms

Each peer runs at its library defaults and at a grid of stricter and looser thresholds, so
`compare.py` can set every method to the same false-alarm rate. Output:
{"method": ..., "settings": [{"name", "param", "default"}],
 "change_points": {setting name: [[indices] per series]}, "seconds": {setting name: s}}.
A change point index is the first run of the new level, as in both libraries.
"""

import json
import sys
import time

# Library defaults: Otava's AnalysisOptions (window 50, max_pvalue 0.001, min_magnitude 0)
# and e_divisive(pvalue=0.05, permutations=100).
OTAVA_P = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 5e-2, 0.1, 0.2]
EDIV_P = [0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1]


def run_otava(series):
    from otava.analysis import compute_change_points

    settings, cps, secs = [], {}, {}
    for p in OTAVA_P:
        name = f"max_pvalue={p:g}"
        settings.append({"name": name, "param": p, "default": p == 1e-3})
        t = time.perf_counter()
        # A list, not an ndarray: Otava's detector only slices its window out of a list.
        cps[name] = [
            sorted(int(c.index) for c in compute_change_points(list(s["values"]), window_len=50, max_pvalue=p, min_magnitude=0.0)[0])
            for s in series
        ]
        secs[name] = time.perf_counter() - t
    return settings, cps, secs


def run_edivisive(series):
    from signal_processing_algorithms.determinism import deterministic_numpy_random
    from signal_processing_algorithms.energy_statistics.energy_statistics import e_divisive

    def run(s, p, perms):
        # The permutation test draws from numpy's global generator; seed it per series so a
        # rerun gives the same change points.
        with deterministic_numpy_random(1000 + s["id"]):
            return sorted(int(i) for i in e_divisive(s["values"], pvalue=p, permutations=perms))

    settings, cps, secs = [], {}, {}
    t = time.perf_counter()
    settings.append({"name": "pvalue=0.05 permutations=100", "param": 0.05, "default": True})
    cps["pvalue=0.05 permutations=100"] = [run(s, 0.05, 100) for s in series]
    secs["pvalue=0.05 permutations=100"] = time.perf_counter() - t
    # With 100 permutations no p-value below 1/101 can be resolved; the grid uses 1000.
    for p in EDIV_P:
        name = f"pvalue={p:g} permutations=1000"
        settings.append({"name": name, "param": p, "default": False})
        t = time.perf_counter()
        cps[name] = [run(s, p, 1000) for s in series]
        secs[name] = time.perf_counter() - t
    return settings, cps, secs


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("otava", "edivisive"):
        sys.exit("usage: peers.py otava|edivisive series.json")
    method, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        series = json.load(f)["series"]
    settings, cps, secs = (run_otava if method == "otava" else run_edivisive)(series)
    json.dump({"method": method, "settings": settings, "change_points": cps, "seconds": secs}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
