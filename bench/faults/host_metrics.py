#!/usr/bin/env python3
"""A tiny stand-in for node_exporter (not installed here): serves ``/metrics`` with the host's
per-CPU time by mode (``node_cpu_seconds_total{cpu,mode}``, from /proc/stat, in seconds) and
pressure stall totals (``node_pressure_{cpu,io,memory}_waiting_seconds_total``, from
/proc/pressure, the ``some`` line), under node_exporter's own names, so that ``faults.py
--host-metrics`` gives the diagnosis the host's view beside the stack's own.

    python3 host_metrics.py [--port 0] [--max-seconds 600]

Prints ``listening on http://127.0.0.1:PORT`` and exits after --max-seconds.
"""
import argparse
import http.server
import os
import threading

MODES = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
HZ = os.sysconf("SC_CLK_TCK")


def text():
    out = ["# TYPE node_cpu_seconds_total counter"]
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if not parts or not parts[0].startswith("cpu") or parts[0] == "cpu":
                continue
            cpu = parts[0][3:]
            for mode, v in zip(MODES, parts[1:]):
                out.append(f'node_cpu_seconds_total{{cpu="{cpu}",mode="{mode}"}} {int(v) / HZ:.2f}')
    for res in ("cpu", "io", "memory"):
        try:
            with open(f"/proc/pressure/{res}") as f:
                some = f.readline().split()
        except OSError:
            continue
        total = next((kv.split("=")[1] for kv in some if kv.startswith("total=")), None)
        if total is not None:
            name = f"node_pressure_{res}_waiting_seconds_total"
            out.append(f"# TYPE {name} counter")
            out.append(f"{name} {int(total) / 1e6:.6f}")
    return ("\n".join(out) + "\n").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = text()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=600)
    a = p.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Timer(a.max_seconds, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
