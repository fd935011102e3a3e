#!/usr/bin/env python3
"""Side-by-side benchmark of peakload against wrk and oha on loopback.

One nginx worker is pinned to CPU 0; each load generator in turn is pinned to CPU 1, so the
figures compare the generators' own cost, not a fight for cores. The figure that holds on a
shared, noisy machine is CPU time per request (user + sys from /usr/bin/time, per 100k
requests); requests/s is printed beside it. Ratios are against peers measured in the same run.

    python3 bench/bench.py                 # the comparison (about 2 minutes)
    python3 bench/bench.py --memory 600    # plus RSS after 1 minute vs at the end of a 600 s run

Needs nginx, wrk (Debian), oha (crates.io: cargo install oha) and a release build of peakload
(cargo build --release -p peakload). Traffic goes to 127.0.0.1 only; every run is bounded.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

PORT = 18088
URL = f"http://127.0.0.1:{PORT}"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find(name, extra=()):
    for p in extra:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def start_nginx(tmp):
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(textwrap.dedent(f"""
            worker_processes 1;
            worker_cpu_affinity 01;
            daemon off;
            pid {tmp}/nginx.pid;
            error_log {tmp}/error.log warn;
            events {{ worker_connections 4096; }}
            http {{
              access_log off;
              keepalive_requests 10000000;
              keepalive_timeout 300s;
              client_body_temp_path {tmp}/body;
              proxy_temp_path {tmp}/proxy;
              fastcgi_temp_path {tmp}/fastcgi;
              uwsgi_temp_path {tmp}/uwsgi;
              scgi_temp_path {tmp}/scgi;
              server {{
                listen 127.0.0.1:{PORT} reuseport backlog=4096;
                location = / {{ return 200 "ok\\n"; }}
                location /api/ {{
                  default_type application/json;
                  return 200 '{{"token":"t0k3n","id":42,"items":[{{"sku":"a-1","price":9.5}}]}}';
                }}
              }}
            }}
        """))
    proc = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", conf, "-p", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        try:
            subprocess.run(["curl", "-fsS", "-o", "/dev/null", URL + "/"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return proc
        except subprocess.CalledProcessError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("nginx did not start")


def timed(cmd, cwd=None):
    """Runs cmd pinned to CPU 1 under /usr/bin/time; returns (stdout, cpu seconds, max RSS KiB)."""
    full = ["/usr/bin/time", "-f", "TIME %U %S %M", "taskset", "-c", "1"] + cmd
    p = subprocess.run(full, cwd=cwd, capture_output=True, text=True)
    m = re.search(r"TIME ([\d.]+) ([\d.]+) (\d+)", p.stderr)
    if not m:
        sys.exit(f"could not time {cmd}: {p.stderr[-2000:]}")
    return p.stdout, float(m.group(1)) + float(m.group(2)), int(m.group(3)), p


def run_wrk(wrk, seconds, conns):
    out, cpu, _, _ = timed([wrk, "-t1", f"-c{conns}", f"-d{seconds}s", URL + "/"])
    n = int(re.search(r"(\d+) requests in", out).group(1))
    return n, cpu, n / seconds


def run_oha(oha, seconds, conns, rate=None):
    cmd = [oha, "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(conns), URL + "/"]
    if rate:
        cmd[1:1] = ["-q", str(rate), "--latency-correction"]
    out, cpu, _, p = timed(cmd)
    try:
        j = json.loads(out)
    except json.JSONDecodeError:
        sys.exit(f"oha output was not JSON: {out[:500]} {p.stderr[-500:]}")
    n = sum(j.get("statusCodeDistribution", {}).values())
    return n, cpu, n / seconds


def run_peakload(peakload, scenario_text, tmp, name):
    path = os.path.join(tmp, f"{name}.toml")
    with open(path, "w") as f:
        f.write(scenario_text)
    out_dir = os.path.join(tmp, f"out-{name}")
    _, cpu, rss, p = timed([peakload, "run", path, "--out", out_dir, "--quiet", "--threads", "1"])
    if p.returncode not in (0, 1):
        sys.exit(f"peakload failed ({p.returncode}): {p.stderr[-2000:]}")
    r = json.load(open(os.path.join(out_dir, "results.json")))
    return r["summary"]["requests"], cpu, r["summary"]["rps"], r, rss


def per100k(n, cpu):
    return cpu / n * 100_000 if n else float("nan")


def scenario(load, steps):
    return f'name = "bench"\nbase_url = "{URL}"\ntimeout = "10s"\n[load]\n{load}\n[[journey]]\nname = "j"\n{steps}'


GET_STEP = '  [[journey.step]]\n  name = "get"\n  path = "/"\n'
JOURNEY_4 = """  [[journey.step]]
  name = "login"
  method = "POST"
  path = "/api/login"
  json = { email = "user{{vu}}@example.com", password = "pw-{{iteration}}" }
  extract = { token = { json = "$.token" } }
  [[journey.step]]
  name = "browse"
  path = "/api/products"
  query = { page = "{{random_int 1 9}}", q = "shoe" }
  headers = { Authorization = "Bearer {{token}}" }
  extract = { sku = { json = "$.items[0].sku" } }
  [[journey.step]]
  name = "add"
  method = "POST"
  path = "/api/cart/items"
  headers = { Authorization = "Bearer {{token}}", "X-Request-Id" = "{{uuid}}" }
  json = { sku = "{{sku}}", qty = "{{random_int 1 3}}" }
  check = { status = 200 }
  [[journey.step]]
  name = "order"
  path = "/api/orders/{{random_int 1 1000}}"
  headers = { Authorization = "Bearer {{token}}" }
  extract = { id = { json = "$.id" } }
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--memory", type=int, default=0, help="also run a fixed-rate run this long (s) and compare RSS")
    ap.add_argument("--memory-only", action="store_true", help="skip the comparison, run only the memory check")
    args = ap.parse_args()

    peakload = find("peakload", [os.path.join(ROOT, "target/release/peakload")])
    wrk = find("wrk")
    oha = find("oha", [os.path.expanduser("~/.cargo/bin/oha"), "/opt/oha/bin/oha"])
    needed = [("peakload (cargo build --release -p peakload)", peakload), ("nginx (apt-get install nginx-light)", shutil.which("nginx"))]
    if not args.memory_only:
        needed += [("wrk (apt-get install wrk)", wrk), ("oha (cargo install oha)", oha)]
    missing = [n for n, p in needed if not p]
    if missing:
        sys.exit("missing: " + ", ".join(missing))

    tmp = tempfile.mkdtemp(prefix="peakload-bench-")
    if args.memory_only:
        memory(peakload, tmp, args.memory or 600, args.rate)
        return
    nginx = start_nginx(tmp)
    s, c = args.seconds, args.connections
    rows = {}
    try:
        rows["wrk closed GET"] = run_wrk(wrk, s, c)
        rows["oha closed GET"] = run_oha(oha, s, c)
        n, cpu, rps, _, _ = run_peakload(peakload, scenario(f'vus = {c}\nduration = "{s}s"', GET_STEP), tmp, "closed")
        rows["peakload closed GET"] = (n, cpu, rps)
        rows[f"oha open {args.rate}/s"] = run_oha(oha, s, c, args.rate)
        n, cpu, rps, r, _ = run_peakload(peakload, scenario(f'rps = {args.rate}\nduration = "{s}s"\nmax_vus = {c}', GET_STEP), tmp, "open")
        rows[f"peakload open {args.rate}/s"] = (n, cpu, rps)
        open_p99 = r["summary"]["latency_ms"]["p99"]
        n, cpu, rps, r4, _ = run_peakload(peakload, scenario(f'vus = {c}\nduration = "{s}s"', JOURNEY_4), tmp, "journey4")
        rows["peakload closed 4-step journey"] = (n, cpu, rps)
        errors4 = r4["summary"]["errors"]
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)

    print(f"\n{'tool / mode':34} {'requests':>10} {'req/s':>10} {'CPU-s/100k':>11}")
    for k, (n, cpu, rps) in rows.items():
        print(f"{k:34} {n:>10} {rps:>10.0f} {per100k(n, cpu):>11.3f}")
    f = {k: per100k(v[0], v[1]) for k, v in rows.items()}
    pk, wk, oh = f["peakload closed GET"], f["wrk closed GET"], f["oha closed GET"]
    po, oo = f[f"peakload open {args.rate}/s"], f[f"oha open {args.rate}/s"]
    pj = f["peakload closed 4-step journey"]
    print("\nratios (CPU per request; target in brackets):")
    print(f"  peakload / wrk, closed GET          {pk / wk:6.2f}  [≤ 1.25]")
    print(f"  peakload / oha, closed GET          {pk / oh:6.2f}  [≤ 0.80]")
    print(f"  peakload / oha, open {args.rate}/s       {po / oo:6.2f}  [≤ 0.80]")
    print(f"  4-step journey / single GET         {pj / pk:6.2f}  [≤ 2.00]")
    print(f"  (open-model p99 {open_p99} ms; 4-step journey errors {errors4})")

    if args.memory:
        memory(peakload, tmp, args.memory, args.rate)


