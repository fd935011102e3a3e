"""Faults planted from outside the bundled stack, and whether peakload's diagnosis names them.

Each run: a fresh MariaDB database (for a fault with backend "sqlite", a SQLite data
directory and ``peakload-stack all``), the stack started as separate ``peakload-stack api``
and ``peakload-stack worker`` processes pinned to CPU 1, ``peakload run``
pinned to CPU 0 at a steady open-model rate with the stack's ``/metrics`` (both processes)
scraped every second, and at t≈FAULT_AT s one fault planted for DURATION s with OS or database
tools (never the stack's fault flags). Afterwards ``peakload diagnose results.json --json`` is
read and the top finding compared with the answer written down in ``FAULTS`` below before any
run. Every process, lock, cgroup, file and database this script makes is removed on exit,
including on Ctrl-C or SIGTERM.

    python3 faults.py --peakload BIN --stack BIN [--quick] [--repeat N] [--kinds a,b] [--out DIR]
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
USERS_CSV = os.path.join(ROOT, "scenarios", "data", "users.csv")
MYSQL = ["mysql", "-uroot", "-h127.0.0.1", "-P3306", "--batch", "--skip-column-names"]
STACK_CPU = "1"
# The API's quota in the cpu-limit fault (µs per 100 ms): it uses ~14 ms per 100 ms at this load.
CPU_QUOTA_US = 5000
LOAD_CPU = "0"


@dataclass
class Fault:
    name: str
    what: str
    # kinds accepted as the top finding; "healthy" = healthy verdict and no finding;
    # "unexplained" = degraded and no finding (nothing observed explains it)
    accept: tuple
    expected: str
    why: str
    backend: str = "mysql"


# Written before the first run; see bench/README.md for the reasoning in full.
FAULTS = {
    "cpu": Fault(
        "cpu",
        "busy-loop processes (--busy-loops, default 2) pinned to the stack's core (CPU 1)",
        ("cpu_saturation",),
        "cpu_saturation (the stack's CPU: it loses its core to other processes)",
        "The stack is descheduled, so every wall-clock timing it reports (request and database "
        "durations) inflates; the database is idle. The cause is CPU contention on the stack's "
        "core; a database kind is the effect of the caller being starved.",
    ),
    "worker-stop": Fault(
        "worker-stop",
        "SIGSTOP of the `peakload-stack worker` process (SIGCONT after the window)",
        ("queue_backlog",),
        "queue_backlog (notifications queue depth/age growing, its consumer stopped; the "
        "worker's /metrics stops answering)",
        "The consumer stops: queue depth and the oldest message's age grow, the processed rate "
        "falls to 0 and the worker's scrape fails. The API still answers (POST "
        "/api/notifications only enqueues), so the users may see little; if the verdict is "
        "degraded, the backlog is the cause to name. A healthy verdict with no line about the "
        "backlog is counted wrong (the backlog went unreported).",
    ),
    "api-stop": Fault(
        "api-stop",
        "SIGSTOP of the `peakload-stack api` process (SIGCONT after the window)",
        ("target_unresponsive",),
        "target_unresponsive (the API stops answering its users and its scrapes)",
        "The API is frozen: requests time out or wait in its listen queue, its /metrics stops "
        "answering and its own series are missing for the window (what they said last is not "
        "a measurement). The worker and the database are idle for lack of work; a database or "
        "queue kind read from values held over the silence is wrong.",
    ),
    "lock-tables": Fault(
        "lock-tables",
        "`LOCK TABLES products WRITE` held by another MariaDB session",
        ("db_latency", "db_pool_saturation"),
        "db_latency or db_pool_saturation (the database: a table lock blocks every query on "
        "products)",
        "Reads and checkouts on products wait for the lock; database operation times and the "
        "pool's waits rise first; the worker's falling rate (if any) is a consequence.",
    ),
    "row-locks": Fault(
        "row-locks",
        "a competing batch: a transaction holding `SELECT … FOR UPDATE` row locks on every "
        "product, as a stock sync would",
        ("db_latency", "db_pool_saturation"),
        "db_latency or db_pool_saturation (the database: checkouts wait on row locks)",
        "Checkout's `UPDATE products … WHERE id = ?` waits on the batch's row locks while plain "
        "reads go on; database operation times and pool use rise.",
    ),
    "memory-limit": Fault(
        "memory-limit",
        "a memory cgroup limit on the API process (started from a private copy of its binary) "
        "that holds its anonymous memory and only part of the code it runs (OOM killer "
        "disabled; cgroup v1, see bench/README.md)",
        ("memory_pressure",),
        "memory_pressure (the API's memory at its limit)",
        "At the limit every allocation must reclaim first; the only reclaimable memory is the "
        "API's own code, evicted and read back from disk as it runs (thrashing): the process "
        "slows or stalls until the limit is lifted.",
    ),
    "cpu-limit": Fault(
        "cpu-limit",
        "a CPU quota on the API process, as a container's CPU limit: its own cgroup's cpu "
        "controller (`cpu.cfs_quota_us`, or `cpu.max` on cgroup v2) at 5 ms per 100 ms, a "
        "twentieth of a core, where it uses about a seventh",
        ("cpu_saturation",),
        "cpu_saturation (the API's CPU limit: its threads are runnable but throttled)",
        "The API's threads wait for the quota to refill: its own CPU flattens at the limit, "
        "its scheduling delay and its cgroup's throttled time rise, every request and database "
        "timing inside it inflates. The host has idle CPU and the database is idle: a database "
        "kind is the effect of the caller being throttled.",
    ),
    "io": Fault(
        "io",
        "I/O pressure: four buffered `dd bs=1M conv=fsync` writers and one `dd oflag=dsync` on the "
        "filesystem that holds MariaDB's data (InnoDB flushes its redo log at every commit)",
        ("io_saturation",),
        "io_saturation (the disk: commits wait for their log flush behind the writers)",
        "Every commit (innodb_flush_log_at_trx_commit = 1) waits for its log flush behind the "
        "writers' writeback: database operation times rise, CPU does not.",
    ),
    "proxy-delay": Fault(
        "proxy-delay",
        "150 ms added to every answer by a TCP proxy on the users' path (the stack untouched)",
        ("unexplained",),
        "no infrastructure cause (degraded, and no observed signal explains it: the path)",
        "Nothing in the stack changes: its own request durations, database and CPU stay flat; "
        "only the users' latency rises. Naming any stack signal is wrong.",
    ),
    "healthy": Fault(
        "healthy",
        "no fault (control)",
        ("healthy",),
        "healthy, no finding",
        "Nothing was planted.",
    ),
}

QUICK = ["lock-tables", "healthy"]


class Cleanup:
    """Everything started or made, undone in reverse order, once."""

    def __init__(self):
        self.actions = []

    def push(self, label, fn):
        self.actions.append((label, fn))

    def run(self):
        while self.actions:
            label, fn = self.actions.pop()
            try:
                fn()
            except Exception as e:  # keep cleaning up the rest
                print(f"cleanup: {label}: {e}", file=sys.stderr)


CLEAN = Cleanup()


def on_signal(signum, _frame):
    CLEAN.run()
    sys.exit(128 + signum)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def mysql(sql, db=None, timeout=60):
    cmd = MYSQL + ([db] if db else []) + ["-e", sql]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"mysql: {out.stderr.strip()}")
    return out.stdout


def kill_group(proc, grace=10.0):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGCONT)
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def spawn(label, cmd, cpu=None, stdout=subprocess.PIPE, stderr=None, preexec=None):
    if cpu is not None:
        cmd = ["taskset", "-c", cpu] + cmd
    proc = subprocess.Popen(
        cmd,
        stdout=stdout,
        stderr=stderr if stderr is not None else subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        preexec_fn=preexec,
    )
    CLEAN.push(f"stop {label} ({proc.pid})", lambda: kill_group(proc))
    return proc


def wait_line(proc, prefix, timeout=90):
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before it was ready")
        if sel.select(timeout=1):
            line = proc.stdout.readline()
            if line.startswith(prefix):
                return line.strip()
    raise RuntimeError(f"not ready within {timeout} s")


def url_port(line):
    return int(line.rsplit(":", 1)[1].strip().rstrip("/"))


def memory_cgroup_parent():
    """The v1 memory cgroup this process is in (cgroup v2 here has no memory controller)."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.strip().split(":", 2)
            if "memory" in ctrls.split(","):
                base = "/sys/fs/cgroup/memory" + path
                if os.path.isdir(base):
                    return base
    return None


