"""peakload's ranking beside BARO and NSigma on generators from the RCA literature.

Datasets (each seeded; the same cases for every method):

- ``pyrca-20``: PyRCA's simulator (``pyrca.simulation.data_gen``, PyPI ``sfr-pyrca``): a random
  DAG of 20 nodes and 30 edges whose node 0 is the only sink, linear-Gaussian (identity
  functions, normal noise), 600 normal samples then 200 with a constant added to 1–3 root
  causes (PyRCA's anomaly type 0), the fault doubled until node 0 leaves mean ± 3σ on every
  abnormal sample, as PyRCA's own generator loop does.
- ``circa-10``, ``circa-50``: CIRCA's simulator (``circa.experiment.simulation``, PyPI
  ``circa-clue``), the generator of the literature's synthetic RCA datasets (RCAEval's and
  CIRCA's "simulation" sets): a weighted DAG with node 0 the only sink (10 nodes / 20 edges,
  50 / 100), a linear vector auto-regression, with CIRCA's defaults: 1440 normal samples, a
  fault on 1–3 nodes (any node, the SLI included) lasting 2 samples, then 8 more samples.
  Ten graphs of ten cases each.
- ``circa-50-sustained``: the same generator with a fault that lasts (600 normal samples, then
  60 faulty ones), like the outside faults in ``bench/faults`` (15–20 s).
- ``peakload-synth``: the cases of ``src/diagnose/synthetic.rs`` (``bench/diagnose``), exported
  by ``cargo run --example rca_export``; the cause is one signal among 60.

What each method is given. Every dataset becomes one table of one sample per second: a
``time`` column and the candidate signals, named ``m00``… in a per-case random order so that
no method can profit from column order or from a name sorting first. The users' metric (the
SLI) is a separate column that is not a candidate:

- for the simulators, the node the users observe is node 0, the only sink of the DAG (every
  fault propagates to it; the simulators define the anomaly on it). A fault may move it
  either way, and peakload's ``--sli`` wants "higher is worse", so the SLI is
  ``|x0 − median(x0 over the first quarter of the series)|``: the distance from its usual
  level, computed without knowing when the fault began (the first quarter is normal in every
  case: 600 of 800, 1440 of 1450 and 600 of 660 samples are). Node 0 itself stays a
  candidate (CIRCA may plant the fault there);
- for ``peakload-synth``, the SLI is the users' p99 latency of the case; the planned and
  achieved load are not exported (the CSV path has no place for them; see the in-process
  row).

Methods:

- ``peakload``: ``peakload diagnose --metrics CASE.csv --sli sli --json``; its ``ranking``
  (every candidate, best first) is the answer, whether or not the verdict was "degraded"
  (the share called degraded is reported beside it). Never given the fault time.
- ``BARO``, ``NSigma``: ``RCAEval.e2e.baro`` / ``RCAEval.e2e.nsigma`` (RCAEval 1.8.1) over the
  candidates. *With the fault time*: ``inject_time`` is the first faulty sample. *Without*:
  the fault time is what BARO's own detector says: multivariate BOCPD from ``fse-baro``
  0.2.2 (``baro.anomaly_detection.bocpd``: hazard 1/50, Student-T predictive, first change
  point) run on the SLI column, as BARO runs it on latency and error metrics. The predictive
  is evaluated in closed form for one dimension (``UnivariateT`` below; checked against
  fse-baro's ``MultivariateT`` by ``--check-bocpd``), because fse-baro's per-run-length loop
  takes a minute per case.

Metrics (CIRCA's and RCAEval's): with ``R`` the true root causes and ``top_k`` a method's
first ``k``, AC@k = mean over cases of ``|R ∩ top_k| / min(k, |R|)``; Avg@5 = mean of
AC@1..AC@5.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

T0 = 1_700_000_000  # the CSV's first timestamp (Unix seconds); one sample per second


@dataclass
class Case:
    # time + candidate columns, one row per second
    frame: pd.DataFrame
    # the users' metric, higher is worse
    sli: np.ndarray
    # names (in frame) of the true root causes
    causes: set
    # index of the first faulty sample
    fault_at: int
    extra: dict = field(default_factory=dict)


def _shuffled_frame(rng: np.random.Generator, data: np.ndarray, cause_idx) -> tuple:
    """Candidate columns under per-case random names m00.. in random order."""
    n, k = data.shape
    order = rng.permutation(k)
    width = max(2, len(str(k - 1)))
    names = [f"m{i:0{width}d}" for i in range(k)]
    frame = pd.DataFrame({"time": T0 + np.arange(n)})
    label = {}
    for pos, col in enumerate(order):
        label[col] = names[pos]
    cols = {label[c]: data[:, c] for c in range(k)}
    for name in names:
        frame[name] = cols[name]
    return frame, {label[c] for c in cause_idx}, label


def _distance_sli(x0: np.ndarray) -> np.ndarray:
    q = max(3, len(x0) // 4)
    return np.abs(x0 - np.median(x0[:q]))


# ---------------------------------------------------------------- PyRCA


class _SeededDefaultRng:
    """PyRCA's simulator draws from ``np.random.default_rng()`` with no seed and from the global
    ``np.random``; both are pointed at one seeded stream for the duration of a case."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self.saved = np.random.default_rng
        self.saved_state = np.random.get_state()
        shared = self.saved(self.seed)
        original = self.saved

        def default_rng(seed=None):
            return shared if seed is None else original(seed)

        np.random.default_rng = default_rng
        np.random.seed(self.seed % (2**32))
        return self

    def __exit__(self, *exc):
        np.random.default_rng = self.saved
        np.random.set_state(self.saved_state)


