#!/usr/bin/env python3
"""Tables for the regression-gate calibration: peakload vs Apache Otava vs E-Divisive means.

    python3 compare.py DIR                 # DIR holds series.json, peakload.json, otava.json, edivisive.json
    python3 compare.py DIR --tuned-on DIR0 # apply the thresholds chosen on DIR0 (no re-tuning)

The question every method answers here is the gate's: "is the newest run regressed against
the baseline?" (no shift was accepted, so the baseline is the whole history).
- peakload: its verdict is `regressed`.
- a peer (it reports change points anywhere in the series): the current run's segment (after
  its last change point) is worse than the first segment (before its first change point), by
  the mean. "+min effect": and by at least the metric's minimum effect (the same per metric
  as peakload's: 5 %, 10 % for p99). The peers' own question, "is there a change point
  anywhere?", is shown too.
A detection is a shifted series answered yes; a false alarm is a flat series answered yes.
"Right place": a reported change point (for peakload, where the compared runs begin) within
+-2 runs of the planted shift.
"""

import argparse
import json
import os
import sys

TARGET_FA = 0.01  # at most 1 false alarm in 100 flat series


def load(d, name):
    with open(os.path.join(d, name)) as f:
        return json.load(f)


def mean(v):
    return sum(v) / len(v)


def peer_answers(series, cps, min_rel, variant):
    """Per series: (yes, change points) under a question variant."""
    out = []
    for s, c, mr in zip(series, cps, min_rel):
        v = s["values"]
        if variant == "anywhere":
            out.append((len(c) > 0, c))
            continue
        if not c:
            out.append((False, c))
            continue
        first, last = mean(v[: c[0]]), mean(v[c[-1]:])
        rel = last / first - 1.0
        if s["direction"] == "lower_is_worse":
            rel = -rel
        need = mr if variant == "min_effect" else 0.0
        out.append((rel > 0 and rel >= need, c))
    return out


def peakload_answers(rows):
    return [(r["verdict"] == "regressed", [r["change_at"]]) for r in rows]


def score(series, answers):
    shifted = [(s, a) for s, a in zip(series, answers) if s["shift_at"] is not None]
    flat = [(s, a) for s, a in zip(series, answers) if s["shift_at"] is None]
    det = sum(a[0] for _, a in shifted)
    fa = sum(a[0] for _, a in flat)
    place = sum(1 for s, a in shifted if a[0] and any(abs(i - s["shift_at"]) <= 2 for i in a[1]))
    return {"det": det, "n_shift": len(shifted), "fa": fa, "n_flat": len(flat), "place": place}


def breakdown(series, answers, key):
    groups = {}
    for s, a in zip(series, answers):
        k = key(s)
        if k is None:
            continue
        g = groups.setdefault(k, [0, 0])
        g[0] += a[0]
        g[1] += 1
    return groups


def since_bucket(s):
    if s["shift_at"] is None:
        return None
    since = len(s["values"]) - s["shift_at"]
    return "1-3" if since <= 3 else "4-10" if since <= 10 else "11+"


def size_bucket(s):
    if s["shift_at"] is None:
        return None
    x = s["shift"]
    return "5-10 %" if x < 0.10 else "10-20 %" if x < 0.20 else "20-30 %"


def candidates(d, series, peakload):
    """Every (method, question, setting) -> answers."""
    min_rel = [r["min_relative"] for r in peakload["verdicts"]["defaults"]]
    out = {}
    for st in peakload["settings"]:
        out[("peakload", "regressed", st["name"])] = (st, peakload_answers(peakload["verdicts"][st["name"]]))
    for peer in ("otava", "edivisive"):
        p = load(d, f"{peer}.json")
        for st in p["settings"]:
            cps = p["change_points"][st["name"]]
            for variant in ("anywhere", "segment", "min_effect"):
                out[(peer, variant, st["name"])] = (st, peer_answers(series, cps, min_rel, variant))
    return out


QUESTION = {
    "regressed": "verdict regressed",
    "anywhere": "change point anywhere",
    "segment": "current segment worse",
    "min_effect": "current segment worse +min effect",
}
NAME = {"peakload": "peakload", "otava": "Otava 0.8.0", "edivisive": "E-Divisive (s-p-a 2.1.6)"}


def row(method, question, setting, sc, extra=None):
    more = f" {extra['fa']}/{extra['n_flat']} |" if extra is not None else ""
    return (
        f"| {NAME[method]} | {QUESTION[question]} | {setting} | {sc['det']}/{sc['n_shift']} "
        f"| {sc['fa']}/{sc['n_flat']} |{more} {sc['place']}/{sc['det']} |"
    )