def cpu_cgroup_parent():
    """(directory, v2) of the cgroup this process is in whose children can have a CPU quota:
    v1's `cpu` hierarchy, else the unified one if it hands `cpu` down (`subtree_control`)."""
    with open("/proc/self/cgroup") as f:
        lines = [line.strip().split(":", 2) for line in f]
    for _, ctrls, path in lines:
        if "cpu" in ctrls.split(","):
            for root in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"):
                if os.path.isdir(root + path):
                    return root + path, False
    for hid, ctrls, path in lines:
        if hid == "0" and ctrls == "":
            for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                # A child gets `cpu.max` only if its parent hands `cpu` down.
                try:
                    with open(os.path.join(root + path, "cgroup.subtree_control")) as f:
                        if "cpu" in f.read().split():
                            return root + path, True
                except OSError:
                    pass
    return None


def set_cpu_quota(cg, v2, quota_us):
    """A CPU quota per 100 ms period, or none (`quota_us` None)."""
    if v2:
        with open(os.path.join(cg, "cpu.max"), "w") as f:
            f.write(f"{quota_us if quota_us else 'max'} 100000")
    else:
        with open(os.path.join(cg, "cpu.cfs_period_us"), "w") as f:
            f.write("100000")
        with open(os.path.join(cg, "cpu.cfs_quota_us"), "w") as f:
            f.write(str(quota_us if quota_us else -1))


