#!/usr/bin/env python3
"""Side-by-side benchmark of peakload against wrk and oha on loopback.

One nginx worker is pinned to CPU 0; each load generator in turn is pinned to CPU 1, so the
figures compare the generators' own cost, not a fight for cores. The figure that holds on a
shared, noisy machine is CPU time per request (user + sys from /usr/bin/time, per 100k
requests); requests/s is printed beside it. Ratios are against peers measured in the same run.

    python3 bench/bench.py                 # the comparison (about 2 minutes)
    python3 bench/bench.py --baseline OLD  # the same with a second peakload binary, in the same run
    python3 bench/bench.py --http2         # plus HTTP/2 against h2load and oha --http2
    python3 bench/bench.py --memory 600    # plus RSS after 1 minute vs at the end of a 600 s run

Needs nginx, wrk, h2load (Debian: nginx-light wrk nghttp2-client), oha (crates.io: cargo install
oha) and a release build of peakload (cargo build --release -p peakload, or --peakload PATH).
Missing peers are installed (apt-get, cargo install) unless --no-install is given. Traffic goes
to 127.0.0.1 only; every run is bounded.
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
# HTTP/2: over TLS (ALPN h2, a self-signed certificate) and h2c with prior knowledge.
TLS_PORT = 18443
H2C_PORT = 18089
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find(name, extra=()):
    for p in extra:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def self_signed(tmp):
    """A certificate for 127.0.0.1 made here, so the TLS server needs nothing from outside."""
    key, crt = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    if not os.path.exists(crt):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", crt],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return key, crt


def start_nginx(tmp):
    key, crt = self_signed(tmp)
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
              server {{
                listen 127.0.0.1:{TLS_PORT} ssl http2 reuseport backlog=4096;
                ssl_certificate {crt};
                ssl_certificate_key {key};
                http2_max_requests 10000000;
                http2_max_concurrent_streams 256;
                location = / {{ return 200 "ok\\n"; }}
              }}
              server {{
                listen 127.0.0.1:{H2C_PORT} http2 reuseport backlog=4096;
                http2_max_requests 10000000;
                http2_max_concurrent_streams 256;
                location = / {{ return 200 "ok\\n"; }}
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


def run_oha(oha, seconds, conns, rate=None, url=URL + "/", extra=()):
    cmd = [oha, "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(conns), *extra, url]
    if rate:
        cmd[1:1] = ["-q", str(rate), "--latency-correction"]
    out, cpu, _, p = timed(cmd)
    try:
        j = json.loads(out)
    except json.JSONDecodeError:
        sys.exit(f"oha output was not JSON: {out[:500]} {p.stderr[-500:]}")
    n = sum(j.get("statusCodeDistribution", {}).values())
    return n, cpu, n / seconds


def run_h2load(h2load, seconds, conns, url):
    """h2load, one stream per connection at a time (-m1), as peakload's VUs use theirs."""
    out, cpu, _, p = timed([h2load, "-t1", f"-c{conns}", "-m1", "-D", str(seconds), url])
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    if not m:
        sys.exit(f"h2load output not understood: {out[-800:]} {p.stderr[-500:]}")
    n = int(m.group(1))
    return n, cpu, n / seconds


def run_peakload(peakload, scenario_text, tmp, name, extra=()):
    path = os.path.join(tmp, f"{name}.toml")
    with open(path, "w") as f:
        f.write(scenario_text)
    out_dir = os.path.join(tmp, f"out-{name}")
    _, cpu, rss, p = timed([peakload, "run", path, "--out", out_dir, "--quiet", "--threads", "1", *extra])
    if p.returncode not in (0, 1):
        sys.exit(f"peakload failed ({p.returncode}): {p.stderr[-2000:]}")
    r = json.load(open(os.path.join(out_dir, "results.json")))
    return r["summary"]["requests"], cpu, r["summary"]["rps"], r, rss


