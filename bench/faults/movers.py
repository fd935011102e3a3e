"""Which of the stack's signals moved during a planted fault: the ground truth a diagnosis is
judged against, read from a kept run (``faults.py --out DIR``).

    python3 movers.py DIR/cpu-1 [DIR/io-2 ...] [--top 8]

For every scraped series: its median over [5 s, fault start) against its median over the fault
window (from the run's ``faults.json`` entry), in robust sigmas of the before part (1.4826 ×
MAD, floored at 5 % of the larger of the two medians). The source is named by role (``api``, ``worker``, ``all``)
from the order of ``scrape`` in the run's scenario.
"""

import argparse
import json
import os
import re
import statistics


def robust(xs):
    m = statistics.median(xs)
    mad = statistics.median([abs(x - m) for x in xs])
    return m, max(1.4826 * mad, 0.05 * abs(m), 1e-9)


def movers(run_dir, window, top):
    with open(os.path.join(run_dir, "out", "results.json")) as f:
        res = json.load(f)
    with open(os.path.join(run_dir, "scenario.toml")) as f:
        scrape = re.search(r"scrape = \[(.*)\]", f.read()).group(1)
    urls = re.findall(r'"([^"]+)"', scrape)
    roles = {f"scrape:{u}": r for u, r in zip(urls, ["api", "worker"] if len(urls) > 1 else ["all"])}
    start, end = window
    out = []
    for s in (res.get("infra") or {}).get("series", []):
        before = [v for t, v in s["points"] if 5 <= t < start]
        during = [v for t, v in s["points"] if start + 1 <= t <= end]
        if len(before) < 5 or len(during) < 3:
            continue
        b, sigma = robust(before)
        d = statistics.median(during)
        # a series flat at 0 before would otherwise move by "a billion sigmas"
        sigma = max(sigma, 0.05 * max(abs(b), abs(d)))
        dims = ",".join(f'{k}="{v}"' for k, v in sorted(s.get("dimensions", {}).items()))
        name = f"{s['name']}{{{dims}}}" if dims else s["name"]
        out.append((abs(d - b) / sigma, roles.get(s["source"], s["source"]), name, b, d, len(during)))
    out.sort(reverse=True)
    return out[:top]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+")
    p.add_argument("--top", type=int, default=8)
    a = p.parse_args()
    for run_dir in a.runs:
        run_dir = run_dir.rstrip("/")
        kind, rep = os.path.basename(run_dir).rsplit("-", 1)
        with open(os.path.join(os.path.dirname(run_dir), "faults.json")) as f:
            row = next(r for r in json.load(f) if r["kind"] == kind and str(r["rep"]) == rep)
        print(f"{kind} #{rep}: fault window {row['fault_window_s']} s")
        for z, role, name, b, d, n in movers(run_dir, row["fault_window_s"], a.top):
            print(f"  {z:8.1f}σ  [{role}] {name}: {b:.4g} → {d:.4g}")


if __name__ == "__main__":
    main()