def cgroup_v2_memory():
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        try:
            with open(os.path.join(root, "cgroup.controllers")) as f:
                if "memory" in f.read().split():
                    return root
        except OSError:
            pass
    return None


def scenario_text(name, base_url, scrape, rps, seconds):
    scrape_list = ", ".join(f'"{u}"' for u in scrape)
    return f"""# Generated by bench/faults/faults.py: black-friday's journeys at a steady rate.
name = "{name}"
base_url = "{base_url}"
timeout = "5s"

[observe]
scrape = [{scrape_list}]
scrape_interval = "1s"

[headers]
"X-Load-Test" = "peakload fault suite"

[load]
start_rps = {rps}
max_vus = 400
stages = [{{ duration = "{seconds}s", target_rps = {rps}, name = "steady" }}]

[[feeder]]
name = "user"
file = "{USERS_CSV}"
mode = "random"

[[journey]]
name = "shopper"
weight = 5

  [[journey.step]]
  name = "login"
  method = "POST"
  path = "/api/login"
  json = {{ email = "{{{{user.email}}}}", password = "{{{{user.password}}}}" }}
  extract = {{ token = {{ json = "$.token" }} }}
  check = {{ status = 200 }}

  [[journey.step]]
  name = "browse"
  path = "/api/products"
  query = {{ page = "{{{{random_int 1 9}}}}" }}
  check = {{ status = 200 }}
  think = "50ms..200ms"

  [[journey.step]]
  name = "product"
  path = "/api/products/{{{{random_int 1 200}}}}"
  check = {{ status = 200 }}

  [[journey.step]]
  name = "add-to-cart"
  method = "POST"
  path = "/api/cart/items"
  headers = {{ Authorization = "Bearer {{{{token}}}}" }}
  json = {{ product_id = "{{{{random_int 1 200}}}}", qty = "{{{{random_int 1 2}}}}" }}
  check = {{ status = 201 }}

  [[journey.step]]
  name = "checkout"
  method = "POST"
  path = "/api/checkout"
  headers = {{ Authorization = "Bearer {{{{token}}}}" }}
  check = {{ status = [201, 409] }}

[[journey]]
name = "window-shopper"
weight = 3

  [[journey.step]]
  name = "search"
  path = "/api/products"
  query = {{ q = "shoe", page = 1 }}
  check = {{ status = 200 }}
  think = "100ms..300ms"

  [[journey.step]]
  name = "details"
  path = "/api/products/{{{{random_int 1 200}}}}"
  check = {{ status = 200 }}

[[journey]]
name = "notifications"
weight = 1

  [[journey.step]]
  name = "notify"
  method = "POST"
  path = "/api/notifications"
  json = {{ to = "{{{{user.email}}}}", subject = "Your deals", body = "Order {{{{uuid}}}} is on its way" }}
  extract = {{ id = {{ json = "$.id" }} }}
  check = {{ status = 202 }}

  [[journey.step]]
  name = "notification-status"
  path = "/api/notifications/{{{{id}}}}"
  check = {{ status = 200 }}

[[journey]]
name = "background"
weight = 1

  [[journey.step]]
  name = "write-timestamp"
  method = "POST"
  path = "/app"
  check = {{ status = "2xx" }}

  [[journey.step]]
  name = "multivac-data"
  method = "POST"
  path = "/multivac/data"
  form = {{ data = "entropy {{{{random_int 1 20}}}}" }}
  check = {{ status = 202 }}
"""