def pyrca_cases(n_cases: int, seed: int, nodes=20, edges=30, normal=600, abnormal=200):
    from pyrca.simulation import data_gen

    out = []
    for i in range(n_cases):
        with _SeededDefaultRng(seed * 1000 + i):
            dag = data_gen.DAGGen(data_gen.DAGGenConfig(num_node=nodes, num_edge=edges)).gen()
            normal_data, pw, nw, func, noise = data_gen.DataGen(
                data_gen.DataGenConfig(
                    dag=dag,
                    func_type="identity",
                    noise_type="normal",
                    weight_generator="normal",
                    num_samples=normal,
                )
            ).gen()
            base = normal_data[:, 0].mean()
            thr = 3 * normal_data[:, 0].std()
            anomaly, fault = data_gen.AnomalyDataGen(
                data_gen.AnomalyDataGenConfig(
                    parent_weights=pw,
                    noise_weights=nw,
                    func_type=func,
                    noise_type=noise,
                    threshold=thr,
                    baseline=base,
                    anomaly_type=0,
                    num_samples=abnormal,
                )
            ).gen()
            rng = np.random.default_rng(seed * 7919 + i)
        data = np.vstack([normal_data, anomaly])
        causes = set(np.where(fault != 0)[0].tolist())
        frame, names, _ = _shuffled_frame(rng, data, causes)
        out.append(Case(frame, _distance_sli(data[:, 0]), names, normal))
    return out


# ---------------------------------------------------------------- CIRCA


def circa_cases(
    n_cases: int,
    seed: int,
    nodes: int,
    edges: int,
    length_normal=1440,
    fault_duration=2,
    length_abnormal=10,
    per_graph=10,
):
    from circa.experiment import simulation as sim

    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n_cases:
        matrix = sim.generate_sedag(num_node=nodes, num_edge=edges, rng=rng)
        prod = np.eye(nodes)
        weight = np.eye(nodes)
        for _ in range(1, nodes):
            prod = prod @ matrix
            weight += prod
        for _ in range(min(per_graph, n_cases - len(out))):
            case = sim.generate_case(
                weight=weight,
                length_normal=length_normal,
                fault_duration=fault_duration,
                length_abnormal=length_abnormal,
                rng=rng,
            )
            data = case._time_series
            frame, names, _ = _shuffled_frame(rng, data, case._causes)
            out.append(Case(frame, _distance_sli(data[:, 0]), names, length_normal))
    return out


# ---------------------------------------------------------------- peakload's own generator