def install_missing(http2):
    """Installs the peers that are missing: Debian packages by apt-get, oha by cargo install."""
    debs = [(tool, pkg) for tool, pkg in [("nginx", "nginx-light"), ("wrk", "wrk"), ("curl", "curl"),
                                          ("openssl", "openssl")] + ([("h2load", "nghttp2-client")] if http2 else [])
            if not shutil.which(tool)]
    if debs and shutil.which("apt-get"):
        print("installing " + " ".join(p for _, p in debs), file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", *[p for _, p in debs]], check=False,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not find("oha", [os.path.expanduser("~/.cargo/bin/oha")]) and shutil.which("cargo"):
        print("installing oha (cargo install oha --locked; several minutes)", file=sys.stderr)
        subprocess.run(["cargo", "install", "oha", "--locked"], check=False)


def per100k(n, cpu):
    return cpu / n * 100_000 if n else float("nan")


def scenario(load, steps, base=URL, top=""):
    return f'name = "bench"\nbase_url = "{base}"\ntimeout = "10s"\n{top}[load]\n{load}\n[[journey]]\nname = "j"\n{steps}'


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
    ap.add_argument("--peakload", help="the peakload binary (default: target/release/peakload, then PATH)")
    ap.add_argument("--baseline", help="a second peakload binary (e.g. main's) measured in the same run")
    ap.add_argument("--http2", action="store_true", help="also HTTP/2 (TLS and h2c) against h2load and oha --http2")
    ap.add_argument("--http2-only", action="store_true", help="only the HTTP/2 comparison")
    ap.add_argument("--no-install", action="store_true", help="do not install missing peers")
    ap.add_argument("--memory", type=int, default=0, help="also run a fixed-rate run this long (s) and compare RSS")
    ap.add_argument("--memory-only", action="store_true", help="skip the comparison, run only the memory check")
    args = ap.parse_args()
    http2 = args.http2 or args.http2_only

    if not args.no_install and not args.memory_only:
        install_missing(http2)
    peakload = args.peakload or find("peakload", [os.path.join(ROOT, "target/release/peakload")])
    wrk = find("wrk")
    oha = find("oha", [os.path.expanduser("~/.cargo/bin/oha"), "/opt/oha/bin/oha"])
    h2load = find("h2load")
    needed = [("peakload (cargo build --release -p peakload)", peakload), ("nginx (apt-get install nginx-light)", shutil.which("nginx"))]
    if not args.memory_only:
        needed += [("wrk (apt-get install wrk)", wrk), ("oha (cargo install oha)", oha)]
    if http2:
        needed += [("h2load (apt-get install nghttp2-client)", h2load), ("openssl", shutil.which("openssl"))]
    missing = [n for n, p in needed if not p]
    if missing:
        sys.exit("missing: " + ", ".join(missing))

    tmp = tempfile.mkdtemp(prefix="peakload-bench-")
    if args.memory_only:
        memory(peakload, tmp, args.memory or 600, args.rate)
        return
    nginx = start_nginx(tmp)
    s, c = args.seconds, args.connections
    # Each peakload binary measured: ("peakload", path) and, with --baseline, ("baseline", path).
    builds = [("peakload", peakload)] + ([("baseline", args.baseline)] if args.baseline else [])
    rows = {}
    extra_lines = []
    try:
        if not args.http2_only:
            rows["wrk closed GET"] = run_wrk(wrk, s, c)
            rows["oha closed GET"] = run_oha(oha, s, c)
            rows[f"oha open {args.rate}/s"] = run_oha(oha, s, c, args.rate)
            for name, binary in builds:
                n, cpu, rps, _, _ = run_peakload(binary, scenario(f'vus = {c}\nduration = "{s}s"', GET_STEP), tmp, f"{name}-closed")
                rows[f"{name} closed GET"] = (n, cpu, rps)
                n, cpu, rps, r, _ = run_peakload(binary, scenario(f'rps = {args.rate}\nduration = "{s}s"\nmax_vus = {c}', GET_STEP), tmp, f"{name}-open")
                rows[f"{name} open {args.rate}/s"] = (n, cpu, rps)
                open_p99 = r["summary"]["latency_ms"]["p99"]
                late = r.get("late_iterations", "?")
                n, cpu, rps, r4, _ = run_peakload(binary, scenario(f'vus = {c}\nduration = "{s}s"', JOURNEY_4), tmp, f"{name}-journey4")
                rows[f"{name} closed 4-step journey"] = (n, cpu, rps)
                extra_lines.append(f"  ({name}: open-model p99 {open_p99} ms, late iterations {late}; "
                                   f"4-step journey errors {r4['summary']['errors']})")
        if http2:
            tls_url, h2c_url = f"https://127.0.0.1:{TLS_PORT}/", f"http://127.0.0.1:{H2C_PORT}/"
            rows["h2load h2 TLS GET"] = run_h2load(h2load, s, c, tls_url)
            rows["oha --http2 TLS GET"] = run_oha(oha, s, c, url=tls_url, extra=["--http2", "--insecure", "-p", "1"])
            rows["h2load h2 h2c GET"] = run_h2load(h2load, s, c, h2c_url)
            rows["oha --http2 h2c GET"] = run_oha(oha, s, c, url=h2c_url, extra=["--http2", "-p", "1"])
            for name, binary in builds:
                for label, base in [("TLS", f"https://127.0.0.1:{TLS_PORT}"), ("h2c", f"http://127.0.0.1:{H2C_PORT}")]:
                    text = scenario(f'vus = {c}\nduration = "{s}s"', GET_STEP, base=base, top='http_version = "2"\n')
                    n, cpu, rps, r, _ = run_peakload(binary, text, tmp, f"{name}-h2-{label}", extra=["--insecure"])
                    h2_share = sum((st.get("timing") or {}).get("http2_responses", 0) for st in r.get("steps", []))
                    rows[f"{name} h2 {label} GET"] = (n, cpu, rps)
                    extra_lines.append(f"  ({name} h2 {label}: {h2_share} of {n} responses over HTTP/2, errors {r['summary']['errors']})")
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)

    print(f"\n{'tool / mode':34} {'requests':>10} {'req/s':>10} {'CPU-s/100k':>11}")
    for k, (n, cpu, rps) in rows.items():
        print(f"{k:34} {n:>10} {rps:>10.0f} {per100k(n, cpu):>11.3f}")
    f = {k: per100k(v[0], v[1]) for k, v in rows.items()}
    print("\nratios (CPU per request; target in brackets):")
    for name, _ in builds:
        if not args.http2_only:
            pk, wk, oh = f[f"{name} closed GET"], f["wrk closed GET"], f["oha closed GET"]
            po, oo = f[f"{name} open {args.rate}/s"], f[f"oha open {args.rate}/s"]
            pj = f[f"{name} closed 4-step journey"]
            print(f"  {name} / wrk, closed GET          {pk / wk:6.2f}  [≤ 1.25]")
            print(f"  {name} / oha, closed GET          {pk / oh:6.2f}  [≤ 0.80]")
            print(f"  {name} / oha, open {args.rate}/s       {po / oo:6.2f}  [≤ 0.50]")
            print(f"  {name}: 4-step journey / single GET {pj / pk:6.2f}  [≤ 2.00]")
        if http2:
            for label in ["TLS", "h2c"]:
                ph = f[f"{name} h2 {label} GET"]
                print(f"  {name} / h2load, HTTP/2 {label}        {ph / f[f'h2load h2 {label} GET']:6.2f}")
                print(f"  {name} / oha --http2, {label}          {ph / f[f'oha --http2 {label} GET']:6.2f}")
    for line in extra_lines:
        print(line)

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
