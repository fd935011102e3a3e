#!/usr/bin/env python3
"""Seeded synthetic run histories for calibrating regression gates.

    python3 gen.py [--seed N] [--models tuned|unseen] [--shifted 200] [--flat 200] > series.json

Each series is one metric's value per run, oldest first; the last value is the run being
judged. A shifted series has one level shift in the metric's worse direction (latency up,
throughput down) of 5-30 % starting at run `shift_at` (3 <= shift_at <= n - 1, so the current
run alone may be the first shifted one); a flat series has none. Lengths are 20-60 runs.

Pure Python with its own generator (splitmix64 + Box-Muller), so the same seed gives the same
series on any machine and Python version, without numpy.

Noise models (`--models tuned`, the set the detector's defaults were chosen on):
  p50_normal   latency p50 or mean: Gaussian, CV 1-4 %
  p95_lognorm  latency p95: lognormal, sigma 0.03-0.10
  p99_spiky    latency p99: lognormal, sigma 0.05-0.15, and 3-10 % of runs spike x1.3-2.5
  rps_normal   throughput (lower is worse): Gaussian, CV 1-3 %
`--models unseen` (never used to choose a default):
  p95_bimodal  two kinds of CI runner, 6-12 % apart, picked at random per run, + lognormal 0.02
  p50_ar1      autocorrelated: AR(1) on the log scale, phi 0.5-0.8, sigma 0.02-0.06
  p99_student  Student-t (3 d.f.) noise on the log scale, scale 0.04-0.10
  p50_drift    as p50_normal, but the shift is a linear ramp over 5-15 runs (ending at the
               full shift), not a step; shift_at is where the ramp starts
"""

import argparse
import json
import math
import sys

MASK = (1 << 64) - 1


class Rng:
    """splitmix64: tiny, fully specified, identical everywhere."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self, lo=0.0, hi=1.0):
        return lo + (hi - lo) * ((self.next_u64() >> 11) / float(1 << 53))

    def int_between(self, lo, hi):
        """Inclusive of both ends."""
        return lo + int(self.uniform() * (hi - lo + 1))

    def normal(self):
        u1 = 1.0 - self.uniform()  # (0, 1]
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def student_t3(self):
        chi2 = sum(self.normal() ** 2 for _ in range(3))
        return self.normal() / math.sqrt(chi2 / 3.0)


TUNED = ["p50_normal", "p95_lognorm", "p99_spiky", "rps_normal"]
UNSEEN = ["p95_bimodal", "p50_ar1", "p99_student", "p50_drift"]

METRIC = {
    "p50_normal": "p50",
    "p95_lognorm": "p95",
    "p99_spiky": "p99",
    "rps_normal": "rps",
    "p95_bimodal": "p95",
    "p50_ar1": "p50",
    "p99_student": "p99",
    "p50_drift": "p50",
}


def noise_factors(rng, model, n):
    """Multiplicative noise per run (1.0 = no noise)."""
    if model in ("p50_normal", "p50_drift"):
        cv = rng.uniform(0.01, 0.04)
        return [max(0.05, 1.0 + cv * rng.normal()) for _ in range(n)]
    if model == "rps_normal":
        cv = rng.uniform(0.01, 0.03)
        return [max(0.05, 1.0 + cv * rng.normal()) for _ in range(n)]
    if model == "p95_lognorm":
        s = rng.uniform(0.03, 0.10)
        return [math.exp(s * rng.normal()) for _ in range(n)]
    if model == "p99_spiky":
        s = rng.uniform(0.05, 0.15)
        rate = rng.uniform(0.03, 0.10)
        out = []
        for _ in range(n):
            f = math.exp(s * rng.normal())
            if rng.uniform() < rate:
                f *= rng.uniform(1.3, 2.5)
            out.append(f)
        return out
    if model == "p95_bimodal":
        gap = rng.uniform(0.06, 0.12)
        share = rng.uniform(0.3, 0.7)
        return [
            (1.0 + gap if rng.uniform() < share else 1.0) * math.exp(0.02 * rng.normal())
            for _ in range(n)
        ]
    if model == "p50_ar1":
        phi = rng.uniform(0.5, 0.8)
        s = rng.uniform(0.02, 0.06)
        # Stationary start; innovations scaled so the marginal sd is s.
        e = s * rng.normal()
        out = []
        for _ in range(n):
            out.append(math.exp(e))
            e = phi * e + s * math.sqrt(1 - phi * phi) * rng.normal()
        return out
    if model == "p99_student":
        s = rng.uniform(0.04, 0.10)
        return [math.exp(min(3.0, s * rng.student_t3())) for _ in range(n)]
    raise ValueError(model)


def series(seed, index, model, shifted):
    rng = Rng(seed * 1_000_003 + index)
    n = rng.int_between(20, 60)
    metric = METRIC[model]
    lower_is_worse = metric == "rps"
    level = rng.uniform(200.0, 2000.0) if lower_is_worse else rng.uniform(20.0, 500.0)
    noise = noise_factors(rng, model, n)
    shift = rng.uniform(0.05, 0.30) if shifted else 0.0
    shift_at = rng.int_between(3, n - 1) if shifted else None
    ramp = rng.int_between(5, 15) if model == "p50_drift" else 1
    values = []
    for i in range(n):
        frac = 0.0
        if shifted and i >= shift_at:
            frac = min(1.0, (i - shift_at + 1) / ramp)
        factor = (1.0 - shift * frac) if lower_is_worse else (1.0 + shift * frac)
        values.append(round(level * factor * noise[i], 4))
    return {
        "id": index,
        "model": model,
        "metric": metric,
        "direction": "lower_is_worse" if lower_is_worse else "higher_is_worse",
        "shift_at": shift_at,
        "shift": round(shift, 4),
        "values": values,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--models", choices=["tuned", "unseen"], default="tuned")
    ap.add_argument("--shifted", type=int, default=200)
    ap.add_argument("--flat", type=int, default=200)
    a = ap.parse_args()
    models = TUNED if a.models == "tuned" else UNSEEN
    out = []
    for i in range(a.shifted + a.flat):
        shifted = i < a.shifted
        out.append(series(a.seed, i, models[i % len(models)], shifted))
    json.dump({"seed": a.seed, "models": a.models, "series": out}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