class Planted:
    """Starts and stops one fault; ``start``/``stop`` are called at the window's edges."""

    def __init__(self, kind, ctx):
        self.kind = kind
        self.ctx = ctx
        self.procs = []
        self.note = ""

    def start(self, duration):
        k, c = self.kind, self.ctx
        if k == "cpu":
            loop = f"import time\nend = time.time() + {duration}\nwhile time.time() < end: pass"
            for i in range(c["busy_loops"]):
                self.procs.append(spawn(f"busy loop {i}", [sys.executable, "-c", loop], cpu=STACK_CPU))
        elif k == "worker-stop":
            os.kill(c["worker"].pid, signal.SIGSTOP)
            CLEAN.push("SIGCONT worker", lambda: _cont(c["worker"]))
        elif k == "api-stop":
            os.kill(c["api"].pid, signal.SIGSTOP)
            CLEAN.push("SIGCONT api", lambda: _cont(c["api"]))
        elif k == "lock-tables":
            sql = f"LOCK TABLES products WRITE; SELECT SLEEP({duration}); UNLOCK TABLES;"
            self.procs.append(spawn("LOCK TABLES session", MYSQL + [c["db"], "-e", sql], stdout=subprocess.DEVNULL))
        elif k == "row-locks":
            sql = (
                "SET SESSION innodb_lock_wait_timeout = 5; START TRANSACTION; "
                "SELECT COUNT(*) FROM (SELECT id FROM products FOR UPDATE) AS locked; "
                f"SELECT SLEEP({duration}); COMMIT;"
            )
            self.procs.append(spawn("row-lock batch", MYSQL + [c["db"], "-e", sql], stdout=subprocess.DEVNULL))
        elif k == "memory-limit":
            cg = c["cgroup"]
            stat = memory_stat(cg)
            anon, mapped = stat["rss"], stat["mapped_file"]
            # The API runs from a private copy of its binary, so the code it runs is page cache
            # charged to its own cgroup (see `private_binary`). First the unmapped cache is let
            # go (harmless), then the limit leaves its anonymous memory whole but only a
            # fraction of the code it has mapped: the hot code no longer fits, and every
            # page evicted is read back from disk when next run (thrashing, as a container
            # near its limit with no swap does). The OOM killer is off for this cgroup, so an
            # allocation that cannot be met waits instead of killing the process.
            limit = anon + int(mapped * c["memory_fraction"])
            for step in (anon + mapped + (1 << 20), limit):
                with open(os.path.join(cg, "memory.limit_in_bytes"), "w") as f:
                    f.write(str(step))
            self.note = (f"limit {limit >> 20} MiB: anonymous {anon >> 20} MiB + "
                         f"{c['memory_fraction']:.0%} of {mapped >> 20} MiB of mapped code")
        elif k == "cpu-limit":
            set_cpu_quota(c["cpu_cgroup"], c["cpu_v2"], CPU_QUOTA_US)
            self.note = f"quota {CPU_QUOTA_US} µs per 100 ms"
        elif k == "io":
            # Four buffered writers (the page cache fills and writeback saturates the disk, so
            # every commit's log flush waits behind it) and one synchronous writer, on the load's
            # core so that the stack's CPU is left alone; each bounded in time and size, the
            # files removed at the window's end.
            target = c["data_dir"]
            for i, flags in enumerate(["conv=fsync"] * 4 + ["oflag=dsync"]):
                out = os.path.join(target, f"ballast-{i}")
                bs = "64k" if flags == "oflag=dsync" else "1M"
                cmd = ["timeout", str(duration), "dd", "if=/dev/zero", f"of={out}", f"bs={bs}",
                       "count=2000", flags, "status=none"]
                self.procs.append(spawn(f"dd writer {i}", cmd, cpu=LOAD_CPU, stdout=subprocess.DEVNULL))
        elif k == "proxy-delay":
            os.kill(c["proxy"].pid, signal.SIGUSR1)
        elif k == "healthy":
            pass

    def stop(self):
        k, c = self.kind, self.ctx
        if k == "worker-stop":
            _cont(c["worker"])
        elif k == "api-stop":
            _cont(c["api"])
        elif k == "memory-limit":
            lift_memory_limit(c["cgroup"])
        elif k == "cpu-limit":
            set_cpu_quota(c["cpu_cgroup"], c["cpu_v2"], None)
        elif k == "proxy-delay":
            os.kill(c["proxy"].pid, signal.SIGUSR2)
        for p in self.procs:
            kill_group(p, grace=3)
        if k == "io":
            for i in range(5):
                try:
                    os.remove(os.path.join(c["data_dir"], f"ballast-{i}"))
                except FileNotFoundError:
                    pass


def _cont(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)


# About the machine that measured, not the system under test: shown, never graded (on a shared
# machine the generator is often short of CPU).
NOT_GRADED = ("generator_limited",)


