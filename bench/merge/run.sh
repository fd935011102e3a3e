#!/bin/sh
# `peakload merge` on synthetic shard outputs at per-second resolution: wall time, CPU time and
# peak memory (RSS), printed as a table row per case. Each case's shards are drawn once by
# `shard_gen` (bench/merge/gen.rs, peakload's own recorder) into a work directory and kept
# there for the next run of this script.
#
# Usage: bench/merge/run.sh [CASE...]      CASE = SHARDSxSECONDS@RATE, e.g. 100x3600@10000
# Default cases: 10 and 100 shards x 1 h at 10,000 arrivals/s per shard, and 100 x 1 h at
# 1,000/s (the same files but ten times fewer requests: memory must not follow).
# Needs a release build: cargo build --release -p peakload --example shard_gen
# (CARGO_TARGET_DIR is honoured). WORK=dir to keep the shards elsewhere than /tmp (100 x 1 h is
# several GB). DISTINCT=n shards drawn per case (default 10), the others copies of them.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=${PEAKLOAD:-$target/release/peakload}
gen=${SHARD_GEN:-$target/release/examples/shard_gen}
work=${WORK:-/tmp/peakload-merge-bench}
distinct=${DISTINCT:-10}
[ -x "$bin" ] && [ -x "$gen" ] || {
  echo "build first: cargo build --release -p peakload --example shard_gen" >&2
  exit 2
}
[ $# -gt 0 ] || set -- 10x3600@10000 100x3600@10000 100x3600@1000
mkdir -p "$work"
printf '| shards x seconds | arrivals/s per shard | requests merged | hlog input | wall s | CPU s | peak RSS MiB |\n'
printf '|---|---|---|---|---|---|---|\n'
for case in "$@"; do
  shards=${case%%x*}
  rest=${case#*x}
  seconds=${rest%%@*}
  rate=${rest#*@}
  dir="$work/$case"
  if [ ! -f "$dir/.done" ]; then
    rm -rf "$dir"
    "$gen" --scenario "$root/scenarios/black-friday.toml" --out "$dir" --shards "$shards" \
      --seconds "$seconds" --rate "$rate" --distinct "$distinct" >&2
    touch "$dir/.done"
  fi
  # Read once so every case starts from the page cache, as a merge right after the download
  # from S3 or the shared volume would.
  cat "$dir"/shard-*/latency.hlog >/dev/null
  size=$(du -cshl "$dir"/shard-*/latency.hlog | tail -1 | cut -f1)
  out="$dir/merged"
  rm -rf "$out"
  /usr/bin/time -f '%e %U %S %M' -o "$work/time.txt" \
    "$bin" merge "$dir" --out "$out" >"$work/merge.log" 2>&1 || {
    code=$?
    # 7 (incomplete) or 1 (thresholds) still merged; anything else is a failure.
    [ "$code" -eq 1 ] || [ "$code" -eq 7 ] || { cat "$work/merge.log" >&2; exit 1; }
  }
  read -r wall user sys rss <"$work/time.txt"
  requests=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["requests"])' "$out/results.json")
  cpu=$(python3 -c "print(round($user + $sys, 1))")
  mib=$(python3 -c "print(round($rss / 1024))")
  printf '| %s x %s | %s | %s | %s | %s | %s | %s |\n' "$shards" "$seconds" "$rate" "$requests" "$size" "$wall" "$cpu" "$mib"
done