def peakload_synth_cases(export_dir: str, n_cases: int):
    with open(os.path.join(export_dir, "labels.json")) as f:
        labels = json.load(f)
    rng = np.random.default_rng(4242)
    out = []
    for lab in labels[:n_cases]:
        raw = pd.read_csv(os.path.join(export_dir, lab["file"]))
        sli = raw["latency_ms"].to_numpy()
        signals = [c for c in raw.columns if c.startswith("s")]
        data = raw[signals].to_numpy()
        cause_idx = {signals.index(lab["cause"])}
        frame, names, label = _shuffled_frame(rng, data, cause_idx)
        ranked = lab.get("inprocess_top5", [])
        by_old = {signals[c]: label[c] for c in range(len(signals))}
        extra = {"inprocess": [by_old[s] for s in ranked if s in by_old],
                 "inprocess_degraded": lab.get("inprocess_degraded")}
        out.append(Case(frame, sli, names, int(lab["changed_at"]), extra))
    return out


# ---------------------------------------------------------------- methods


def peakload_rank(binary: str, case: Case, workdir: str, slot: int = 0) -> tuple:
    path = os.path.join(workdir, f"case-{slot}.csv")
    frame = case.frame.copy()
    frame["sli"] = case.sli
    frame.to_csv(path, index=False, float_format="%.6g")
    proc = subprocess.run(
        [binary, "diagnose", "--metrics", path, "--sli", "sli", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"peakload diagnose failed ({proc.returncode}): {proc.stderr.strip()}")
    d = json.loads(proc.stdout)
    return [r["signal"] for r in d.get("ranking", [])], not d.get("healthy", True)


def _rcaeval():
    # RCAEval's method table imports every method eagerly on Python versions other than
    # 3.10/3.12/3.14 (rcd needs causallearn and matplotlib); on those versions it imports each
    # method lazily and skips the ones whose dependencies are absent. BARO and NSigma need
    # neither, so take the lazy path on any version.
    import RCAEval.utility as u

    u.is_py312 = lambda: True
    import RCAEval.e2e as e2e

    return e2e


class UnivariateT:
    """fse-baro's ``MultivariateT`` likelihood for one dimension, evaluated in closed form over
    all run lengths at once (same priors: dof = 2, kappa = 1, mu = 0, scale = 1)."""

    def __init__(self):
        self.dof = np.array([2.0])
        self.kappa = np.array([1.0])
        self.mu = np.array([0.0])
        self.scale = np.array([1.0])

    def pdf(self, x):
        import scipy.stats as ss

        x = float(np.asarray(x).reshape(-1)[0])
        t_dof = self.dof  # dof - dims + 1 with dims = 1
        shape = 1.0 / ((self.kappa * t_dof) / (self.kappa + 1) * self.scale)
        return ss.t.pdf(x, df=t_dof, loc=self.mu, scale=np.sqrt(shape))

    def update_theta(self, x, **_):
        x = float(np.asarray(x).reshape(-1)[0])
        centered = x - self.mu
        new_scale = 1.0 / (1.0 / self.scale + self.kappa / (self.kappa + 1) * centered**2)
        self.scale = np.concatenate([self.scale[:1], new_scale])
        self.mu = np.concatenate([self.mu[:1], (self.kappa * self.mu + x) / (self.kappa + 1)])
        self.dof = np.concatenate([self.dof[:1], self.dof + 1])
        self.kappa = np.concatenate([self.kappa[:1], self.kappa + 1])


def bocpd_changes(sli: np.ndarray, fast=True) -> list:
    """BARO's detector on the SLI: the change points' indices."""
    from functools import partial

    from baro._bocpd import MultivariateT, constant_hazard, online_changepoint_detection
    from baro.utility import find_cps

    x = np.asarray(sli, dtype=float)
    lo, hi = np.min(x), np.max(x)
    if hi == lo:
        return []
    x = ((x - lo) / (hi - lo)).reshape(-1, 1)
    likelihood = UnivariateT() if fast else MultivariateT(dims=1)
    _, maxes = online_changepoint_detection(x, partial(constant_hazard, 50), likelihood)
    return [int(c[0]) for c in find_cps(maxes)]


def bocpd_first_change(sli: np.ndarray):
    """The first change point BARO's detector finds on the SLI, or None."""
    cps = bocpd_changes(sli)
    return cps[0] if cps else None


def peer_rank(e2e, method: str, case: Case, fault_at) -> list:
    fn = {"baro": e2e.baro, "nsigma": e2e.nsigma}[method]
    n = len(case.frame)
    at = int(min(max(fault_at, 2), n - 2))
    out = fn(case.frame, anomalies=[at], dataset="synthetic")
    return list(out["ranks"])


# ---------------------------------------------------------------- scoring


def ac_at(ranks: list, causes: set, k: int) -> float:
    return len(causes & set(ranks[:k])) / min(k, len(causes))


def summarize(rows: list) -> dict:
    out = {}
    for k in range(1, 6):
        out[f"ac{k}"] = float(np.mean([ac_at(r, c, k) for r, c in rows])) if rows else float("nan")
    out["avg5"] = float(np.mean([out[f"ac{k}"] for k in range(1, 6)]))
    return out


def _case_digest(case: Case) -> str:
    """What the peers' answer depends on: the candidates' values and the SLI."""
    import hashlib

    h = hashlib.sha256()
    h.update(",".join(case.frame.columns).encode())
    h.update(np.ascontiguousarray(case.frame.to_numpy(dtype=float)).tobytes())
    h.update(np.ascontiguousarray(np.asarray(case.sli, dtype=float)).tobytes())
    h.update(",".join(sorted(case.causes)).encode())
    h.update(str(case.fault_at).encode())
    return h.hexdigest()


def _peers_cache_path(name: str, seed: int, n: int) -> str:
    base = os.environ.get("PEAKLOAD_RCA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "peakload", "rca-peers"
    )
    return os.path.join(base, f"{name}-seed{seed}-cases{n}.json")


def _peers(e2e, case: Case) -> dict:
    at = bocpd_first_change(case.sli)
    guess = at if at is not None else len(case.frame) // 2
    return {
        "baro_t": peer_rank(e2e, "baro", case, case.fault_at),
        "nsigma_t": peer_rank(e2e, "nsigma", case, case.fault_at),
        "baro": peer_rank(e2e, "baro", case, guess),
        "nsigma": peer_rank(e2e, "nsigma", case, guess),
        "detected": at,
    }


def run_dataset(name, cases, binary, e2e, workdir, log, seed=0, use_cache=True):
    per_method = {m: [] for m in ("peakload", "baro_t", "nsigma_t", "baro", "nsigma", "inprocess")}
    degraded = 0
    detected = []
    started = time.time()
    # peakload runs as a separate process per case: two at a time (the machine has two cores)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(
            pool.map(lambda ic: peakload_rank(binary, ic[1], workdir, ic[0]), enumerate(cases))
        )
    log(f"  {name}: peakload done, {time.time() - started:.0f} s")
    # The peers' answers depend only on the case, not on peakload: they are kept per (dataset,
    # seed, cases) under ~/.cache and reused when the case's digest matches (a changed
    # generator or mapping gives new digests and a recomputation).
    cache_path = _peers_cache_path(name, seed, len(cases))
    cache = {}
    if use_cache and os.path.exists(cache_path):
        try:
            with open(cache_path) as f:
                cache = json.load(f)
        except (OSError, ValueError):
            cache = {}
    reused = 0
    fresh = {}
    for i, case in enumerate(cases):
        ranks, deg = answers[i]
        degraded += int(deg)
        per_method["peakload"].append((ranks, case.causes))
        digest = _case_digest(case)
        peers = cache.get(digest)
        if peers is None:
            peers = _peers(e2e, case)
        else:
            reused += 1
        fresh[digest] = peers
        for m in ("baro_t", "nsigma_t", "baro", "nsigma"):
            per_method[m].append((peers[m], case.causes))
        detected.append(peers["detected"])
        if "inprocess" in case.extra:
            per_method["inprocess"].append((case.extra["inprocess"], case.causes))
        if (i + 1) % 25 == 0:
            log(f"  {name}: {i + 1}/{len(cases)} cases, {time.time() - started:.0f} s")
    if reused:
        log(f"  {name}: peers' answers for {reused} of {len(cases)} cases from {cache_path}")
    if use_cache and reused < len(cases):
        os.makedirs(os.path.dirname(cache_path), exist_ok=True)
        tmp = cache_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(fresh, f)
        os.replace(tmp, cache_path)
    found = [d for d in detected if d is not None]
    errors = [abs(d - c.fault_at) for d, c in zip(detected, cases) if d is not None]
    return {
        "cases": len(cases),
        "seconds": round(time.time() - started, 1),
        "peakload_degraded": degraded,
        "bocpd_found": len(found),
        "bocpd_median_error_s": float(np.median(errors)) if errors else None,
        "bocpd_within_5s": int(sum(e <= 5 for e in errors)),
        "methods": {m: summarize(r) for m, r in per_method.items() if r},
    }


