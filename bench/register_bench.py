#!/usr/bin/env python3
"""REGISTER throughput and memory of sipd's registrar, on loopback.

usage: register_bench.py [--build DIR] [--users N] [--inflight W]
                         [--duration S] [--runs K] [--rss-users N]
                         [--server-core C] [--load-core C] [--json FILE]

Each run: a fresh database in a temporary directory, sipd pinned to one
core (`taskset -c 0 sipd --workers 1 --auth off --db TMP/sipd.db -l
udp:127.0.0.1:0`), sipbench pinned to another (`taskset -c 1 sipbench
register --users N --inflight W --duration S`). Printed per run: the
REGISTERs answered 200 per second (sipbench's rate: succeeded / its whole
run, drain included), failures, sipd's CPU (utime + stime over the load,
as a share of one core) and its VmRSS after.

--rss-users N (0: skip): one more sipd, N users registered once each
(sipbench --max-requests N, --expires 7200), then VmRSS minus VmRSS before
the load, divided by the bindings (sipbench's successes: one per user),
right after the load and again 65 s later, once the server transactions
of the load (Timer J, 32 s over UDP) are gone and sipd has given the pages
they freed back (malloc_trim every 30 s).

Stops every process it starts by its PID. Everything is on 127.0.0.1.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ticks(pid, tid=None):
    path = "/proc/%d/stat" % pid if tid is None else \
        "/proc/%d/task/%d/stat" % (pid, tid)
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def thread_ticks(pid):
    """CPU ticks per thread id."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            out[int(tid)] = cpu_ticks(pid, int(tid))
        except OSError:
            pass
    return out


class Sipd:
    def __init__(self, build, tmp, core):
        self.db = os.path.join(tmp, "sipd.db")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(core), os.path.join(build, "sipd"),
             "--workers", "1", "--auth", "off", "--db", self.db,
             "-l", "udp:127.0.0.1:0"],
            stderr=subprocess.PIPE, text=True)
        self.port = None
        deadline = time.time() + 30
        lines = []
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"listening on udp:127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            if "bindings loaded" in line:
                break
        if not self.port:
            self.stop()
            sys.exit("sipd did not start: " + "".join(lines))
        threading.Thread(target=lambda: [None for _ in self.proc.stderr],
                         daemon=True).start()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def sipbench(build, core, port, args, out):
    cmd = ["taskset", "-c", str(core), os.path.join(build, "sipbench"),
           "register", "--target", "127.0.0.1:%d" % port,
           "--json", out, "--quiet"] + args
    subprocess.run(cmd, check=True, capture_output=True, timeout=900)
    with open(out) as f:
        return json.load(f)


def run_rate(a, tmp, i):
    sipd = Sipd(a.build, tmp, a.server_core)
    try:
        pid = sipd.proc.pid
        c0 = cpu_ticks(pid)
        th0 = thread_ticks(pid)
        t0 = time.time()
        res = sipbench(a.build, a.load_core, sipd.port,
                       ["--users", str(a.users), "--inflight",
                        str(a.inflight), "--duration", str(a.duration)],
                       os.path.join(tmp, "run%d.json" % i))
        wall = time.time() - t0
        hz = os.sysconf("SC_CLK_TCK")
        cpu = (cpu_ticks(pid) - c0) / hz / wall
        th1 = thread_ticks(pid)
        # the two busiest threads: the worker and the store's writer
        busy = sorted(((th1[t] - th0.get(t, 0)) / hz for t in th1),
                      reverse=True)
        rss = rss_kib(pid)
    finally:
        sipd.stop()
    return {"rate": res["rate"], "succeeded": res["succeeded"],
            "failed": res["failed"], "retransmissions": res["retransmissions"],
            "p50_ms": res["latency_ms"]["p50"],
            "p99_ms": res["latency_ms"]["p99"],
            "sipd_cpu": round(cpu, 3), "sipd_rss_kib": rss,
            "thread_cpu_s": [round(b, 2) for b in busy[:3]],
            "cpu_us_per_register": round(
                (cpu * wall) / max(res["succeeded"], 1) * 1e6, 1)}


def run_rss(a, tmp):
    sipd = Sipd(a.build, tmp, a.server_core)
    try:
        before = rss_kib(sipd.proc.pid)
        res = sipbench(a.build, a.load_core, sipd.port,
                       ["--users", str(a.rss_users), "--max-requests",
                        str(a.rss_users), "--inflight", str(a.inflight),
                        "--expires", "7200", "--drain", "30"],
                       os.path.join(tmp, "rss.json"))
        time.sleep(1)
        after = rss_kib(sipd.proc.pid)
        # the server transactions of the load live on for Timer J (32 s
        # over UDP), and sipd gives freed pages back every 30 s: measure
        # again once both have passed
        time.sleep(65)
        settled = rss_kib(sipd.proc.pid)
    finally:
        sipd.stop()
    n = res["succeeded"]
    return {"users": a.rss_users, "bindings": n, "failed": res["failed"],
            "rate": res["rate"], "rss_before_kib": before,
            "rss_after_kib": after, "rss_settled_kib": settled,
            "bytes_per_binding": round((after - before) * 1024 / max(n, 1)),
            "bytes_per_binding_settled":
                round((settled - before) * 1024 / max(n, 1))}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build")
    p.add_argument("--users", type=int, default=100000)
    p.add_argument("--inflight", type=int, default=2000)
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--rss-users", type=int, default=0)
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--load-core", type=int, default=1)
    p.add_argument("--json")
    a = p.parse_args()
    out = {"runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.runs):
            sub = os.path.join(tmp, "r%d" % i)
            os.mkdir(sub)
            r = run_rate(a, sub, i)
            out["runs"].append(r)
            print("run %d: %.0f REGISTER/s (200), %d failed, %d retx, "
                  "p50 %.1f ms p99 %.1f ms, sipd CPU %.0f %% (%.1f us per "
                  "200; busiest threads %s s), RSS %d KiB" % (
                      i + 1, r["rate"], r["failed"], r["retransmissions"],
                      r["p50_ms"], r["p99_ms"], r["sipd_cpu"] * 100,
                      r["cpu_us_per_register"], r["thread_cpu_s"],
                      r["sipd_rss_kib"]), flush=True)
        if a.rss_users:
            sub = os.path.join(tmp, "rss")
            os.mkdir(sub)
            r = run_rss(a, sub)
            out["rss"] = r
            print("rss: %d bindings (%d failed, %.0f/s), VmRSS %d -> %d KiB "
                  "right after (%d B per binding), %d KiB 65 s later "
                  "(%d B per binding)" % (
                      r["bindings"], r["failed"], r["rate"],
                      r["rss_before_kib"], r["rss_after_kib"],
                      r["bytes_per_binding"], r["rss_settled_kib"],
                      r["bytes_per_binding_settled"]))
    out["load_average"] = os.getloadavg()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
