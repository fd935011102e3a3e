#!/usr/bin/env python3
"""Instructions per request under callgrind: a figure that holds on a loaded machine.

CPU seconds move with whatever else the machine runs; instruction counts do not. Each scenario
is run twice under `valgrind --tool=callgrind` for two durations, and the figure is the
difference in instructions over the difference in requests, so start-up (TLS roots, scenario
compilation, writing results) cancels out and what remains is the cost of one more request.
Only user-space instructions are counted: the kernel's share (system calls, wake-ups) is not.

    python3 bench/instructions.py --peakload target/release/peakload [--baseline OLD] [--keep DIR]

Needs valgrind and nginx (apt-get install valgrind nginx-light). Traffic goes to 127.0.0.1
only; every run is bounded. With --keep, the callgrind.out files stay there for
callgrind_annotate.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the same nginx, scenarios and journey as bench.py)

CASES = {
    "closed GET": lambda s: bench.scenario(f'vus = 8\nduration = "{s}s"', bench.GET_STEP),
    "closed 4-step journey": lambda s: bench.scenario(f'vus = 8\nduration = "{s}s"', bench.JOURNEY_4),
    "open 300/s GET": lambda s: bench.scenario(f'rps = 300\nduration = "{s}s"\nmax_vus = 16', bench.GET_STEP),
}


def measure(peakload, text, tmp, name, keep):
    path = os.path.join(tmp, f"{name}.toml")
    with open(path, "w") as f:
        f.write(text)
    out_dir = os.path.join(tmp, f"out-{name}")
    cg = os.path.join(keep or tmp, f"callgrind.out.{name}")
    p = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}",
                        peakload, "run", path, "--out", out_dir, "--quiet", "--threads", "1"],
                       capture_output=True, text=True)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if not m:
        sys.exit(f"callgrind gave no total for {name}: {p.stderr[-1500:]}")
    r = json.load(open(os.path.join(out_dir, "results.json")))
    return int(m.group(1)), r["summary"]["requests"], r["summary"]["errors"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peakload", required=True)
    ap.add_argument("--baseline", help="a second binary (e.g. main's), measured the same way")
    ap.add_argument("--short", type=int, default=2, help="seconds of the short run")
    ap.add_argument("--long", type=int, default=6, help="seconds of the long run")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated, of: " + ", ".join(CASES))
    ap.add_argument("--keep", help="keep the callgrind.out files in this directory")
    args = ap.parse_args()
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="peakload-instr-")
    nginx = bench.start_nginx(tmp)
    builds = [("peakload", args.peakload)] + ([("baseline", args.baseline)] if args.baseline else [])
    rows = []
    try:
        for case in args.cases.split(","):
            for name, binary in builds:
                slug = f"{name}-{case.replace(' ', '-').replace('/', '')}"
                i1, n1, e1 = measure(binary, CASES[case](args.short), tmp, slug + "-short", args.keep)
                i2, n2, e2 = measure(binary, CASES[case](args.long), tmp, slug + "-long", args.keep)
                per = (i2 - i1) / (n2 - n1) if n2 > n1 else float("nan")
                rows.append((case, name, n1, n2, e1 + e2, per))
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)
    print(f"\n{'case':24} {'binary':9} {'requests':>17} {'errors':>7} {'instructions/request':>21}")
    for case, name, n1, n2, errors, per in rows:
        print(f"{case:24} {name:9} {f'{n1} / {n2}':>17} {errors:>7} {per:>21,.0f}")
    if args.baseline:
        print("\nchange against the baseline:")
        by = {(c, n): per for c, n, _, _, _, per in rows}
        for case in args.cases.split(","):
            new, old = by[(case, "peakload")], by[(case, "baseline")]
            print(f"  {case:24} {(new - old) / old * 100:+6.1f} %")


if __name__ == "__main__":
    main()