LABELS = [
    ("peakload", "peakload (CLI, CSV)", "no"),
    ("baro", "BARO", "no (BOCPD on the SLI)"),
    ("nsigma", "NSigma", "no (BOCPD on the SLI)"),
    ("baro_t", "BARO", "yes"),
    ("nsigma_t", "NSigma", "yes"),
    ("inprocess", "peakload (in-process, with the planned load)", "no"),
]


def table(results: dict) -> str:
    lines = [
        "| dataset | method | fault time given | AC@1 | AC@3 | Avg@5 |",
        "|---|---|---|---|---|---|",
    ]
    for ds, r in results.items():
        for key, label, given in LABELS:
            m = r["methods"].get(key)
            if not m:
                continue
            lines.append(
                f"| {ds} | {label} | {given} | {m['ac1']:.2f} | {m['ac3']:.2f} | {m['avg5']:.2f} |"
            )
    lines.append("")
    lines.append("| dataset | cases | peakload called degraded | BOCPD found a change | BOCPD within 5 s of the fault | time (s) |")
    lines.append("|---|---|---|---|---|---|")
    for ds, r in results.items():
        lines.append(
            f"| {ds} | {r['cases']} | {r['peakload_degraded']} | {r['bocpd_found']} | {r['bocpd_within_5s']} | {r['seconds']} |"
        )
    return "\n".join(lines)


