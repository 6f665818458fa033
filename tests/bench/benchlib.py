"""What the benchmarks share: a one-worker nginx on 127.0.0.1 that counts the requests it
handles (stub_status), and a command timed by GNU time (CPU of the process and of the
children it waited for, peak RSS)."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def need(cmd, install):
    path = shutil.which(cmd)
    if not path:
        sys.exit(f"{cmd} is missing: {install}")
    return path


class Nginx:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="drill-bench-")
        with open(os.path.join(self.dir, "small.json"), "w") as f:
            f.write('{"id":1,"name":"drill","ok":true}\n')
        self.port = 18000 + os.getpid() % 1000
        conf = f"""
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{self.port} backlog=4096;
        root {self.dir};
        location = /small.json {{ default_type application/json; }}
        location = /status {{ stub_status; }}
    }}
}}
"""
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        sh(need("nginx", "apt-get install nginx-light"), "-c", self.conf, "-p", self.dir)
        time.sleep(0.3)
        self.url = f"http://127.0.0.1:{self.port}/small.json"

    def requests(self):
        """Requests nginx has handled (this status request included)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status") as r:
            lines = r.read().decode().splitlines()
        return int(lines[2].split()[2])

    def stop(self):
        subprocess.run(["nginx", "-c", self.conf, "-p", self.dir, "-s", "stop"], check=False)


def timed(cmd):
    """Runs cmd under GNU time; returns (user+sys seconds, peak RSS KiB, stdout)."""
    out = subprocess.run(["/usr/bin/time", "-f", "TIME %U %S %M", *cmd], capture_output=True, text=True)
    line = [l for l in out.stderr.splitlines() if l.startswith("TIME ")][-1].split()
    return float(line[1]) + float(line[2]), int(line[3]), out.stdout + out.stderr