def memory(peakload, tmp, seconds, rate):
    """RSS after the first minute vs at the end of a long fixed-rate run."""
    nginx = start_nginx(tmp)
    path = os.path.join(tmp, "memory.toml")
    with open(path, "w") as f:
        f.write(scenario(f'rps = {rate}\nduration = "{seconds}s"\nmax_vus = 64', GET_STEP))
    p = subprocess.Popen(["taskset", "-c", "1", peakload, "run", path, "--out", os.path.join(tmp, "out-mem"), "--quiet", "--threads", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = []
    try:
        start = time.time()
        while p.poll() is None:
            with open(f"/proc/{p.pid}/status") as st:
                rss = int(re.search(r"VmRSS:\s+(\d+)", st.read()).group(1))
            samples.append((time.time() - start, rss))
            time.sleep(5)
    except (FileNotFoundError, AttributeError):
        pass
    finally:
        p.wait()
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)
    at_1m = next((r for t, r in samples if t >= 60), None)
    last = samples[-1][1] if samples else None
    r = json.load(open(os.path.join(tmp, "out-mem", "results.json")))
    n = r["summary"]["requests"]
    print(f"\nmemory: {n} requests over {seconds}s at {rate}/s: RSS {at_1m} KiB after 1 min, {last} KiB at the end"
          + (f" ({(last - at_1m) / at_1m * 100:+.1f}%, {(last - at_1m) * 1024 / max(n, 1):.2f} bytes/request)" if at_1m and last else ""))


if __name__ == "__main__":
    main()
