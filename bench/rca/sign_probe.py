"""How much of BARO's lead on the simulators comes from counting rises only.

For each simulator dataset, ranks the candidates by their largest robust z-score after a split
(median and 1.4826 × MAD of the part before it), once signed (rises only, as BARO's ``max``)
and once absolute (a fall counts as much as a rise, as peakload counts it), with the split at
the true fault time and at the first quarter of the series (no fault time). Prints the share of
cases whose top candidate is a root cause. Run with the rca venv:

    ~/.cache/peakload/rca-venv/bin/python bench/rca/sign_probe.py [--cases N] [--seed N]
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rca_bench as rb  # noqa: E402


def robust_z(x, base):
    med = np.median(base)
    sigma = 1.4826 * np.median(np.abs(base - med))
    return (x - med) / max(sigma, 1e-9)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=100)
    p.add_argument("--seed", type=int, default=20241129)
    a = p.parse_args()
    n, seed = a.cases, a.seed
    makers = {
        "pyrca-20": lambda: rb.pyrca_cases(n, seed),
        "circa-10": lambda: rb.circa_cases(n, seed, 10, 20),
        "circa-50": lambda: rb.circa_cases(n, seed + 1, 50, 100),
        "circa-50-sustained": lambda: rb.circa_cases(
            n, seed + 2, 50, 100, length_normal=600, fault_duration=60, length_abnormal=60
        ),
    }
    print("| dataset | split | signed (rises only) | absolute |")
    print("|---|---|---|---|")
    for name, make in makers.items():
        cases = make()
        for split_name in ("fault time", "first quarter"):
            hits = {"signed": 0, "abs": 0}
            for c in cases:
                split = c.fault_at if split_name == "fault time" else len(c.frame) // 4
                cols = [k for k in c.frame.columns if k != "time"]
                z = {k: robust_z(c.frame[k].to_numpy()[split:], c.frame[k].to_numpy()[:split]) for k in cols}
                hits["signed"] += max(cols, key=lambda k: z[k].max()) in c.causes
                hits["abs"] += max(cols, key=lambda k: np.abs(z[k]).max()) in c.causes
            print(f"| {name} | {split_name} | {hits['signed'] / len(cases):.2f} | {hits['abs'] / len(cases):.2f} |")


if __name__ == "__main__":
    main()
