#!/usr/bin/env python3
"""The daemon under load: the status route's latency while it drives a drill.

    python3 tests/bench/daemon_bench.py [--rate 2000] [--seconds 20]

Starts nginx (Debian's nginx-light, one worker) on 127.0.0.1, builds drill in release
mode, starts `drill daemon --listen` with a token, triggers a run through the API that holds
RATE req/s against nginx for SECONDS (a drill with an exec fault in the middle), and from a
second client calls `GET /api/v1/runs/ID` at 50 req/s (a new connection each time, like
curl): prints p50/p95/p99/max of that route while the run drives the traffic, against the
same route on the idle daemon, and the rate nginx counted. Traffic goes to 127.0.0.1 only.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--rate", type=int, default=2000)
parser.add_argument("--seconds", type=int, default=20)
args = parser.parse_args()


def nginx():
    path = shutil.which("nginx") or sys.exit("nginx is missing: apt-get install nginx-light")
    d = tempfile.mkdtemp(prefix="drill-dbench-")
    with open(os.path.join(d, "small.json"), "w") as f:
        f.write('{"id":1,"name":"drill","ok":true}\n')
    port = 19000 + os.getpid() % 1000
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {d};
        location = /small.json {{ default_type application/json; }}
        location = /status {{ stub_status; }}
    }}
}}
""")
    subprocess.run([path, "-c", conf, "-p", d], check=True)
    time.sleep(0.3)
    return d, conf, port


def served(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status") as r:
        return int(r.read().decode().splitlines()[2].split()[2])


def get(url, token):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        body = r.read()
    return (time.perf_counter() - t0) * 1000, body


def sample(url, token, seconds, rate=50):
    out = []
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        due = start + n / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        out.append(get(url, token)[0])
        n += 1
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def main():
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "drill"], cwd=ROOT, check=True)
    drill = os.path.join(ROOT, "target/release/drill")
    d, conf, port = nginx()
    work = tempfile.mkdtemp(prefix="drill-dbench-work-")
    pdir = os.path.join(work, "playbooks")
    os.makedirs(pdir)
    hold = args.seconds
    with open(os.path.join(pdir, "bench.yaml"), "w") as f:
        f.write(f"""apiVersion: drill/v1
kind: Playbook
metadata: {{name: bench}}
target:
  base_url: http://127.0.0.1:{port}
  allow: {{http: ["127.0.0.1"], exec: ["true"]}}
traffic:
  requests: [{{name: small, path: /small.json}}]
  profile: [{{rate: {args.rate}/s, hold: {hold + 4}s}}]
  max_in_flight: 2000
drills:
  - name: hook
    at: 2s
    drill:
      baseline: 2s
      hold: {max(1, hold - 2)}s
      recovery: 1s
      faults: [{{name: noop, action: exec, exec: {{inject: {{command: ["true"]}}, revert: {{command: ["true"]}}}}}}]
""")
    tokens = os.path.join(work, "tokens")
    token = subprocess.run([drill, "token", "add", "--tokens", tokens, "--role", "operator", "--subject", "bench"],
                           capture_output=True, text=True, check=True).stdout.strip()
    daemon = subprocess.Popen([drill, "daemon", "--playbooks", pdir, "--listen", "127.0.0.1:0", "--tokens", tokens,
                               "--db", os.path.join(work, "history.db"), "--report-dir", os.path.join(work, "reports")],
                              stderr=subprocess.PIPE, text=True)
    base = None
    for line in daemon.stderr:
        if "API on http://" in line:
            base = line.split("API on ")[1].strip().rstrip("/").removesuffix("/api/v1")
            break
    threading.Thread(target=lambda: [None for _ in daemon.stderr], daemon=True).start()
    try:
        req = urllib.request.Request(f"{base}/api/v1/runs", data=json.dumps({"playbook": "bench"}).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        before = served(port)
        t0 = time.monotonic()
        with urllib.request.urlopen(req) as r:
            run = json.loads(r.read())["run"]
        url = f"{base}/api/v1/runs/{run}"
        time.sleep(2.5)
        busy = sample(url, token, hold - 3)
        while json.loads(get(url, token)[1])["run"]["status"] == "running":
            time.sleep(0.2)
        wall = time.monotonic() - t0
        count = served(port) - before - 1
        idle = sample(url, token, 5)
        print(f"traffic: {count} requests served by nginx over the run ({wall:.1f} s wall; "
              f"target {args.rate}/s for {hold + 4} s = {args.rate * (hold + 4)})")
        print("GET /api/v1/runs/ID at 50 req/s, new connection each | p50 ms | p95 ms | p99 ms | max ms | n")
        for name, xs in (("while driving the drill", busy), ("idle daemon", idle)):
            print(f"  {name:<24} | {statistics.median(xs):6.2f} | {pct(xs, 95):6.2f} | {pct(xs, 99):6.2f} | "
                  f"{max(xs):6.2f} | {len(xs)}")
        print(f"p99 ratio busy/idle: {pct(busy, 99) / pct(idle, 99):.2f}")
    finally:
        daemon.terminate()
        daemon.wait(30)
        subprocess.run(["nginx", "-c", conf, "-p", d, "-s", "stop"], check=False)


main()