def grade(fault: Fault, diag: dict, window=None) -> tuple:
    """(right, top finding, how): `how` says when a run is right by what moved rather than by
    its first finding."""
    findings = [f for f in diag.get("findings", []) if f.get("kind") not in NOT_GRADED]
    healthy = diag.get("healthy", True)
    top = findings[0] if findings else None
    how = ""
    if "healthy" in fault.accept:
        ok = healthy and not findings
    elif "unexplained" in fault.accept:
        ok = (not healthy) and not findings
    else:
        ok = top is not None and top.get("kind") in fault.accept and not healthy
        # A fault that did not reach the users is told right by the diagnosis's `moved` (not
        # user-visible) overlapping the fault: with a healthy verdict, or with a degraded one
        # whose findings are all about another stretch (on a loaded machine, a noise episode).
        elsewhere = top is not None and not any(overlaps(f.get("window") or {}, window) for f in findings)
        if not ok and ((healthy and not findings) or elsewhere):
            told = [m for m in diag.get("moved", [])
                    if m.get("kind") in fault.accept and overlaps(m, window)]
            if told:
                ok = True
                how = "told in moved" + (" (users degraded elsewhere)" if elsewhere else "")
    return ok, top, how


def overlaps(span, window) -> bool:
    """Whether `span` ({start_s, end_s}) meets the fault window (5 s of slack after it, for
    what the fault leaves behind); with no window, anything does."""
    if not window:
        return True
    a, b = span.get("start_s"), span.get("end_s")
    if a is None or b is None:
        return False
    return a < window[1] + 5 and b > window[0]


