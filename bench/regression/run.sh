#!/usr/bin/env bash
# Regression-gate calibration from a clean machine: peakload's change detector against
# Apache Otava and MongoDB's E-Divisive means (signal-processing-algorithms) on the same
# seeded synthetic run histories. See bench/README.md ("regression/") for what it prints.
#
#   bench/regression/run.sh [OUT_DIR]        # default OUT_DIR: target/regression-bench
#
# Needs python3 (with venv) and cargo. The peers are installed into two virtualenvs under
# OUT_DIR at pinned versions (requirements-*.txt: their numpy pins conflict, so one each).
# On an idle 2-core machine: the release build (from cold, up to an hour with the AWS SDK),
# then about 20 minutes (21 on a loaded machine, 2026-12-06), nearly all of it E-Divisive at
# 1000 permutations; peakload takes
# about 1 minute for all three sets.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/regression-bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    echo "python3 venv is missing; installing python3-venv" >&2
    apt-get update -qq && apt-get install -y -qq python3-venv
fi
for peer in otava edivisive; do
    if [ ! -x "$out/venvs/$peer/bin/python" ]; then
        python3 -m venv "$out/venvs/$peer"
    fi
    "$out/venvs/$peer/bin/pip" install -q --disable-pip-version-check -r "$here/requirements-$peer.txt"
done

(cd "$root" && cargo build --release --example regression_bench)
bench="${CARGO_TARGET_DIR:-$root/target}/release/examples/regression_bench"

# tuned: the noise models the defaults were chosen on; unseen: models never used for that
# (another seed too); flat: 1000 more flat series of the tuned models, for false-alarm rates
# finer than 1 in 200.
run_set() {
    local name=$1; shift
    local dir="$out/$name"
    mkdir -p "$dir"
    python3 "$here/gen.py" "$@" > "$dir/series.json"
    local t0=$SECONDS
    "$bench" "$dir/series.json" ${REPLAY:+--replay} > "$dir/peakload.json"
    "$out/venvs/otava/bin/python" "$here/peers.py" otava "$dir/series.json" > "$dir/otava.json"
    "$out/venvs/edivisive/bin/python" "$here/peers.py" edivisive "$dir/series.json" > "$dir/edivisive.json"
    echo "$name: $((SECONDS - t0)) s" >&2
}
REPLAY=1 run_set tuned --models tuned --seed 20261207
run_set unseen --models unseen --seed 20261209
run_set flat --models tuned --seed 20261208 --shifted 0 --flat 1000

{
    python3 "$here/compare.py" "$out/tuned" --flat "$out/flat"
    echo
    python3 "$here/compare.py" "$out/unseen" --tuned-on "$out/tuned" --flat "$out/flat"
} | tee "$out/report.md"
echo "written: $out/report.md" >&2
