#!/bin/sh
# Start skew of N shards told to start together (`--start-at`), as processes on this machine:
# each shard records how late after --start-at its load actually began (`late_start_ms` in its
# results.json, read from the same clock by every process here). Prints, per N, the spread
# (latest - earliest start) and the median and worst lateness over ROUNDS rounds.
#
# Usage: bench/start-skew/run.sh [N...]     (default: 4 16; ROUNDS=5)
# Needs a release build of peakload and peakload-stack (cargo build --release -p peakload
# -p peakload-stack-cli; CARGO_TARGET_DIR is honoured). Load: 2 arrivals/s per shard for 2 s
# against the bundled stack's /healthz on loopback.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=${PEAKLOAD:-$target/release/peakload}
stack=${PEAKLOAD_STACK:-$target/release/peakload-stack}
rounds=${ROUNDS:-5}
lead=${LEAD_S:-3}
[ $# -gt 0 ] || set -- 4 16
work=$(mktemp -d)
"$stack" all --listen 127.0.0.1:0 --data-dir "$work/stack" >"$work/stack.out" 2>/dev/null &
stack_pid=$!
trap 'kill $stack_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  grep -q listening "$work/stack.out" 2>/dev/null && break
  sleep 0.1
done
url=$(sed -n 's/^peakload-stack listening on //p' "$work/stack.out")
[ -n "$url" ] || { echo "the stack did not start" >&2; exit 1; }
printf '| shards | rounds | spread, median ms | spread, worst ms | late start, median ms | late start, worst ms |\n'
printf '|---|---|---|---|---|---|\n'
for n in "$@"; do
  cat >"$work/skew.toml" <<TOML
name = "start-skew"
base_url = "$url"
[load]
rps = $((2 * n))
duration = "2s"
[[journey]]
name = "j"
  [[journey.step]]
  path = "/healthz"
TOML
  for r in $(seq 1 "$rounds"); do
    at=$(python3 -c "import datetime as d; print((d.datetime.now(d.timezone.utc)+d.timedelta(seconds=$lead)).isoformat(timespec='milliseconds').replace('+00:00','Z'))")
    pids=""
    for i in $(seq 0 $((n - 1))); do
      "$bin" run "$work/skew.toml" -q --threads 1 --shard "$i/$n" --start-at "$at" \
        --out "$work/n$n/r$r/shard-$i" >/dev/null 2>&1 &
      pids="$pids $!"
    done
    for p in $pids; do wait "$p"; done
  done
  python3 - "$work/n$n" "$n" "$rounds" <<'PY'
import json, pathlib, statistics, sys
root, n, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
spreads, lates = [], []
for r in sorted(root.iterdir()):
    late = [json.loads((d / "results.json").read_text())["shard"]["late_start_ms"] for d in r.iterdir()]
    assert len(late) == n, f"{r}: {len(late)} of {n} shards wrote results"
    spreads.append(max(late) - min(late))
    lates += late
print(f"| {n} | {rounds} | {statistics.median(spreads):.2f} | {max(spreads):.2f} | "
      f"{statistics.median(lates):.2f} | {max(lates):.2f} |")
PY
done
