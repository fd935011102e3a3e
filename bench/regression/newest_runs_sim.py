#!/usr/bin/env python3
"""How often the gate's newest-runs t test fires on flat Gaussian histories, per variant.

    python3 bench/regression/newest_runs_sim.py [--series 300000] [--seed 5] [--newest 1]

For baselines of 8, 12, 20 and 40 runs and `--newest` new runs, draws flat series and counts
how often each variant's p-value is at or below 1e-3, 3e-4 and 1e-4 (and every new run is
beyond every baseline run, as the gate requires), divided by the level: 1.0 is exact, above 1
fires too often. Variants (see `newest_runs_p` in src/gate/change.rs):
  plain     t prediction test against the whole baseline
  loo       against the baseline less its worst run (no cost): why a cost is needed
  loo x4    the same, p-value x LEAVE_ONE_OUT_COST (4)
  min       the smaller of plain and loo x4: what the gate uses (its minimum-effect margin
            only makes it fire less)
Pure Python (no numpy); about a minute per 100,000 series.
"""

import argparse
import math
import random


def betacf(a, b, x):
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def ibeta(a, b, x):
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lf = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(lf) * betacf(a, b, x) / a
    return 1 - math.exp(lf) * betacf(b, a, 1 - x) / b


def t_sf(t, df):
    tail = 0.5 * ibeta(df / 2, 0.5, df / (df + t * t))
    return tail if t > 0 else 1 - tail


def prediction_p(base, new):
    nb, m = len(base), len(new)
    mb = sum(base) / nb
    var = sum((v - mb) ** 2 for v in base) / (nb - 1)
    t = (sum(new) / m - mb) / math.sqrt(var * (1 / m + 1 / nb))
    return t_sf(t, nb - 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=300000)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--newest", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    levels = (1e-3, 3e-4, 1e-4)
    for nb in (8, 12, 20, 40):
        count = {}
        for _ in range(a.series):
            base = [rng.gauss(0, 1) for _ in range(nb)]
            new = [rng.gauss(0, 1) for _ in range(a.newest)]
            if min(new) <= max(base):
                continue
            plain = prediction_p(base, new)
            loo = prediction_p(sorted(base)[:-1], new)
            for name, p in (("plain", plain), ("loo", loo), ("loo x4", 4 * loo), ("min", min(plain, 4 * loo))):
                for lv in levels:
                    if p <= lv:
                        count[(name, lv)] = count.get((name, lv), 0) + 1
        cells = ", ".join(
            f"{name} {'/'.join(f'{count.get((name, lv), 0) / a.series / lv:.2f}' for lv in levels)}"
            for name in ("plain", "loo", "loo x4", "min")
        )
        print(f"baseline {nb:2} runs, {a.newest} newest: fired / level at 1e-3/3e-4/1e-4: {cells}", flush=True)


if __name__ == "__main__":
    main()