def check_bocpd():
    rng = np.random.default_rng(3)
    for trial in range(3):
        x = np.r_[rng.normal(size=150), rng.normal(size=40) + 1.5 + trial]
        a, b = bocpd_changes(x, fast=True), bocpd_changes(x, fast=False)
        print(f"trial {trial}: closed form {a}, fse-baro MultivariateT {b}")
        if a != b:
            sys.exit("the closed-form predictive disagrees with fse-baro's")
    print("BOCPD: closed form agrees with fse-baro")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peakload", required=True, help="the peakload binary")
    p.add_argument("--export-dir", help="rca_export's output (peakload-synth cases)")
    p.add_argument("--cases", type=int, default=100)
    p.add_argument("--seed", type=int, default=20241129)
    p.add_argument(
        "--datasets",
        default="pyrca-20,circa-10,circa-50,circa-50-sustained,peakload-synth",
    )
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--check-bocpd", action="store_true")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="recompute the peers' answers instead of reusing ~/.cache/peakload/rca-peers",
    )
    a = p.parse_args()
    if a.check_bocpd:
        check_bocpd()
        return
    e2e = _rcaeval()
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    makers = {
        "pyrca-20": lambda: pyrca_cases(a.cases, a.seed),
        "circa-10": lambda: circa_cases(a.cases, a.seed, 10, 20),
        "circa-50": lambda: circa_cases(a.cases, a.seed + 1, 50, 100),
        "circa-50-sustained": lambda: circa_cases(
            a.cases, a.seed + 2, 50, 100, length_normal=600, fault_duration=60, length_abnormal=60
        ),
        "peakload-synth": lambda: peakload_synth_cases(a.export_dir, a.cases),
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="rca-bench-") as workdir:
        for ds in a.datasets.split(","):
            if ds not in makers:
                sys.exit(f"unknown dataset {ds!r}; known: {', '.join(makers)}")
            if ds == "peakload-synth" and not a.export_dir:
                sys.exit("peakload-synth needs --export-dir (cargo run --example rca_export)")
            log(f"{ds}: generating {a.cases} cases (seed {a.seed})")
            cases = makers[ds]()
            results[ds] = run_dataset(
                ds, cases, a.peakload, e2e, workdir, log, seed=a.seed, use_cache=not a.no_cache
            )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    print(table(results))


if __name__ == "__main__":
    main()
