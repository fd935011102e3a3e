#!/bin/sh
# Throughput of `peakload run` with the live dashboard vs `--no-tui`, both inside the same
# 160x48 tmux terminal, against a local nginx (1 worker) on loopback, one generator thread.
# Rounds alternate the order (ABBA) so drift and whoever-goes-first effects hit both sides.
#
# Usage: bench/tui-overhead/run.sh [ROUNDS]
# Needs nginx, tmux and a release build (cargo build --release; set CARGO_TARGET_DIR or
# PEAKLOAD=path/to/peakload if the binary is elsewhere).
set -eu
rounds=${1:-3}
here=$(cd "$(dirname "$0")" && pwd)
bin=${PEAKLOAD:-${CARGO_TARGET_DIR:-$here/../../target}/release/peakload}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/logs"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$port; location / { return 200 '{"ok":true}'; } }
}
CONF
nginx=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx" -c "$work/nginx.conf" -p "$work"
sock="peakload-bench-$$"
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT
tmux -L "$sock" -f /dev/null new-session -d -x 160 -y 48 -s b "sleep 100000"

one() { # $1 = label, $2 = extra flags
  out="$work/$1-$r"
  tmux -L "$sock" respawn-pane -k -t b \
    "'$bin' run '$here/closed.toml' --target http://127.0.0.1:$port --threads 1 --out '$out' $2; touch '$out.done'; sleep 100000"
  while [ ! -f "$out.done" ]; do sleep 0.5; done
  python3 - "$out/results.json" "$1" "$r" "$work/rows" <<'PY'
import json, sys
path, label, rnd, rows = sys.argv[1:]
r = json.load(open(path))
s, g = r["summary"], r["generator"]
per_cpu = s["requests"] / max(g["cpu_s"], 1e-9)
print(f"{label:7} round {rnd}: {s['requests']:>8} requests  {s['rps']:>9.1f} rps  "
      f"p99 {s['latency_ms']['p99']:.3f} ms  {per_cpu:>9.0f} requests per generator CPU-s")
open(rows, "a").write(f"{label} {s['rps']} {per_cpu}\n")
PY
}
r=1
while [ "$r" -le "$rounds" ]; do
  if [ $((r % 2)) -eq 1 ]; then
    one tui ""
    one no-tui "--no-tui"
  else
    one no-tui "--no-tui"
    one tui ""
  fi
  r=$((r + 1))
done
python3 - "$work/rows" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(label, i):
    return statistics.median(float(r[i]) for r in rows if r[0] == label)
for i, what in ((1, "rps"), (2, "requests per generator CPU-s")):
    tui, plain = med("tui", i), med("no-tui", i)
    print(f"median {what}: dashboard {tui:.1f}, --no-tui {plain:.1f} ({(tui / plain - 1) * 100:+.1f}%)")
PY
