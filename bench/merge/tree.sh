#!/bin/sh
# A two-level merge against the direct one, on the synthetic shards of `run.sh`: the direct
# merge, then each part (`merge DIR --shards A-B`, as the pods of the rendered parts' Job run
# them, here one after the other), then the final merge of the parts; wall time, CPU time and
# peak memory (RSS) of each, as table rows. Then checks that the two merged results.json hold
# the same figures and the two latency.hlog files the same bytes.
#
# Usage: bench/merge/tree.sh CASE [SHARDS_PER_PART]   CASE as run.sh's, e.g. 100x3600@10000
# The case's shards must have been drawn by `bench/merge/run.sh CASE` (same WORK). Default 10
# shards a part.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=${PEAKLOAD:-$target/release/peakload}
work=${WORK:-/tmp/peakload-merge-bench}
[ $# -ge 1 ] || { echo "usage: $0 CASE [SHARDS_PER_PART]" >&2; exit 2; }
case=$1
per=${2:-10}
shards=${case%%x*}
dir="$work/$case"
[ -f "$dir/.done" ] || { echo "draw the shards first: bench/merge/run.sh $case" >&2; exit 2; }
out="$work/$case-tree"
rm -rf "$out"
mkdir -p "$out/parts"

# One timed merge: a table row (what, wall s, CPU s, peak RSS MiB).
timed() {
  what=$1
  shift
  /usr/bin/time -f '%e %U %S %M' -o "$work/time.txt" "$@" >"$work/merge.log" 2>&1 || {
    code=$?
    # 7 (incomplete) or 1 (thresholds) still merged; anything else is a failure.
    [ "$code" -eq 1 ] || [ "$code" -eq 7 ] || { cat "$work/merge.log" >&2; exit 1; }
  }
  read -r wall user sys rss <"$work/time.txt"
  cpu=$(python3 -c "print(round($user + $sys, 1))")
  mib=$(python3 -c "print(round($rss / 1024))")
  printf '| %s | %s | %s | %s |\n' "$what" "$wall" "$cpu" "$mib"
}

# From the page cache, as run.sh does.
cat "$dir"/shard-*/latency.hlog >/dev/null
printf '| merge | wall s | CPU s | peak RSS MiB |\n|---|---|---|---|\n'
timed "direct, $shards shards" "$bin" merge "$dir" --out "$out/direct"
k=0
first=0
while [ "$first" -lt "$shards" ]; do
  last=$((first + per - 1))
  timed "part $k (shards $first-$last)" "$bin" merge "$dir" --shards "$first-$last" \
    --out "$out/parts/part-$k"
  k=$((k + 1))
  first=$((first + per))
done
timed "final, $k parts" "$bin" merge "$out/parts" --out "$out/final"

python3 - "$out/direct/results.json" "$out/final/results.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for d in (a, b):
    d.pop("tool", None)
differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
print("results.json: " + ("identical figures" if not differ else "differ in " + ", ".join(differ)))
EOF
if cmp -s "$out/direct/latency.hlog" "$out/final/latency.hlog"; then
  echo "latency.hlog: identical bytes"
else
  echo "latency.hlog: differs"
fi
du -sh "$out/parts" | sed 's/^/parts written: /'
