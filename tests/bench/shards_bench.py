#!/usr/bin/env python3
"""One process against four local shards (traffic.distributed), on one nginx, in one run.

    python3 tests/bench/shards_bench.py [--seconds 8] [--rates 20000,60000,100000]

For each open-model rate, counting requests at the server (nginx's stub_status):

  * `drill load --rate R` — one process, its default workers (one per core here);
  * `drill apply` of a playbook with `traffic.distributed: {shards: 4}` — four shard
    processes of the same schedule, their reports added up in a SQLite store, one k6
    summary with the thresholds evaluated once;
  * `oha -q R` — the peer, at the same rate.

Prints, per rate and tool: requests at the server against the schedule, arrivals dropped
(drill's own count), client CPU per request (the shards' included: GNU time counts the
children drill waits for) as a ratio against oha. Needs nginx-light (apt) and oha (`cargo
install oha --locked`, or OHA=/path). Traffic goes to 127.0.0.1 only.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

from benchlib import ROOT, Nginx, sh, timed

PLAYBOOK = """apiVersion: drill/v1
kind: Playbook
metadata: {{name: shards-bench}}
target:
  base_url: {base}
  allow: {{http: ["127.0.0.1"]}}
traffic:
  requests: [{{name: small, path: /small.json}}]
  profile: [{{rate: {rate}/s, hold: {seconds}}}]
  distributed: {{shards: {shards}}}
slo: {{p95: 800ms, error_rate: 1%}}
"""


def dropped_of(out):
    for line in out.splitlines():
        if line.strip().startswith("dropped.."):
            return int(line.split(":")[1].split()[0])
    return None


def one(nginx, cmd, expected):
    before = nginx.requests()
    cpu, rss, out = timed(cmd)
    n = nginx.requests() - before - 1
    return {"at_server": n, "expected": expected, "cpu_us": cpu * 1e6 / max(n, 1), "rss_mib": rss / 1024, "out": out}


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--seconds", type=int, default=8)
parser.add_argument("--rates", default="20000,60000,100000")
parser.add_argument("--shards", type=int, default=4)
parser.add_argument("--runs", type=int, default=1)
args = parser.parse_args()

oha = os.environ.get("OHA") or shutil.which("oha") or os.path.expanduser("~/.cargo/bin/oha")
if not os.path.exists(oha):
    sys.exit("oha is missing: cargo install oha --locked (or set OHA=/path/to/oha)")
sh("cargo", "build", "--release", "-q", "-p", "drill-cli", cwd=ROOT)
drill = os.path.join(ROOT, "target", "release", "drill")

nginx = Nginx()
work = tempfile.mkdtemp(prefix="drill-shards-bench-")
rows = []
try:
    base = nginx.url.rsplit("/", 1)[0]
    print(f"nginx 1 worker on {nginx.url}; {args.seconds}s per run; {os.cpu_count()} cores; counts are nginx's")
    for rate in [int(r) for r in args.rates.split(",")]:
        expected = rate * args.seconds
        for run in range(args.runs):
            r = one(nginx, [drill, "load", "--url", nginx.url, "--rate", f"{rate}/s", "--duration", f"{args.seconds}s"], expected)
            r.update(tool="drill, 1 process", rate=rate, dropped=dropped_of(r.pop("out")))
            rows.append(r)

            pb = os.path.join(work, f"pb-{rate}.yaml")
            with open(pb, "w") as f:
                f.write(PLAYBOOK.format(base=base, rate=rate, seconds=f"{args.seconds}s", shards=args.shards))
            reports = os.path.join(work, f"reports-{rate}-{run}")
            db = os.path.join(work, f"history-{rate}-{run}.db")
            r = one(nginx, [drill, "apply", pb, "--db", db, "--report-dir", reports], expected)
            out = r.pop("out")
            (run_dir,) = os.listdir(reports)
            with open(os.path.join(reports, run_dir, "k6-summary.json")) as f:
                k6 = json.load(f)
            m = k6["metrics"]
            thresholds = sum(len(v.get("thresholds", {})) for v in m.values())
            r.update(tool=f"drill, {args.shards} shards", rate=rate, dropped=m["dropped_iterations"]["count"],
                     merged=m["http_reqs"]["count"], thresholds=thresholds,
                     stop=[l for l in out.splitlines() if "finished;" in l][-1:])
            rows.append(r)

            r = one(nginx, [oha, "--no-tui", "-z", f"{args.seconds}s", "-q", str(rate), "-c", "200", "--latency-correction", nginx.url], expected)
            r.pop("out")
            r.update(tool="oha", rate=rate, dropped=None)
            rows.append(r)
finally:
    nginx.stop()

print(f"\n{'rate':>8} {'tool':<18} {'at server':>10} {'of schedule':>11} {'dropped':>8} {'merged k6':>10} {'thresholds':>10} {'CPU µs/req':>11} {'vs oha':>7}")
for rate in sorted({r["rate"] for r in rows}):
    mine = [r for r in rows if r["rate"] == rate]
    peer = statistics.median(r["cpu_us"] for r in mine if r["tool"] == "oha")
    for r in mine:
        print(f"{rate:>8} {r['tool']:<18} {r['at_server']:>10} {100 * r['at_server'] / r['expected']:>10.2f}% "
              f"{'' if r['dropped'] is None else r['dropped']:>8} {r.get('merged', ''):>10} {r.get('thresholds', ''):>10} "
              f"{r['cpu_us']:>11.2f} {r['cpu_us'] / peer:>6.2f}x")
with open(os.path.join(tempfile.gettempdir(), "drill-shards-bench.json"), "w") as f:
    json.dump(rows, f, indent=1, default=str)
print(f"\nraw: {os.path.join(tempfile.gettempdir(), 'drill-shards-bench.json')}")
