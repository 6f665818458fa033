#!/usr/bin/env python3
"""drill's traffic generator against oha and wrk, on one nginx, in one run.

    python3 tests/bench/load_bench.py [--seconds 8] [--runs 3] [--rss-seconds 60]

Starts nginx (Debian's package: one worker, access_log off, a small JSON file) on
127.0.0.1, builds drill in release mode, and measures, counting requests at the server
(nginx's stub_status):

  * closed loop, 50 connections: throughput, client CPU microseconds per request, peak RSS,
    for drill, oha and wrk (the ceiling);
  * open model at 2,000/s and 20,000/s: requests counted at the server (how short of the
    schedule), arrivals drill dropped, the variation per 100 ms window, client CPU
    microseconds per request and peak RSS, for drill and oha (-q), as ratios against oha;
  * drill's RSS over a 60 s open-model run at 2,000/s (flat means no per-request growth).

Prints ratios against oha measured in the same run. Installs nothing but what it says:
nginx and wrk come from `apt-get install nginx-light wrk`, oha from `cargo install oha
--locked` (OHA=/path/to/oha to use another). Traffic goes to 127.0.0.1 only.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import ROOT, Nginx, need, sh, timed


def closed(nginx, name, cmd):
    before = nginx.requests()
    t0 = time.monotonic()
    cpu, rss, _ = timed(cmd)
    wall = time.monotonic() - t0
    n = nginx.requests() - before - 1
    return {"tool": name, "requests": n, "rps": n / args.seconds, "cpu_us_per_req": cpu * 1e6 / max(n, 1), "rss_mib": rss / 1024, "wall": wall}


def sampled(nginx, cmd, seconds):
    """Runs cmd while reading nginx's counter every 100 ms; returns per-window rates."""
    samples = []
    done = threading.Event()

    def sample():
        nxt = time.monotonic()
        while not done.is_set():
            samples.append((time.monotonic(), nginx.requests()))
            nxt += 0.1
            time.sleep(max(0.0, nxt - time.monotonic()))

    t = threading.Thread(target=sample)
    before = nginx.requests()
    t.start()
    cpu, rss, out = timed(cmd)
    done.set()
    t.join()
    total = nginx.requests() - before - len(samples) - 1
    rates = []
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        rates.append((c1 - c0 - 1) / (t1 - t0))  # minus the sampler's own request
    # Keep the windows in the steady middle: skip the first and last second.
    steady = rates[10:-10] if len(rates) > 30 else rates
    mean = statistics.mean(steady) if steady else 0.0
    cv = statistics.pstdev(steady) / mean if mean else 0.0
    dropped = 0
    for line in out.splitlines():
        if line.strip().startswith("dropped.."):
            dropped = int(line.split(":")[1].split()[0])
    return {"requests": total, "achieved": total / seconds, "window_mean": mean, "window_cv": cv, "cpu_us_per_req": cpu * 1e6 / max(total, 1), "rss_mib": rss / 1024, "dropped": dropped}


def rss_over_time(cmd, seconds):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    series = []
    for _ in range(int(seconds)):
        time.sleep(1)
        try:
            with open(f"/proc/{p.pid}/status") as f:
                kb = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
            series.append(kb / 1024)
        except (FileNotFoundError, IndexError):
            break
    p.send_signal(signal.SIGINT)
    p.wait()
    return series


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--seconds", type=float, default=8.0)
parser.add_argument("--rss-seconds", type=float, default=60.0)
parser.add_argument("--runs", type=int, default=3, help="runs of each open-model configuration (the median is printed)")
args = parser.parse_args()

need("wrk", "apt-get install wrk")
oha = os.environ.get("OHA") or shutil.which("oha") or os.path.expanduser("~/.cargo/bin/oha")
if not os.path.exists(oha):
    sys.exit("oha is missing: cargo install oha --locked (or set OHA=/path/to/oha)")
sh("cargo", "build", "--release", "-q", "-p", "drill-cli", cwd=ROOT)
drill = os.path.join(ROOT, "target", "release", "drill")

