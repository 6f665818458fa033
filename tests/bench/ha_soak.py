#!/usr/bin/env python3
"""High availability on one PostgreSQL: three daemons, a schedule every 4 s, for minutes,
with daemons killed (SIGKILL) and frozen (SIGSTOP, then SIGCONT) at random moments.

    python3 tests/bench/ha_soak.py [--minutes 3] [--daemons 3] [--seed N] [--bin target/debug/drill]

Needs the test PostgreSQL (bash tests/services/up.sh: 127.0.0.1:5433, trust) and a built
drill. Each run of the playbook applies an exec fault that touches a marker file and
appends "TIME inject PID" to a log (PID: the daemon that ran it); its revert removes the
marker and appends "TIME revert PID". Traffic: 5 req/s to a Python HTTP server on 127.0.0.1.

Prints, counted from the store and the marker log:
- nominal times in the soak, and how many ended as exactly one run or one missed record
  (with their reasons); duplicates (a nominal time with two runs, or a run on no fire);
- for each kill of a daemon holding the fault: the time until another daemon reverted it,
  against the bound lease + one watchdog interval;
- for each freeze of a daemon holding the fault longer than its lease: whether it mutated
  anything after its lease expired (it must not).
Exit 1 when any of these is broken.
"""

import argparse
import http.server
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--minutes", type=float, default=3)
p.add_argument("--daemons", type=int, default=3)
p.add_argument("--seed", type=int, default=int(time.time()))
p.add_argument("--bin", default=os.path.join(ROOT, "target/debug/drill"))
args = p.parse_args()
random.seed(args.seed)
LEASE, WATCHDOG, EVERY = 3.0, 2.0, 4

work = tempfile.mkdtemp(prefix="drill-ha-")
mark, log = os.path.join(work, "mark"), os.path.join(work, "markers.log")
db = f"drill_ha_{os.getpid()}"
psql = ["psql", "-h", "127.0.0.1", "-p", "5433", "-U", "postgres", "-Atq"]
subprocess.run(psql + ["-c", f"CREATE DATABASE {db}"], check=True)
url = f"postgres://postgres@127.0.0.1:5433/{db}"


class Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
threading.Thread(target=srv.serve_forever, daemon=True).start()
pbs = os.path.join(work, "playbooks")
os.makedirs(pbs)
with open(os.path.join(pbs, "ha.yaml"), "w") as f:
    f.write(f"""apiVersion: drill/v1
kind: Playbook
metadata: {{name: ha}}
schedule: {{cron: "*/{EVERY} * * * * *", concurrency: forbid, starting_deadline: 3s}}
target:
  base_url: http://127.0.0.1:{srv.server_port}
  allow:
    http: ["127.0.0.1"]
    exec: [sh]
traffic:
  requests: [{{name: home, path: /}}]
  profile: [{{rate: 5/s, hold: 3s}}]
drills:
  - name: hold
    at: 0s
    drill:
      baseline: 0s
      hold: 2s
      recovery: 0s
      faults:
        - name: marker
          action: exec
          exec:
            inject: {{command: [sh, -c, 'echo "$(date +%s.%N) inject $PPID" >> {log}; touch {mark}']}}
            revert: {{command: [sh, -c, 'echo "$(date +%s.%N) revert $PPID" >> {log}; rm -f {mark}']}}
""")


def start(i):
    err = open(os.path.join(work, f"daemon-{i}.log"), "a")
    return subprocess.Popen(
        [args.bin, "daemon", "--playbooks", pbs, "--db", url, "--lease", f"{LEASE:g}s",
         "--watchdog", f"{WATCHDOG:g}s", "--report-dir", os.path.join(work, "reports"),
         "--log-format", "json"],
        stdout=subprocess.DEVNULL, stderr=err)


def markers():
    try:
        with open(log) as f:
            return [(float(t), what, int(pid)) for t, what, pid in (l.split() for l in f if l.strip())]
    except FileNotFoundError:
        return []


def holder():
    """The pid whose inject is the last line, if the marker is there."""
    m = markers()
    if os.path.exists(mark) and m and m[-1][1] == "inject":
        return m[-1][2]
    return None


daemons = [start(i) for i in range(args.daemons)]
t_start = time.time()
end = t_start + args.minutes * 60
kills, freezes = [], []
time.sleep(6)
while time.time() < end - 15:
    time.sleep(random.uniform(4, 12))
    # Wait (up to 5 s) for a moment a daemon holds the fault, so the chaos hits mid-drill.
    t0 = time.time()
    while holder() is None and time.time() - t0 < 5:
        time.sleep(0.05)
    h = holder()
    victims = [i for i, d in enumerate(daemons) if d.pid == h] or list(range(len(daemons)))
    i = random.choice(victims)
    d = daemons[i]
    if random.random() < 0.5:
        held = holder() == d.pid
        t_kill = time.time()
        d.kill()
        d.wait()
        took = None
        if held:
            while os.path.exists(mark) and time.time() - t_kill < 30:
                time.sleep(0.02)
            took = time.time() - t_kill
        kills.append({"at": t_kill - t_start, "held": held, "reverted_after_s": took})
        time.sleep(random.uniform(1, 4))
        daemons[i] = start(i)
    else:
        held = holder() == d.pid
        t_stop = time.time()
        d.send_signal(signal.SIGSTOP)
        # A frozen owner's pid is alive: only its lease running out hands the run over (as
        # when the owner is on another host), so this is the lease path's takeover time.
        took = None
        while time.time() - t_stop < LEASE + WATCHDOG + 2:
            if held and took is None and not os.path.exists(mark):
                took = time.time() - t_stop
            time.sleep(0.02)
        t_cont = time.time()
        d.send_signal(signal.SIGCONT)
        freezes.append({"at": t_stop - t_start, "pid": d.pid, "held": held, "stop": t_stop, "cont": t_cont,
                        "reverted_after_s": took})