def one_run(kind, rep, a, outroot):
    fault = FAULTS[kind]
    run_dir = os.path.join(outroot, f"{kind}-{rep}")
    os.makedirs(run_dir, exist_ok=True)
    saved = CLEAN.actions
    CLEAN.actions = []
    ctx = {"busy_loops": a.busy_loops}
    try:
        stack_log = open(os.path.join(run_dir, "stack.log"), "w")
        if fault.backend == "mysql":
            db = f"plfault_{kind.replace('-', '_')}_{rep}_{os.getpid()}"
            mysql(f"DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}")
            CLEAN.push(f"drop database {db}", lambda: drop_db(db))
            ctx["db"] = db
            url = f"mysql://root@127.0.0.1:3306/{db}"
            preexec = None
            stack_bin = a.stack
            if kind == "memory-limit":
                parent = memory_cgroup_parent()
                if parent is None:
                    raise RuntimeError("no memory cgroup to limit the API in")
                cg = os.path.join(parent, f"peakload-fault-{os.getpid()}")
                os.makedirs(cg, exist_ok=True)
                with open(os.path.join(cg, "memory.oom_control"), "w") as f:
                    f.write("1")
                ctx["cgroup"] = cg
                CLEAN.push(f"remove cgroup {cg}", lambda: remove_cgroup(cg, lambda: lift_memory_limit(cg)))

                def preexec():
                    with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                        f.write(str(os.getpid()))

                stack_bin = private_binary(a.stack)
                ctx["memory_fraction"] = a.memory_fraction
            if kind == "cpu-limit":
                found = cpu_cgroup_parent()
                if found is None:
                    raise RuntimeError("no cpu cgroup to limit the API in")
                parent, v2 = found
                cg = os.path.join(parent, f"peakload-fault-cpu-{os.getpid()}")
                os.makedirs(cg, exist_ok=True)
                quota = "cpu.max" if v2 else "cpu.cfs_quota_us"
                if not os.path.exists(os.path.join(cg, quota)):
                    os.rmdir(cg)
                    raise RuntimeError(f"{cg} has no {quota}: the cpu controller is not delegated")
                ctx["cpu_cgroup"], ctx["cpu_v2"] = cg, v2
                CLEAN.push(f"remove cgroup {cg}",
                           lambda: remove_cgroup(cg, lambda: set_cpu_quota(cg, v2, None)))

                def preexec():
                    with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                        f.write(str(os.getpid()))

            if kind == "io":
                ctx["data_dir"] = disk_dir_beside_mariadb()
            api = spawn("stack api", [stack_bin, "api", "--listen", "127.0.0.1:0", "--mysql", url,
                                      "--log-level", "warn"], cpu=STACK_CPU, stderr=stack_log,
                        preexec=preexec)
            api_port = url_port(wait_line(api, "peakload-stack listening on"))
            worker = spawn("stack worker", [a.stack, "worker", "--listen", "127.0.0.1:0", "--mysql",
                                            url, "--log-level", "warn"], cpu=STACK_CPU, stderr=stack_log)
            worker_port = url_port(wait_line(worker, "peakload-stack listening on"))
            ctx.update(api=api, worker=worker)
            scrape = [f"http://127.0.0.1:{api_port}/metrics", f"http://127.0.0.1:{worker_port}/metrics"]
        else:
            data_dir = tempfile.mkdtemp(prefix="plfault-sqlite-", dir="/var/tmp")
            CLEAN.push(f"remove {data_dir}", lambda: shutil.rmtree(data_dir, ignore_errors=True))
            ctx["data_dir"] = data_dir
            api = spawn("stack all", [a.stack, "all", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                                      "--log-level", "warn"], cpu=STACK_CPU, stderr=stack_log)
            api_port = url_port(wait_line(api, "peakload-stack listening on"))
            ctx["api"] = api
            scrape = [f"http://127.0.0.1:{api_port}/metrics"]
        if a.host_metrics:
            host = spawn("host metrics", [sys.executable, os.path.join(HERE, "host_metrics.py"),
                                          "--max-seconds", str(a.seconds + 120)], cpu=LOAD_CPU)
            scrape.append(f"http://127.0.0.1:{url_port(wait_line(host, 'listening on'))}/metrics")
        target = f"http://127.0.0.1:{api_port}"
        if kind == "proxy-delay":
            proxy = spawn("delay proxy", [sys.executable, os.path.join(HERE, "delay_proxy.py"),
                                          "--upstream", f"127.0.0.1:{api_port}", "--delay-ms", "150",
                                          "--max-seconds", str(a.seconds + 120)], cpu=LOAD_CPU)
            target = f"http://127.0.0.1:{url_port(wait_line(proxy, 'listening on'))}"
            ctx["proxy"] = proxy
        scen = os.path.join(run_dir, "scenario.toml")
        with open(scen, "w") as f:
            f.write(scenario_text(f"fault-{kind}", target, scrape, a.rps, a.seconds))
        out = os.path.join(run_dir, "out")
        load_before = loadavg()
        started = time.time()
        run = spawn("peakload run", [a.peakload, "run", scen, "--target", target, "--out", out,
                                     "--no-tui", "--quiet", "--threads", "1"], cpu=LOAD_CPU,
                    stdout=open(os.path.join(run_dir, "run.log"), "w"), stderr=subprocess.STDOUT)
        planted = Planted(kind, ctx)
        time.sleep(max(0.0, started + a.fault_at - time.time()))
        fault_start = time.time()
        planted.start(a.duration)
        time.sleep(max(0.0, fault_start + a.duration - time.time()))
        planted.stop()
        fault_end = time.time()
        try:
            run.wait(a.seconds + 90)
        except subprocess.TimeoutExpired:
            raise RuntimeError("peakload run did not finish in time")
        results = os.path.join(out, "results.json")
        if not os.path.exists(results):
            raise RuntimeError(f"no results.json (peakload run exited {run.returncode})")
        with open(results) as f:
            res = json.load(f)
        d = subprocess.run([a.peakload, "diagnose", results, "--json"], capture_output=True, text=True,
                           timeout=120)
        if d.returncode != 0:
            raise RuntimeError(f"peakload diagnose: {d.stderr.strip()}")
        diag = json.loads(d.stdout)
        with open(os.path.join(run_dir, "diagnosis.json"), "w") as f:
            f.write(d.stdout)
        t0 = datetime.datetime.fromisoformat(res["started_at"].replace("Z", "+00:00")).timestamp()
        window = [round(fault_start - t0, 1), round(fault_end - t0, 1)]
        ok, top, how = grade(fault, diag, window)
        return {
            "loadavg_before_after": [load_before, loadavg()],
            "kind": kind,
            "rep": rep,
            "ok": ok,
            "fault_window_s": window,
            "how": how,
            "note": planted.note,
            "healthy": diag.get("healthy"),
            "sli": diag.get("sli"),
            "top": top and {k: top.get(k) for k in ("kind", "signal", "score", "window", "summary")},
            "findings": [(f["kind"], f["signal"], f["score"]) for f in diag.get("findings", [])],
            "generator_limited": any(f["kind"] == "generator_limited" for f in diag.get("findings", [])),
            "moved": [(m["kind"], m["signal"], m["start_s"], m["end_s"]) for m in diag.get("moved", [])],
            "unknown": diag.get("unknown", []),
            "ranking_top5": [(r["signal"], r["score"], r.get("kind")) for r in diag.get("ranking", [])[:5]],
            "capacity": res.get("capacity"),
            "requests": res["summary"]["requests"],
            "error_rate": res["summary"]["error_rate"],
            "p99_ms": res["summary"]["latency_ms"].get("p99"),
            "generator_kept_up": res.get("generator", {}).get("kept_up"),
            "infra_notes": (res.get("infra") or {}).get("notes", []),
        }
    finally:
        CLEAN.run()
        CLEAN.actions = saved


