#!/usr/bin/env python3
"""Re-diagnoses kept fault runs with two peakload builds, so a change to the diagnosis is judged
on identical data (the runs' own findings are stripped first: an older build may not know a
newer finding kind).

    python3 bench/faults/rediagnose.py OUT_DIR --before OLD/peakload --after NEW/peakload

OUT_DIR is a `faults.py --out` directory; prints, per run and build, the verdict, when the users'
degradation was dated and the first two findings (generator_limited left out).
"""
import argparse
import glob
import json
import os
import subprocess
import tempfile


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out_dir")
    p.add_argument("--before", required=True)
    p.add_argument("--after", required=True)
    a = p.parse_args()
    for path in sorted(glob.glob(os.path.join(a.out_dir, "*", "out", "results.json"))):
        run = path.split(os.sep)[-3]
        with open(path) as f:
            res = json.load(f)
        res["findings"] = []
        res.pop("capacity", None)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as tmp:
            json.dump(res, tmp)
        try:
            for label, binary in (("before", a.before), ("after", a.after)):
                out = subprocess.run([binary, "diagnose", tmp.name, "--json"],
                                     capture_output=True, text=True)
                try:
                    d = json.loads(out.stdout)
                except ValueError:
                    print(f"{run:14} {label:6} error: {out.stderr.strip()[:300]}")
                    continue
                found = [f for f in d["findings"] if f["kind"] != "generator_limited"]
                onset = (d.get("capacity") or {}).get("degraded_at_s")
                said = "; ".join(f"{f['kind']} {f['signal']} ({f['score']})" for f in found[:2]) or "no finding"
                print(f"{run:14} {label:6} healthy={d['healthy']} degraded_at={onset} {said}")
                for m in d.get("moved", []):
                    print(f"{'':21} moved: {m['kind']} {m['signal']}")
                if d.get("unknown"):
                    print(f"{'':21} not known: {len(d['unknown'])} lines, first: {d['unknown'][0][:100]}")
        finally:
            os.unlink(tmp.name)


if __name__ == "__main__":
    main()