time.sleep(max(0, end - time.time()))
t_end = time.time()
for d in daemons:
    d.send_signal(signal.SIGTERM)
for d in daemons:
    try:
        d.wait(timeout=30)
    except subprocess.TimeoutExpired:
        d.kill()
time.sleep(1)
t_stop_all = time.time()


def q(sql):
    return [l.split("|") for l in subprocess.run(psql + ["-F", "|", "-d", db, "-c", sql], check=True,
                                                 capture_output=True, text=True).stdout.splitlines() if l]


fires = q("SELECT nominal_ms, outcome, coalesce(reason, ''), coalesce(run_id, '') FROM drill_fires WHERE playbook = 'ha' ORDER BY nominal_ms")
runs = q("SELECT id FROM drill_runs WHERE playbook = 'ha'")
left = q("SELECT count(*) FROM drill_runs WHERE playbook = 'ha' AND status = 'running'")
by_time = {}
for t, outcome, reason, run in fires:
    by_time.setdefault(int(t), []).append((outcome, reason, run))
first = (int(t_start) // EVERY + 2) * EVERY * 1000
last = (int(t_end) // EVERY - 2) * EVERY * 1000
window = list(range(first, last + 1, EVERY * 1000))
missing = [t for t in window if t not in by_time]
fired_runs = [r for _, o, _, r in fires if r]
dups = (len(fired_runs) - len(set(fired_runs))) + len(set(r for (r,) in runs) - set(fired_runs))
reasons = {}
for t in window:
    for o, r, _ in by_time.get(t, []):
        k = "run" if o == "run" else f"missed ({r})"
        reasons[k] = reasons.get(k, 0) + 1

m = markers()
bound = LEASE + WATCHDOG
bad = []
for k in kills:
    if k["held"] and (k["reverted_after_s"] is None or k["reverted_after_s"] > bound + 1.0):
        bad.append(f"kill at {k['at']:.1f}s: the fault was reverted after {k['reverted_after_s']} s (bound {bound:g} s + 1 s slack)")
for fr in freezes:
    if not fr["held"]:
        continue
    if fr["reverted_after_s"] is None or fr["reverted_after_s"] > bound + 1.0:
        bad.append(f"freeze at {fr['at']:.1f}s: its fault was reverted after {fr['reverted_after_s']} s (bound {bound:g} s + 1 s slack)")
    # Its fault was reverted by another daemon while it slept. When it wakes, its old run
    # must touch nothing: the first thing it does to the marker is a new run's inject,
    # never the stale revert of the old one (nor anything while its lease had run out).
    mine = [x for x in m if x[2] == fr["pid"] and x[0] > fr["stop"] + LEASE]
    stale = [x for x in mine if x[0] < fr["cont"]]
    after = [x for x in mine if x[0] >= fr["cont"]]
    if after and after[0][1] == "revert" and after[0][0] < fr["cont"] + 3:
        stale.append(after[0])
    fr["mutations_after_lease"] = len(stale)
    if stale:
        bad.append(f"freeze at {fr['at']:.1f}s: the frozen daemon mutated after its lease: {stale}")
if missing:
    bad.append(f"{len(missing)} nominal times have no record: {missing[:5]}")
if dups:
    bad.append(f"{dups} duplicate runs")
if os.path.exists(mark):
    bad.append("the marker is still there: a fault was left applied")
if left[0][0] != "0":
    bad.append(f"{left[0][0]} runs still 'running' in the store")
injects = sum(1 for x in m if x[1] == "inject")
reverts = sum(1 for x in m if x[1] == "revert")

print(f"seed {args.seed}; {args.daemons} daemons on {url}; lease {LEASE:g}s, watchdog {WATCHDOG:g}s; schedule every {EVERY}s for {t_end - t_start:.0f}s")
print(f"nominal times in the window: {len(window)}; with exactly one record: {len(window) - len(missing)}; duplicates: {dups}")
for k, n in sorted(reasons.items()):
    print(f"  {k}: {n}")
print(f"fault applied {injects} times, reverted {reverts} times; left applied: {os.path.exists(mark)}")
held = [k for k in kills if k["held"]]
print(f"kills: {len(kills)} ({len(held)} mid-fault); reverted by another daemon (its pid is gone on this host) after: "
      + ", ".join(f"{k['reverted_after_s']:.2f}s" for k in held if k["reverted_after_s"] is not None)
      + f" (bound: lease + watchdog = {bound:g}s)")
fh = [f for f in freezes if f["held"]]
print(f"freezes: {len(freezes)} ({len(fh)} mid-fault, {LEASE + WATCHDOG + 2:g}s each); reverted by another daemon after: "
      + ", ".join(f"{f['reverted_after_s']:.2f}s" for f in fh if f["reverted_after_s"] is not None)
      + "; mutations by the frozen daemon after its lease expired: "
      + str(sum(f.get("mutations_after_lease", 0) for f in fh)))
print(f"work dir: {work}")
subprocess.run(psql + ["-c", f"DROP DATABASE {db}"], check=False)
if bad:
    print("BROKEN:\n  " + "\n  ".join(bad))
    sys.exit(1)
print("OK: every nominal time has exactly one record, no duplicates, every fault reverted")
