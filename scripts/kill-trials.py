#!/usr/bin/env python3
"""Crash trials against the demo environment, as an operator would run them.

Each trial builds a fresh environment (scripts/demo-env.sh up), runs
`drill apply playbooks/local.yaml --time-scale 0.1 --lease 3s`, and at a chosen moment
(a log line, plus a delay) either kills it (SIGKILL) or freezes it (SIGSTOP). Then
`drill recover` runs in another process; a frozen run is resumed (SIGCONT) afterwards and
must exit 3 having changed nothing. Each row says what was measured on the targets:
workers running, which PostgreSQL accepts writes, whether both do (split brain).

usage: scripts/kill-trials.py [--only N,...]      (needs: cargo build -p drill-cli, and
                                                   scripts/demo-env.sh install;
                                                   DRILL_BIN=PATH to use another binary)
Prints a Markdown table; the logs of each trial are in /tmp/drill-trials/.
"""

import argparse
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
DRILL = pathlib.Path(os.environ.get("DRILL_BIN", ROOT / "target" / "debug" / "drill"))
OUT = pathlib.Path("/tmp/drill-trials")

# (signal, the log line to wait for, seconds after it)
TRIALS = [
    ("KILL", "queue-outage: injecting", 0.0),
    ("KILL", "queue-outage/stop-workers: applied", 1.0),
    ("KILL", "db-failover: injecting", 0.0),
    ("KILL", "db-failover: injecting", 0.05),
    ("KILL", "db-failover: injecting", 0.1),
    ("KILL", "db-failover/promote-replica: applied", 0.0),
    ("KILL", "cache-purge: injecting", 0.0),
    ("STOP", "queue-outage/stop-workers: applied", 0.5),
    ("STOP", "db-failover: injecting", 0.05),
    ("STOP", "cache-purge: injecting", 0.0),
    ("STOP", "db-failover: injecting", 0.0),
    ("STOP", "db-failover: injecting", 0.02),
    ("STOP", "db-failover: injecting", 0.1),
    ("STOP", "db-failover: injecting", 0.2),
    ("KILL", "cache-purge/flush-redis: applied", 0.0),
]


def sh(*args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def pg(port, sql):
    r = sh("psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "drill_demo",
           "-Atqc", sql)
    return r.stdout.strip() if r.returncode == 0 else "down"


def writable(port):
    v = pg(port, "select (not pg_is_in_recovery()) and current_setting('transaction_read_only') = 'off'")
    return {"t": "yes", "f": "no"}.get(v, v)


def workers():
    states = []
    for n in ("drill-demo-worker-1", "drill-demo-worker-2"):
        r = sh("docker", "inspect", "-f", "{{.State.Status}}", n)
        states.append(r.stdout.strip() or "gone")
    return "/".join(states)


def ledger(db):
    """(fault rows, total attempts, calls) across the store, to see whether anything was written."""
    q = ("select (select count(*) from drill_faults), (select coalesce(sum(attempts),0) from drill_faults),"
         " (select count(*) from drill_calls)")
    r = sh("python3", "-c",
           "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(sys.argv[2]).fetchone())",
           db, q)
    return r.stdout.strip()


def run_reason(db):
    r = sh("python3", "-c",
           "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]);"
           " print(c.execute('select status, reason from drill_runs order by started_ms desc limit 1').fetchone())",
           db)
    return r.stdout.strip()


def trial(i, sig, marker, delay):
    log = OUT / f"trial-{i}.log"
    db = str(OUT / f"trial-{i}.db")
    for p in (db, db + "-wal", db + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    up = sh("bash", "scripts/demo-env.sh", "up", cwd=ROOT)
    if up.returncode != 0:
        return {"error": "demo-env up failed: " + up.stderr[-300:]}
    cmd = [str(DRILL), "apply", "playbooks/local.yaml", "--drills", "drills", "--time-scale", "0.1",
           "--lease", "3s", "--db", db, "--report-dir", str(OUT / "reports")]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    hit = threading.Event()

    def read():
        for line in p.stderr:
            lines.append(line)
            if marker in line:
                hit.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    if not hit.wait(240):
        p.kill()
        return {"error": f"no line {marker!r}"}
    time.sleep(delay)
    os.kill(p.pid, signal.SIGKILL if sig == "KILL" else signal.SIGSTOP)
    at_signal = {"workers": workers(), "5453": writable(5453), "5454": writable(5454)}
    if sig == "KILL":
        p.wait()
    else:
        time.sleep(4.5)  # past the 3 s lease
    rec = sh(str(DRILL), "recover", "--db", db, "--revert-timeout", "30s", cwd=ROOT)
    after_recover = ledger(db)
    row = {
        "at_signal": at_signal,
        "recover_exit": rec.returncode,
        "recover_out": (rec.stdout + rec.stderr).strip().replace("\n", " | "),
    }
    if sig == "STOP":
        os.kill(p.pid, signal.SIGCONT)
        try:
            p.wait(90)
        except subprocess.TimeoutExpired:
            p.kill()
        t.join(5)
        row["resumed_exit"] = p.returncode
        row["resumed_says_lost"] = any("no longer ours" in l for l in lines)
        row["writes_after_resume"] = "none" if ledger(db) == after_recover else f"{after_recover} -> {ledger(db)}"
    row["workers"] = workers()
    row["5453"] = writable(5453)
    row["5454"] = writable(5454)
    row["split_brain"] = "YES" if row["5453"] == "yes" and row["5454"] == "yes" else "no"
    row["run"] = run_reason(db)
    log.write_text("".join(lines) + "\n--- recover ---\n" + rec.stdout + rec.stderr)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    only = {int(x) for x in a.only.split(",") if x}
    OUT.mkdir(exist_ok=True)
    print("| # | signal | moment | at the signal: workers · 5453 writable · 5454 writable | recover exit | after: workers · 5453 · 5454 · split brain | resumed (STOP) | run's final reason |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, (sig, marker, delay) in enumerate(TRIALS, 1):
        if only and i not in only:
            continue
        r = trial(i, sig, marker, delay)
        if "error" in r:
            print(f"| {i} | {sig} | `{marker}` +{delay}s | error: {r['error']} | | | | |")
            continue
        s = r["at_signal"]
        resumed = ""
        if sig == "STOP":
            resumed = (f"exit {r['resumed_exit']}, lost lease seen: {r['resumed_says_lost']},"
                       f" writes after resume: {r['writes_after_resume']}")
        print(f"| {i} | {sig} | `{marker}` +{delay}s | {s['workers']} · {s['5453']} · {s['5454']} |"
              f" {r['recover_exit']} | {r['workers']} · {r['5453']} · {r['5454']} · {r['split_brain']} |"
              f" {resumed} | {r['run']} |", flush=True)
    sh("bash", "scripts/demo-env.sh", "down", cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