nginx = Nginx()
try:
    s = f"{args.seconds:g}s"
    print(f"nginx 1 worker on {nginx.url}; {s} per run; counts are nginx's")
    results = [
        closed(nginx, "drill", [drill, "load", "--url", nginx.url, "--connections", "50", "--duration", s]),
        closed(nginx, "oha", [oha, "--no-tui", "-z", s, "-c", "50", nginx.url]),
        closed(nginx, "wrk", ["wrk", "-t2", "-c50", "-d", s, nginx.url]),
    ]
    base = results[1]
    print("\nclosed loop, 50 connections")
    print(f"{'tool':<6} {'req/s':>10} {'vs oha':>7} {'CPU µs/req':>11} {'vs oha':>7} {'peak RSS':>9} {'vs oha':>7}")
    for r in results:
        print(f"{r['tool']:<6} {r['rps']:>10.0f} {r['rps']/base['rps']:>6.2f}x {r['cpu_us_per_req']:>11.2f} {r['cpu_us_per_req']/base['cpu_us_per_req']:>6.2f}x {r['rss_mib']:>7.1f}MB {r['rss_mib']/base['rss_mib']:>6.2f}x")

    print(f"\nopen model: requests counted at the server, client CPU, peak RSS (median of {args.runs} runs each;")
    print("variation = stddev/mean of the achieved rate over 100 ms windows; drill uses its default in-flight cap and workers)")
    print(f"{'tool':<6} {'target':>8} {'at server':>10} {'short':>8} {'dropped':>8} {'var/100ms':>10} {'CPU µs/req':>11} {'vs oha':>7} {'RSS MB':>7} {'vs oha':>7}")
    open_results = {}
    for rate in (2000, 20000):
        for tool, cmd in (
            ("drill", [drill, "load", "--url", nginx.url, "--rate", f"{rate}/s", "--duration", s]),
            ("oha", [oha, "--no-tui", "-z", s, "-q", str(rate), "-c", "200", "--latency-correction", nginx.url]),
        ):
            runs = [sampled(nginx, cmd, args.seconds) for _ in range(args.runs)]
            r = dict(runs[0])
            for key in ("requests", "achieved", "window_cv", "cpu_us_per_req", "rss_mib", "dropped"):
                r[key] = statistics.median(x[key] for x in runs)
            r["all_requests"] = [x["requests"] for x in runs]
            r["all_cpu_us_per_req"] = [round(x["cpu_us_per_req"], 2) for x in runs]
            open_results[(tool, rate)] = r
        base = open_results[("oha", rate)]
        for tool in ("drill", "oha"):
            r = open_results[(tool, rate)]
            expected = rate * args.seconds
            print(f"{tool:<6} {rate:>8} {r['requests']:>10.0f} {100*(expected-r['requests'])/expected:>7.3f}% {r['dropped']:>8.0f} {100*r['window_cv']:>9.2f}% {r['cpu_us_per_req']:>11.2f} {r['cpu_us_per_req']/base['cpu_us_per_req']:>6.2f}x {r['rss_mib']:>7.1f} {r['rss_mib']/base['rss_mib']:>6.2f}x   runs: {r['all_requests']} {r['all_cpu_us_per_req']}")

    if args.rss_seconds > 0:
        series = rss_over_time([drill, "load", "--url", nginx.url, "--rate", "2000/s", "--duration", f"{args.rss_seconds:g}s"], args.rss_seconds)
        if series:
            marks = ", ".join(f"{i + 1}s {series[i]:.1f}" for i in (0, 9, 19, 29, 44, len(series) - 1) if i < len(series))
            print(f"\ndrill RSS (MB) at 2,000/s over {len(series)} s: {marks}; max {max(series):.1f}")
    summary = {"closed": results, "open": {f"{k[0]}@{k[1]}": v for k, v in open_results.items()}}
    with open(os.path.join(tempfile.gettempdir(), "drill-load-bench.json"), "w") as f:
        json.dump(summary, f, indent=2)
finally:
    nginx.stop()