def regrade(outroot, peakload):
    """Each kept run's results.json diagnosed again by `peakload` and graded: the same data
    read by another build. The rows are rewritten in place of the live diagnosis."""
    with open(os.path.join(outroot, "faults.json")) as f:
        rows = json.load(f)
    for r in rows:
        if r.get("error"):
            continue
        results = os.path.join(outroot, f"{r['kind']}-{r['rep']}", "out", "results.json")
        d = subprocess.run([peakload, "diagnose", results, "--json"], capture_output=True, text=True,
                           timeout=120)
        if d.returncode != 0:
            raise RuntimeError(f"peakload diagnose {results}: {d.stderr.strip()}")
        diag = json.loads(d.stdout)
        ok, top, how = grade(FAULTS[r["kind"]], diag, r.get("fault_window_s"))
        r.update(ok=ok, how=how, healthy=diag.get("healthy"), sli=diag.get("sli"),
                 top=top and {k: top.get(k) for k in ("kind", "signal", "score", "window", "summary")},
                 findings=[(f["kind"], f["signal"], f["score"]) for f in diag.get("findings", [])],
                 moved=[(m["kind"], m["signal"], m["start_s"], m["end_s"]) for m in diag.get("moved", [])])
    return rows


def loadavg():
    """The host's 1-minute load average: other work on a shared machine perturbs the runs."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def drop_db(db):
    ids = mysql(f"SELECT id FROM information_schema.processlist WHERE db = '{db}' AND id <> CONNECTION_ID()")
    for i in ids.split():
        try:
            mysql(f"KILL {int(i)}")
        except RuntimeError:
            pass
    mysql(f"DROP DATABASE IF EXISTS {db}")


def memory_stat(cg):
    with open(os.path.join(cg, "memory.stat")) as f:
        return {k: int(v) for k, v in (line.split() for line in f)}


def private_binary(path):
    """A copy of `path` whose pages are in no one's page cache: the process started from it
    reads its code from disk, and that cache is charged to the process's own memory cgroup
    (a page is charged to the cgroup that first brings it in). Started from the shared
    binary, its code would be cache charged to whoever ran it first, out of the limit's reach
    (the baseline's memory-limit runs: a 5-8 MiB charge that no limit could squeeze)."""
    d = tempfile.mkdtemp(prefix="plfault-bin-", dir="/var/tmp")
    CLEAN.push(f"remove {d}", lambda: shutil.rmtree(d, ignore_errors=True))
    copy = os.path.join(d, os.path.basename(path))
    shutil.copy2(path, copy)
    fd = os.open(copy, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return copy


def disk_dir_beside_mariadb():
    """A scratch directory on the filesystem that holds MariaDB's data (its redo log is
    flushed at every commit: innodb_flush_log_at_trx_commit = 1)."""
    datadir = mysql("SELECT @@datadir").strip()
    flush = mysql("SELECT @@innodb_flush_log_at_trx_commit").strip()
    if flush != "1":
        log(f"note: innodb_flush_log_at_trx_commit = {flush}: commits do not wait for the disk")
    d = tempfile.mkdtemp(prefix="plfault-io-", dir="/var/tmp")
    CLEAN.push(f"remove {d}", lambda: shutil.rmtree(d, ignore_errors=True))
    if os.stat(d).st_dev != os.stat(datadir).st_dev:
        log(f"note: {d} is not on the filesystem of MariaDB's {datadir}")
    return d


def lift_memory_limit(cg):
    with open(os.path.join(cg, "memory.limit_in_bytes"), "w") as f:
        f.write("-1")


def remove_cgroup(cg, lift):
    """Lifts the cgroup's limit (`lift`), then removes it once its processes are gone."""
    try:
        lift()
    except OSError:
        pass
    for _ in range(50):
        try:
            os.rmdir(cg)
            return
        except OSError:
            time.sleep(0.2)


def bit(r) -> bool:
    """Whether the users were degraded during the fault window (latency or errors, any episode
    overlapping it): a fault that did not reach the users can only be "healthy"."""
    sli = r.get("sli") or {}
    w0, w1 = r.get("fault_window_s") or (0, 0)
    spans = [(e["start_s"], e["end_s"]) for e in sli.get("episodes", [])]
    for key in ("latency_ms", "error_rate"):
        x = sli.get(key) or {}
        if x.get("degraded"):
            spans.append((x["start_s"], x["end_s"]))
    return any(a < w1 + 5 and b > w0 for a, b in spans)


def table(rows):
    lines = ["| fault | runs | right | users degraded in the window | expected first | what the diagnosis said first (per run) |", "|---|---|---|---|---|---|"]
    for kind in FAULTS:
        rs = [r for r in rows if r["kind"] == kind]
        if not rs:
            continue
        said = []
        for r in rs:
            if r.get("error"):
                said.append(f"run failed: {r['error']}")
            elif r["top"]:
                w = r["top"].get("window") or {}
                said.append(f"{'✓' if r['ok'] else '✗'} {r['top']['kind']} `{r['top']['signal']}` ({r['top']['score']}, "
                            f"t={w.get('start_s')}–{w.get('end_s')})")
            else:
                said.append(f"{'✓' if r['ok'] else '✗'} {'healthy' if r['healthy'] else 'degraded'}, no finding")
            if r.get("how"):
                said[-1] += f"; {r['how']}: " + ", ".join(
                    f"{m[0]} t={m[2]}–{m[3]}" for m in r.get("moved", []) if len(m) > 2)
            if r.get("generator_limited"):
                said[-1] += " [+generator_limited]"
        right = sum(1 for r in rs if r.get("ok"))
        hit = sum(1 for r in rs if not r.get("error") and bit(r))
        lines.append(f"| {kind} | {len(rs)} | {right} | {hit} | {FAULTS[kind].expected} | {'; '.join(said)} |")
    total = [r for r in rows]
    lines.append(f"\nright: {sum(1 for r in total if r.get('ok'))} of {len(total)} runs")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description="outside fault suite for peakload's diagnosis")
    p.add_argument("--peakload", required="--table" not in sys.argv)
    p.add_argument("--stack", required="--table" not in sys.argv and "--regrade" not in sys.argv)
    p.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}, once, shorter runs")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--kinds", help="comma-separated subset of: " + ", ".join(FAULTS))
    p.add_argument("--rps", type=int, default=40, help="arrivals/s (about 3.5 requests each)")
    p.add_argument("--seconds", type=int, default=70)
    p.add_argument("--fault-at", type=float, default=25.0)
    p.add_argument("--duration", type=float, default=18.0)
    p.add_argument("--busy-loops", type=int, default=2, help="processes the cpu fault pins to the stack's core")
    p.add_argument("--memory-fraction", type=float, default=0.6,
                   help="memory-limit: the share of the API's mapped code left inside its limit")
    p.add_argument("--host-metrics", action="store_true",
                   help="also scrape the host's per-CPU time and pressure (host_metrics.py, node_exporter's names)")
    p.add_argument("--out", help="keep each run's files here (default: a temp dir, removed)")
    p.add_argument("--table", metavar="FAULTS_JSON", help="print the table of a kept run's faults.json and exit")
    p.add_argument("--regrade", metavar="OUT_DIR",
                   help="diagnose a kept run's results again with --peakload, grade, print the table and exit")
    a = p.parse_args()
    if a.table:
        with open(a.table) as f:
            print(table(json.load(f)))
        return
    if a.regrade:
        print(table(regrade(a.regrade, a.peakload)))
        return
    kinds = a.kinds.split(",") if a.kinds else list(FAULTS)
    if a.quick:
        kinds = a.kinds.split(",") if a.kinds else QUICK
        a.repeat, a.seconds, a.fault_at, a.duration = 1, 45, 15.0, 12.0
    for k in kinds:
        if k not in FAULTS:
            sys.exit(f"unknown fault {k!r}; known: {', '.join(FAULTS)}")
    if "memory-limit" in kinds and cgroup_v2_memory() is None:
        log("cgroup v2 has no memory controller on this machine (it is bound to cgroup v1); "
            "the memory-limit fault uses a cgroup v1 memory child instead")
        if memory_cgroup_parent() is None:
            log("no writable memory cgroup either: skipping memory-limit")
            kinds.remove("memory-limit")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    atexit.register(CLEAN.run)
    outroot = a.out or tempfile.mkdtemp(prefix="peakload-faults-")
    if not a.out:
        CLEAN.push(f"remove {outroot}", lambda: shutil.rmtree(outroot, ignore_errors=True))
    os.makedirs(outroot, exist_ok=True)
    rows = []
    began = time.time()
    for rep in range(1, a.repeat + 1):
        for kind in kinds:
            log(f"{kind} #{rep}: {FAULTS[kind].what}")
            try:
                r = one_run(kind, rep, a, outroot)
            except Exception as e:
                r = {"kind": kind, "rep": rep, "ok": False, "error": str(e), "top": None, "healthy": None}
            rows.append(r)
            with open(os.path.join(outroot, "faults.json"), "w") as f:
                json.dump(rows, f, indent=2)
            if r.get("error"):
                log(f"  run failed: {r['error']}")
            else:
                top = r["top"]
                log(f"  {'RIGHT' if r['ok'] else 'WRONG'}: healthy={r['healthy']} top="
                    f"{top and (top['kind'], top['signal'], top['score'], top['window'])} "
                    f"fault window {r['fault_window_s']} load {r['loadavg_before_after']} {r['note']}")
    print(table(rows))
    print(f"\n{len(rows)} runs in {time.time() - began:.0f} s; per-run files: "
          f"{outroot if a.out else '(removed; pass --out DIR to keep them)'}")


if __name__ == "__main__":
    main()