class TuningSet:
    """Where thresholds are chosen: a set's series, plus optionally more flat series."""

    def __init__(self, d, flat_dir):
        self.series = load(d, "series.json")["series"]
        self.cands = candidates(d, self.series, load(d, "peakload.json"))
        self.flat = None
        if flat_dir:
            self.flat_series = load(flat_dir, "series.json")["series"]
            self.flat = candidates(flat_dir, self.flat_series, load(flat_dir, "peakload.json"))

    def false_alarms(self, key):
        fa = score(self.series, self.cands[key][1])["fa"]
        n = sum(1 for s in self.series if s["shift_at"] is None)
        if self.flat is not None:
            fa += score(self.flat_series, self.flat[key][1])["fa"]
            n += len(self.flat_series)
        return fa, n

    def pick(self, method, questions, max_fa):
        """The setting with the most detections at no more than max_fa false alarms."""
        best = None
        for key, (st, ans) in self.cands.items():
            m, q, name = key
            if m != method or q not in questions:
                continue
            fa, _ = self.false_alarms(key)
            if fa > max_fa:
                continue
            det = score(self.series, ans)["det"]
            rank = (det, -fa)
            if best is None or rank > best[0]:
                best = (rank, q, name)
        return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--tuned-on", help="choose thresholds on this directory's series instead")
    ap.add_argument("--flat", help="more flat series (of the tuning set's models) for false-alarm rates")
    a = ap.parse_args()
    meta = load(a.dir, "series.json")
    series = meta["series"]
    peakload = load(a.dir, "peakload.json")
    cands = candidates(a.dir, series, peakload)
    tuning = TuningSet(a.tuned_on or a.dir, a.flat)
    # The extra flat series are shown beside the set they belong to.
    extra = tuning.flat if not a.tuned_on else None

    def line(key):
        x = score(tuning.flat_series, extra[key][1]) if extra is not None else None
        return row(*key, score(series, cands[key][1]), x)

    print(f"### {meta['models']} noise models, seed {meta['seed']}\n")
    more_head = f" false alarms, {len(tuning.flat_series)} more flat |" if extra is not None else ""
    print(f"| method | question | setting | detections | false alarms |{more_head} at the right place (±2) |")
    print("|---|---|---|---|---|---|" + ("---|" if extra is not None else ""))
    blank = "| | | | | |" + (" |" if extra is not None else "")
    defaults = [
        ("peakload", "regressed", "defaults"),
        ("otava", "anywhere", "max_pvalue=0.001"),
        ("otava", "segment", "max_pvalue=0.001"),
        ("otava", "min_effect", "max_pvalue=0.001"),
        ("edivisive", "anywhere", "pvalue=0.05 permutations=100"),
        ("edivisive", "segment", "pvalue=0.05 permutations=100"),
        ("edivisive", "min_effect", "pvalue=0.05 permutations=100"),
    ]
    print("| **library defaults** " + blank)
    for k in defaults:
        print(line(k))

    pl_fa, n_fa = tuning.false_alarms(("peakload", "regressed", "defaults"))
    targets = [
        (f"≤ {int(TARGET_FA * 100)} % false alarms", int(TARGET_FA * n_fa)),
        ("peakload's default false-alarm rate", pl_fa),
    ]
    picked = {}
    for title, max_fa in targets:
        where = ", thresholds chosen on the tuned set" if a.tuned_on else ""
        print(f"| **best setting at {title}: ≤ {max_fa} in {n_fa} flat series{where}** " + blank)
        for method, qs in (
            ("peakload", ["regressed"]),
            ("otava", ["segment", "min_effect"]),
            ("edivisive", ["segment", "min_effect"]),
            ("otava", ["anywhere"]),
            ("edivisive", ["anywhere"]),
        ):
            b = tuning.pick(method, qs, max_fa)
            if b is None:
                empty = " |" * (4 if extra is not None else 3)
                print(f"| {NAME[method]} | {' / '.join(QUESTION[q] for q in qs)} | none reaches it |{empty}")
                continue
            _, q, name = b
            picked[(title, method, tuple(qs))] = (q, name)
            print(line((method, q, name)))
    print()

    # Where the detections are: by runs since the shift, by size, by noise model.
    chosen = [("peakload", "regressed", "defaults")]
    for (title, method, qs), (q, name) in picked.items():
        if title.startswith("≤") and qs != ("anywhere",):
            chosen.append((method, q, name))
    for label, key in (
        ("runs at the new level (including the current run)", since_bucket),
        ("shift size", size_bucket),
        ("noise model (shifted: detections; flat: false alarms)", lambda s: s["model"] + (" shifted" if s["shift_at"] is not None else " flat")),
    ):
        order = ["1-3", "4-10", "11+", "5-10 %", "10-20 %", "20-30 %"]
        groups = sorted(
            breakdown(series, cands[chosen[0]][1], key).keys(),
            key=lambda g: (order.index(g) if g in order else len(order), g),
        )
        print(f"By {label}:\n")
        print("| method, setting | " + " | ".join(groups) + " |")
        print("|---|" + "---|" * len(groups))
        for k in chosen:
            b = breakdown(series, cands[k][1], key)
            cells = [f"{b[g][0]}/{b[g][1]}" for g in groups]
            print(f"| {NAME[k[0]]}, {QUESTION[k[1]]}, {k[2]} | " + " | ".join(cells) + " |")
        print()

    if "replay" in peakload:
        first = peakload["replay"]
        shifted = [(s, f) for s, f in zip(series, first) if s["shift_at"] is not None]
        flat = [f for s, f in zip(series, first) if s["shift_at"] is None]
        early = sum(1 for s, f in shifted if f is not None and f < s["shift_at"])
        caught = [f - s["shift_at"] for s, f in shifted if f is not None and f >= s["shift_at"]]
        caught.sort()
        med = caught[len(caught) // 2] if caught else None
        evals = sum(len(s["values"]) - 8 for s in series if s["shift_at"] is None)
        print("Replay (peakload defaults, every prefix judged as CI would after each run):\n")
        print(f"- flat series with any false alarm over their whole replay: {sum(f is not None for f in flat)}/{len(flat)} ({evals} judgements)")
        print(f"- shifted series alarmed before the shift: {early}/{len(shifted)}")
        print(f"- shifted series caught: {len(caught)}/{len(shifted)}; runs from the shift to the alarm: median {med}, "
              f"same run {sum(1 for c in caught if c == 0)}, within 3 runs {sum(1 for c in caught if c <= 2)}")
        print()

    secs = {m: load(a.dir, f"{m}.json")["seconds"] for m in ("peakload", "otava", "edivisive")}
    print("Seconds for all series, one setting: " + "; ".join(
        f"{NAME[m]} {min(v.values()):.1f}-{max(v.values()):.1f}" for m, v in secs.items()))


if __name__ == "__main__":
    sys.exit(main())
