#!/usr/bin/env bash
# peakload's ranking beside BARO and NSigma (RCAEval) on PyRCA's and CIRCA's simulators and on
# bench/diagnose's generator. Prints the table (AC@1, AC@3, Avg@5 per method and dataset, with
# and without the fault time given to the peers). See rca_bench.py's docstring for the datasets
# and the mapping, and bench/README.md for the recorded figures.
#
#   bench/rca/run.sh [--cases N] [--seed N] [--datasets a,b] [--json FILE]
#
# Env: PEAKLOAD_RCA_VENV (default ~/.cache/peakload/rca-venv), PEAKLOAD_BIN (default: built
# here, debug), CARGO_TARGET_DIR as usual.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${PEAKLOAD_RCA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/peakload/rca-venv}"
cases=100
seed=20241129
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cases) cases="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

# The Python side: a venv outside the repository, the pinned packages installed without their
# declared dependencies (RCAEval and sfr-pyrca declare torch, javabridge and others that BARO,
# NSigma and the simulators never import).
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
  echo "setting up $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi

target="${CARGO_TARGET_DIR:-$root/target}"
if [ -z "${PEAKLOAD_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet -p peakload --bin peakload --example rca_export)
  PEAKLOAD_BIN="$target/debug/peakload"
  export_bin="$target/debug/examples/rca_export"
else
  (cd "$root" && cargo build --quiet -p peakload --example rca_export)
  export_bin="$target/debug/examples/rca_export"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/peakload-rca.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$export_bin" --out "$work/peakload-synth" --cases "$cases" --seed "$seed" >&2
"$venv/bin/python" "$here/rca_bench.py" --peakload "$PEAKLOAD_BIN" --export-dir "$work/peakload-synth" \
  --cases "$cases" --seed "$seed" ${args[@]+"${args[@]}"}
