#!/usr/bin/env bash
# Outside fault suite: the bundled stack on MariaDB, loaded by
# `peakload run` at a steady rate, with faults planted by OS and database tools (CPU contention,
# SIGSTOP of the worker, LOCK TABLES, a row-locking batch, a memory cgroup limit, disk writers,
# a delaying proxy on the users' path) and healthy controls; prints right/wrong per fault kind.
#
#   bench/faults/run.sh [--quick] [--repeat N] [--kinds a,b] [--out DIR]
#
# --quick: a table lock and a healthy control, once each, 45 s runs (about 95 s after the build).
# Other options: --busy-loops N (cpu fault), --rps, --seconds, --fault-at, --duration; see faults.py.
# Needs: MariaDB at 127.0.0.1:3306 (root, no password), taskset, python3. Loopback only; each
# run is bounded; every process, lock, cgroup and database it makes is removed on exit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --quiet -p peakload --bin peakload && cargo build --quiet -p peakload-stack-cli)
if ! mysql -uroot -h127.0.0.1 -P3306 -e 'SELECT 1' >/dev/null 2>&1; then
  echo "error: MariaDB is not answering at 127.0.0.1:3306 as root (start it: service mariadb start)" >&2
  exit 2
fi
# The interpreter itself, not a version manager's shim that may run it as a child: a signal to
# this script's pid must reach faults.py, whose handlers undo every fault and process.
py="$(python3 -c 'import sys; print(sys.executable)')"
exec "$py" "$here/faults.py" --peakload "$target/debug/peakload" --stack "$target/debug/peakload-stack" "$@"
