#!/usr/bin/env python3
"""sipd beside Kamailio on the same work (make bench-sidebyside).

usage: sidebyside.py [--build DIR] [--seconds D] [--users N]
                     [--mem-users N] [--only CASE,...] [--smoke]
                     [--json FILE] [--png FILE] [--kamailio-mem MB]
                     [--kamailio-children N] [--max-trials N]
                     [--report JSON]

Cases (all by default, in this order; sipd first, then Kamailio):
  reg     highest REGISTER/s, N distinct users (100,000), no auth
  auth    the same with digest authentication (sipbench --password)
  mem     bytes per binding at --mem-users bindings (1,000,000)
  calls   highest calls/s through the record-routing stateful proxy
          (sipd --mode proxy; reported as not available when sipd
          rejects that mode)
  sipp    SIPp (Debian sip-tester) REGISTER at one mid rate against both,
          beside sipbench at the same rate: the same success/failure
          counts, as a check of the generator

Each server runs alone, pinned to core 0 (taskset -c 0): sipd with one
worker, Kamailio (bench/kamailio/kamailio.cfg) with --kamailio-children
UDP children (2 measured best on one core). sipbench (load, and the
callee `sipbench uas` for calls) is pinned to core 1.

The highest rate is found by a search over sipbench --rate (open loop):
doubling from a start rate until a run fails, then bisecting, at most
--max-trials runs of D seconds each. A run passes when fewer than 0.1 % of
its attempts fail and the generator started at least 95 % of the offered
attempts. Every run gets a fresh server (a fresh database for sipd), so
that bindings of earlier runs do not pile up. Latency percentiles are from
one more run at 50 % of the highest rate found. Server CPU is utime +
stime from /proc/PID/stat (Kamailio: all its processes) over the run, as a
fraction of one core.

Memory: sipd's VmRSS growth / bindings. Kamailio keeps bindings in its
shared memory (-m MB, mapped whole at start): the figure is the growth of
`kamcmd core.shmmem` real_used per binding (what the allocator handed out
with its own per-fragment overhead, as malloc's is inside sipd's RSS);
beside it the growth of `used` (without that overhead) and of the PSS
summed over all its processes (shared pages counted once).

Everything is on 127.0.0.1 on free ports; every process is stopped by its
PID; every run is bounded in time. Prints a table (sipd, Kamailio,
sipd/Kamailio, and whether the 3x target is met), writes JSON (default
bench/results/sidebyside.json) and a chart with gnuplot (default
bench/results/sidebyside.png; skipped with a note when gnuplot is
missing).

--smoke: 2 s runs, 1,000 users, 10,000 bindings, 3 trials per search.
--report JSON: the table and chart of an earlier run, nothing run.
Exit status: 0 when the comparison ran (figures may fall short), 1 when a
server or program could not be run, 2 on usage errors.
"""
import argparse
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KAM_CFG = os.path.join(HERE, "kamailio", "kamailio.cfg")
SIPP_REG = os.path.join(HERE, "kamailio", "register.xml")
SERVER_CPU = "0"
LOAD_CPU = "1"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
DOMAIN = "127.0.0.1"
FAIL_LIMIT = 0.001
TARGET = 3.0


class Unavailable(Exception):
    """A server cannot do this case (sipd without its proxy mode)."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def descendants(pid):
    """pid and every process below it (Kamailio forks its workers)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(proc_stat(int(d))[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_s(pids):
    total = 0.0
    for p in pids:
        try:
            f = proc_stat(p)
        except OSError:
            continue
        total += (int(f[11]) + int(f[12])) / TICK
    return total


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Server:
    """A server pinned to core 0. name, udp ("127.0.0.1:PORT"), pids()."""

    def __init__(self, argv, tmp, name):
        self.name = name
        self.log = os.path.join(tmp, "%s-%d.log" % (name, time.monotonic_ns()))
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)
        self.pid = self.proc.pid
        self.udp = None

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def pids(self):
        return descendants(self.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


def wait_answer(srv, port, limit=20.0):
    """Until the server answers an OPTIONS on UDP (any status)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    s.bind(("127.0.0.1", 0))
    lport = s.getsockname()[1]
    deadline = time.monotonic() + limit
    n = 0
    try:
        while time.monotonic() < deadline:
            if srv.proc.poll() is not None:
                return False
            n += 1
            msg = ("OPTIONS sip:%s:%d SIP/2.0\r\n"
                   "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKsbs%d\r\n"
                   "Max-Forwards: 70\r\n"
                   "From: <sip:probe@127.0.0.1>;tag=p%d\r\n"
                   "To: <sip:127.0.0.1:%d>\r\nCall-ID: probe%d-%d\r\n"
                   "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" %
                   (DOMAIN, port, lport, n, n, port, os.getpid(), n))
            s.sendto(msg.encode(), ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(65535)
                if data.startswith(b"SIP/2.0 "):
                    return True
            except socket.timeout:
                pass
    finally:
        s.close()
    return False


class Sipd:
    label = "sipd"

    def __init__(self, bench):
        self.b = bench

    def start(self, users_db=None, proxy=False):
        tmp = tempfile.mkdtemp(dir=self.b.tmp, prefix="sipd-")
        db = os.path.join(tmp, "sipd.db")
        if users_db:
            shutil.copyfile(users_db, db)
        argv = [self.b.exe("sipd"), "--workers", "1", "--listen",
                "udp:127.0.0.1:0", "--db", db, "--auth",
                "on" if users_db else "off"]
        if proxy:
            argv += ["--mode", "proxy"]
        srv = Server(argv, tmp, "sipd")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            m = re.search(r"listening on udp:([\d.]+):(\d+)", srv.text())
            if m:
                srv.udp = "%s:%s" % (m.group(1), m.group(2))
                break
            if srv.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not srv.udp:
            srv.stop()
            text = srv.text()
            if proxy and "--mode" in text:
                raise Unavailable("sipd: proxy not available (%s)" %
                                  text.strip().splitlines()[0])
            raise RuntimeError("sipd did not start: " + text[-2000:])
        if not wait_answer(srv, int(srv.udp.rsplit(":", 1)[1])):
            srv.stop()
            raise RuntimeError("sipd does not answer: " + srv.text()[-2000:])
        return srv

    def memory(self, srv):
        return {"rss_kib": status_kib(srv.pid, "VmRSS")}


class Kamailio:
    label = "Kamailio"

    def __init__(self, bench):
        self.b = bench

    def start(self, users_db=None, proxy=False, hash_users=None):
        tmp = tempfile.mkdtemp(dir=self.b.tmp, prefix="kam-")
        port = free_udp_port()
        users = hash_users or self.b.a.users
        hsize = max(4, min(20, math.ceil(math.log2(max(users, 2)))))
        ctl = "unix:" + os.path.join(tmp, "ctl")
        argv = ["kamailio", "-f", KAM_CFG, "-Y", tmp,
                "-P", os.path.join(tmp, "k.pid"),
                "-n", str(self.b.a.kamailio_children),
                "-m", str(self.b.a.kamailio_mem), "-M", "16", "-DD", "-E",
                "-A", "LISTEN=udp:127.0.0.1:%d" % port,
                "-A", 'CTL_SOCK="%s"' % ctl,
                "-A", "HASH_SIZE=%d" % hsize]
        if users_db:
            argv += ["-A", "WITH_AUTH", "-A", 'DBURL="sqlite://%s"' % users_db]
        srv = Server(argv, tmp, "kamailio")
        srv.ctl = ctl
        srv.udp = "127.0.0.1:%d" % port
        if not wait_answer(srv, port):
            srv.stop()
            raise RuntimeError("kamailio did not start: " + srv.text()[-2000:])
        return srv

    def memory(self, srv):
        out = {"pss_kib": pss_kib(srv.pids())}
        p = subprocess.run(["kamcmd", "-s", srv.ctl, "core.shmmem"],
                           capture_output=True, text=True, timeout=10)
        # binrpc integers are 32 bits: "total" (-m) reads 0 at 4 GiB
        for key in ("used", "real_used"):
            m = re.search(r"\b%s:\s*(\d+)" % key, p.stdout)
            if m:
                out["shm_" + key] = int(m.group(1))
        return out


class Bench:
    def __init__(self, a, tmp):
        self.a = a
        self.tmp = tmp
        self.results = {}
        self.auth_dbs = {}

    def exe(self, name):
        return os.path.join(self.a.build, name)

    # -- load --------------------------------------------------------------
    def sipbench(self, argv, timeout):
        out = os.path.join(self.tmp, "sb-%d.json" % time.monotonic_ns())
        cmd = ["taskset", "-c", LOAD_CPU, self.exe("sipbench")] + argv + [
            "--json", out, "--quiet"]
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("sipbench %s: exit %d: %s" % (
                " ".join(argv), p.returncode, p.stderr[-1000:]))
        with open(out) as f:
            return json.load(f)

    def measured(self, srv, argv, timeout):
        pids = srv.pids()
        c0, t0 = cpu_s(pids), time.monotonic()
        res = self.sipbench(argv, timeout)
        c1, t1 = cpu_s(pids), time.monotonic()
        res["server_cpu"] = round((c1 - c0) / (t1 - t0), 3)
        return res

    # -- users for digest --------------------------------------------------
    def users_db(self, server, n):
        """A database with users user1..userN, password pwK, in the form
        each server reads."""
        key = (server.label, n)
        if key in self.auth_dbs:
            return self.auth_dbs[key]
        path = os.path.join(self.tmp, "users-%s-%d.db" % (server.label, n))
        if isinstance(server, Sipd):
            # schema from sipctl itself; the rows written here in bulk
            # (sipctl adds one user per process)
            sc = self.exe("sipctl")
            for cmd in (["domain", "add", DOMAIN],
                        ["user", "add", "user1@" + DOMAIN, "--password",
                         "pw1"]):
                subprocess.run([sc, "--db", path] + cmd, check=True,
                               capture_output=True, timeout=30)
            db = sqlite3.connect(path)
            rows = []
            now = int(time.time())
            for i in range(2, n + 1):
                u, pw = "user%d" % i, "pw%d" % i
                a1 = ("%s:%s:%s" % (u, DOMAIN, pw)).encode()
                rows.append((DOMAIN, u, hashlib.md5(a1).hexdigest(),
                             hashlib.sha256(a1).hexdigest(), now))
            db.executemany("INSERT INTO users (domain, username, ha1_md5, "
                           "ha1_sha256, created) VALUES (?,?,?,?,?)", rows)
            db.commit()
            db.close()
        else:
            db = sqlite3.connect(path)
            db.executescript(
                "CREATE TABLE version (table_name VARCHAR(32) NOT NULL, "
                "table_version INTEGER DEFAULT 0 NOT NULL);"
                "INSERT INTO version VALUES ('subscriber', 7);"
                "CREATE TABLE subscriber (id INTEGER PRIMARY KEY NOT NULL,"
                " username VARCHAR(64) DEFAULT '' NOT NULL,"
                " domain VARCHAR(64) DEFAULT '' NOT NULL,"
                " password VARCHAR(64) DEFAULT '' NOT NULL,"
                " ha1 VARCHAR(128) DEFAULT '' NOT NULL,"
                " ha1b VARCHAR(128) DEFAULT '' NOT NULL);"
                "CREATE UNIQUE INDEX account_idx ON subscriber "
                "(username, domain);"
                "CREATE INDEX username_idx ON subscriber (username);")
            db.executemany(
                "INSERT INTO subscriber (username, domain, password) "
                "VALUES (?,?,?)",
                (("user%d" % i, DOMAIN, "pw%d" % i) for i in range(1, n + 1)))
            db.commit()
            db.close()
        self.auth_dbs[key] = path
        return path

    # -- the rate search ---------------------------------------------------
    def trial(self, server, case, rate, seconds=None):
        """One run at an offered rate on a fresh server."""
        a = self.a
        seconds = seconds or a.seconds
        auth = case == "auth"
        udb = self.users_db(server, a.users) if auth else None
        srv = server.start(users_db=udb, proxy=case == "calls")
        uas = None
        try:
            if case == "calls":
                uas = self.callee(srv)
                argv = ["call", "--target", srv.udp, "--callee", "bob",
                        "--domain", DOMAIN]
            else:
                argv = ["register", "--target", srv.udp, "--users",
                        str(a.users), "--domain", DOMAIN]
                if auth:
                    argv += ["--password", "pw%d"]
            argv += ["--rate", str(int(rate)), "--duration", str(seconds),
                     "--drain", "3"]
            res = self.measured(srv, argv, seconds + 60)
            res["server_rss_kib"] = server.memory(srv)
            if srv.proc.poll() is not None:
                raise RuntimeError("%s exited during the run: %s" % (
                    server.label, srv.text()[-2000:]))
        finally:
            if uas:
                self.stop_uas(uas)
            srv.stop()
        att = res["attempted"]
        offered = rate * seconds
        res["offered_rate"] = int(rate)
        res["fail_frac"] = res["failed"] / att if att else 1.0
        res["pass"] = bool(att >= 0.95 * offered and
                           res["fail_frac"] < FAIL_LIMIT)
        return res

    def callee(self, srv):
        """sipbench uas on core 1, registered as bob at the server; one
        call through the proxy must succeed before the load starts."""
        js = os.path.join(self.tmp, "uas-%d.json" % time.monotonic_ns())
        p = subprocess.Popen(
            ["taskset", "-c", LOAD_CPU, self.exe("sipbench"), "uas",
             "--listen", "127.0.0.1:0", "--register", "--target", srv.udp,
             "--users", "1", "--user", "bob", "--domain", DOMAIN,
             "--duration", "900", "--quiet", "--json", js],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        line = p.stderr.readline()
        if "listening on" not in line:
            p.kill()
            p.wait()
            raise RuntimeError("sipbench uas did not start: " + line)
        uas = (p, js)
        deadline = time.monotonic() + 10
        while True:
            r = self.sipbench(["call", "--target", srv.udp, "--callee", "bob",
                               "--domain", DOMAIN, "--max-requests", "1",
                               "--drain", "2"], 30)
            if r["succeeded"] == 1:
                return uas
            if time.monotonic() > deadline:
                self.stop_uas(uas)
                raise RuntimeError("no call through the proxy: %s" %
                                   json.dumps(r))
            time.sleep(0.3)

    def stop_uas(self, uas):
        p, _ = uas
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def search(self, server, case, start):
        """Double from @p start until a run fails, then bisect; at most
        max_trials runs. Returns the highest passing run (or None) and all
        runs."""
        a = self.a
        lo, hi, best, runs = 0, None, None, []
        rate = start
        for _ in range(a.max_trials):
            res = self.trial(server, case, rate)
            runs.append({k: res[k] for k in (
                "offered_rate", "attempted", "succeeded", "failed",
                "failed_by_reason", "rate", "server_cpu", "pass")
                if k in res})
            log("  %s %s: rate %d -> %d ok, %d failed (%.3f %%), server "
                "CPU %.0f %%: %s" % (server.label, case, rate,
                                     res["succeeded"], res["failed"],
                                     100 * res["fail_frac"],
                                     100 * res["server_cpu"],
                                     "pass" if res["pass"] else "FAIL"))
            if res["pass"]:
                lo, best = rate, res
            else:
                hi = rate
            if hi is None:
                rate = rate * 2
            elif lo == 0:
                rate = hi / 4
                if rate < 10:
                    break
            else:
                if (hi - lo) / hi < 0.06:
                    break
                rate = (lo + hi) / 2
            rate = int(rate)
        return best, runs

    def throughput(self, case):
        starts = {"reg": 4000, "auth": 2000, "calls": 1000}
        out = {}
        for server in (Sipd(self), Kamailio(self)):
            log("%s %s: search (runs of %d s)" % (server.label, case,
                                                 self.a.seconds))
            try:
                best, runs = self.search(server, case,
                                         self.a.start_rate or starts[case])
            except Unavailable as e:
                log("  " + str(e))
                out[server.label] = {"available": False, "note": str(e)}
                continue
            entry = {"available": True, "runs": runs,
                     "max_rate": best["offered_rate"] if best else 0,
                     "achieved_rate": best["rate"] if best else 0,
                     "server_cpu": best["server_cpu"] if best else None,
                     "server_memory": best["server_rss_kib"] if best else
                     None}
            if best:
                half = max(1, best["offered_rate"] // 2)
                res = self.trial(server, case, half)
                entry["latency_at_half"] = {
                    "rate": half, "latency_ms": res["latency_ms"],
                    "failed": res["failed"], "server_cpu": res["server_cpu"]}
                log("  %s %s: max %d/s; at %d/s p50 %.3f ms p99 %.3f ms" % (
                    server.label, case, best["offered_rate"], half,
                    res["latency_ms"]["p50"], res["latency_ms"]["p99"]))
            out[server.label] = entry
        self.results[case] = out

    # -- memory per binding ------------------------------------------------
    def memory(self):
        n = self.a.mem_users
        out = {}
        for server in (Sipd(self), Kamailio(self)):
            log("%s: %d bindings" % (server.label, n))
            if isinstance(server, Kamailio):
                srv = server.start(hash_users=n)
            else:
                srv = server.start()
            try:
                time.sleep(0.5)
                before = server.memory(srv)
                res = self.measured(srv, [
                    "register", "--target", srv.udp, "--users", str(n),
                    "--domain", DOMAIN, "--inflight", "500", "--drain", "5"],
                    1800)
                time.sleep(0.5)
                loaded = server.memory(srv)
                # the bindings alone: sipd keeps each REGISTER's server
                # transaction for Timer J (64*T1 = 32 s) and gives freed
                # pages back every 30 s; both servers get the same wait
                time.sleep(self.a.mem_settle)
                after = server.memory(srv)
            finally:
                srv.stop()
            entry = {"bindings": res["succeeded"], "failed": res["failed"],
                     "register_rate": res["rate"], "before": before,
                     "right_after_load": loaded, "settle_s":
                     self.a.mem_settle, "after": after}
            ok = max(res["succeeded"], 1)
            if isinstance(server, Sipd):
                entry["bytes_per_binding"] = round(
                    (after["rss_kib"] - before["rss_kib"]) * 1024 / ok, 1)
                entry["bytes_per_binding_right_after_load"] = round(
                    (loaded["rss_kib"] - before["rss_kib"]) * 1024 / ok, 1)
                entry["measure"] = "VmRSS growth"
            else:
                delta = lambda k: after.get(k, 0) - before.get(k, 0)
                entry["bytes_per_binding"] = round(
                    delta("shm_real_used") / ok, 1)
                entry["shm_used_bytes_per_binding"] = round(
                    delta("shm_used") / ok, 1)
                entry["pss_bytes_per_binding"] = round(
                    (after["pss_kib"] - before["pss_kib"]) * 1024 / ok, 1)
                entry["measure"] = "core.shmmem real_used growth"
            log("  %s: %d bindings (%d failed), %.0f B/binding" % (
                server.label, res["succeeded"], res["failed"],
                entry["bytes_per_binding"]))
            out[server.label] = entry
        self.results["mem"] = out

    # -- SIPp cross-check --------------------------------------------------
    def sipp(self):
        if not shutil.which("sipp"):
            self.results["sipp"] = {"note": "sipp not installed"}
            return
        a = self.a
        reg = self.results.get("reg", {})
        maxes = [reg.get(k, {}).get("max_rate", 0) for k in ("sipd",
                                                            "Kamailio")]
        maxes = [m for m in maxes if m]
        # SIPp's own ceiling here is about 4,000/s
        rate = int(min([m / 2 for m in maxes] + [2000])) if maxes else 1000
        rate = max(rate, 50)
        count = rate * a.seconds
        users = min(a.users, count)
        csv = os.path.join(self.tmp, "users.csv")
        with open(csv, "w") as f:
            f.write("SEQUENTIAL\n")
            for i in range(1, users + 1):
                f.write("user%d;\n" % i)
        out = {"rate": rate, "count": count}
        for server in (Sipd(self), Kamailio(self)):
            row = {}
            for gen in ("sipp", "sipbench"):
                srv = server.start()
                try:
                    if gen == "sipbench":
                        r = self.sipbench(
                            ["register", "--target", srv.udp, "--users",
                             str(users), "--domain", DOMAIN, "--rate",
                             str(rate), "--max-requests", str(count),
                             "--drain", "3"], a.seconds + 60)
                        row[gen] = {"succeeded": r["succeeded"],
                                    "failed": r["failed"]}
                    else:
                        row[gen] = self.run_sipp(srv, csv, rate, count)
                finally:
                    srv.stop()
            row["same"] = all(row["sipp"][k] == row["sipbench"][k]
                              for k in ("succeeded", "failed"))
            log("%s: SIPp %s, sipbench %s at %d/s" % (
                server.label, row["sipp"], row["sipbench"], rate))
            out[server.label] = row
        self.results["sipp"] = out

    def run_sipp(self, srv, csv, rate, count):
        d = tempfile.mkdtemp(dir=self.tmp, prefix="sipp-")
        stf = os.path.join(d, "stat.csv")
        cmd = ["taskset", "-c", LOAD_CPU, "sipp", srv.udp, "-sf", SIPP_REG,
               "-inf", csv, "-i", "127.0.0.1", "-p", str(free_udp_port()),
               "-r", str(rate), "-m", str(count), "-l", "5000", "-nostdin",
               "-timeout", "%ds" % (self.a.seconds * 3 + 30),
               "-timeout_error", "-trace_stat", "-stf", stf, "-fd", "1"]
        p = subprocess.run(cmd, cwd=d, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL,
                           timeout=self.a.seconds * 3 + 60)
        with open(stf) as f:
            rows = [ln.strip().split(";") for ln in f if ln.strip()]
        head, last = rows[0], rows[-1]
        val = lambda k: int(last[head.index(k)])
        return {"succeeded": val("SuccessfulCall(C)"),
                "failed": val("FailedCall(C)"), "exit": p.returncode}


# -- the report -------------------------------------------------------------
def rows_of(results):
    """(figure, unit, sipd, kamailio, better, note) per figure. better:
    True (higher is better, 3x target), False (lower is better, 3x
    target), "lower" (lower is better, no target), None (no ratio)."""
    rows = []
    names = {"reg": "REGISTER/s, no auth", "auth": "REGISTER/s, digest",
             "calls": "calls/s, stateful RR proxy"}
    for case in ("reg", "auth", "calls"):
        r = results.get(case)
        if not r:
            continue
        s, k = r.get("sipd", {}), r.get("Kamailio", {})
        sv = s.get("max_rate") if s.get("available") else None
        kv = k.get("max_rate") if k.get("available") else None
        rows.append((names[case], "/s", sv, kv, True,
                     s.get("note", "") if not s.get("available") else ""))
        sc = s.get("server_cpu")
        kc = k.get("server_cpu")
        if sc is not None or kc is not None:
            rows.append(("  server CPU at max", "%",
                         None if sc is None else round(100 * sc),
                         None if kc is None else round(100 * kc), None, ""))
            # on a shared machine neither server may get its whole core
            rows.append(("  max per server CPU-second", "/s",
                         sv / sc if sv and sc else None,
                         kv / kc if kv and kc else None, "derived", ""))
        for p in ("p50", "p99"):
            sl = s.get("latency_at_half", {}).get("latency_ms", {}).get(p)
            kl = k.get("latency_at_half", {}).get("latency_ms", {}).get(p)
            if sl is not None or kl is not None:
                rows.append(("  latency %s at 50 %% of max" % p, "ms", sl, kl,
                             "lower", ""))
    m = results.get("mem")
    if m:
        rows.append(("memory per binding at {:,}".format(
                     max(m["sipd"]["bindings"], m["Kamailio"]["bindings"])),
                     "B", m["sipd"]["bytes_per_binding"],
                     m["Kamailio"]["bytes_per_binding"], "max512",
                     "Kamailio: shm real_used (used %s B, PSS %s B)" % (
                         m["Kamailio"].get("shm_used_bytes_per_binding"),
                         m["Kamailio"].get("pss_bytes_per_binding"))))
    return rows


def fmt(v):
    if v is None:
        return "n/a"
    if isinstance(v, float) and v < 100:
        return "%.3g" % v
    return "{:,}".format(int(round(v)))


def verdict(sv, kv, better):
    """The ratio sipd/Kamailio and what it says against the 3x target."""
    if sv is None or kv is None or not kv or better is None:
        return None, ""
    ratio = sv / kv
    if better == "lower":
        return ratio, "(no target)"
    if better == "derived":
        return ratio, "(rate / server CPU)"
    if better == "max512":
        # the memory target is absolute: at most 512 B per binding
        if sv <= 512:
            return ratio, "<= 512 B: met"
        return ratio, "<= 512 B: short by %s B" % fmt(sv - 512)
    if better:
        if ratio >= TARGET:
            return ratio, "3x: met"
        return ratio, "3x: short by %.2fx (needs %s)" % (
            TARGET / ratio if ratio else float("inf"), fmt(TARGET * kv))
    if not sv:
        return ratio, ""
    inv = kv / sv
    if inv >= TARGET:
        return ratio, "3x: met (%.2fx lower)" % inv
    return ratio, "3x: short by %.2fx (needs <= %s)" % (
        TARGET / inv, fmt(kv / TARGET))


def table(results):
    out = ["| figure | unit | sipd | Kamailio | sipd/Kamailio | 3x target |",
           "|---|---|---:|---:|---:|---|"]
    for name, unit, sv, kv, better, note in rows_of(results):
        ratio, v = verdict(sv, kv, better)
        if note and not v:
            v = note
        elif note:
            v += "; " + note
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            name, unit, fmt(sv), fmt(kv),
            "%.2f" % ratio if ratio is not None else "n/a", v))
    s = results.get("sipp")
    if s and "rate" in s:
        for who in ("sipd", "Kamailio"):
            r = s.get(who)
            if r:
                out.append("| SIPp check, %s, %d REGISTER at %d/s | ok/failed "
                           "| SIPp %d/%d | sipbench %d/%d | | %s |" % (
                               who, s["count"], s["rate"],
                               r["sipp"]["succeeded"], r["sipp"]["failed"],
                               r["sipbench"]["succeeded"],
                               r["sipbench"]["failed"],
                               "same" if r["same"] else "DIFFERENT"))
    return "\n".join(out)


def chart(results, png, tmp):
    """Bars of sipd's advantage per figure with a 3x target (throughput:
    sipd/Kamailio; memory: Kamailio/sipd), with the target line."""
    if not shutil.which("gnuplot"):
        log("gnuplot not found (Debian gnuplot-nox): no chart")
        return False
    data = os.path.join(tmp, "chart.dat")
    n, top = 0, TARGET
    with open(data, "w") as f:
        for name, unit, sv, kv, better, note in rows_of(results):
            if better not in (True, False) or not sv or not kv:
                continue
            adv = sv / kv if better is True else kv / sv
            f.write('"%s\\n%s / %s %s" %.4f\n' % (
                name.strip(), fmt(sv), fmt(kv), unit, adv))
            n += 1
            top = max(top, adv)
    if not n:
        log("no figure to chart")
        return False
    script = """
set terminal pngcairo size 1100,560 font ",10" noenhanced
set output '%s'
set title "sipd over Kamailio, one core each (throughput: sipd/Kamailio; memory: Kamailio/sipd)"
set style fill solid 0.7 border -1
set boxwidth 0.6
set yrange [0:%g]
set ylabel "x Kamailio"
set grid ytics
set xtics rotate by -20 left
set key top right
plot '%s' using 0:2:xtic(1) with boxes lc rgb "#3572b0" title "sipd", \\
     %g with lines lw 2 lc rgb "#c03030" title "3x target", \\
     1 with lines dt 2 lc rgb "#606060" title "parity"
""" % (png, top * 1.15, data, TARGET)
    p = subprocess.run(["gnuplot"], input=script, text=True,
                       capture_output=True, timeout=60)
    if p.returncode != 0:
        log("gnuplot failed: " + p.stderr[-500:])
        return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--users", type=int)
    ap.add_argument("--mem-users", type=int)
    ap.add_argument("--only", default="reg,auth,mem,calls,sipp")
    ap.add_argument("--max-trials", type=int)
    ap.add_argument("--mem-settle", type=float,
                    help="seconds between the end of the memory load and "
                    "the measure (default 70: transactions ended)")
    ap.add_argument("--start-rate", type=int, default=0,
                    help="first rate of every search (default per case)")
    ap.add_argument("--kamailio-mem", type=int, default=4096)
    ap.add_argument("--kamailio-children", type=int, default=2)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--report", metavar="JSON",
                    help="print the table and draw the chart of an earlier "
                    "run's JSON; run nothing")
    ap.add_argument("--json", default=os.path.join(HERE, "results",
                                                   "sidebyside.json"))
    ap.add_argument("--png", default=os.path.join(HERE, "results",
                                                  "sidebyside.png"))
    a = ap.parse_args()
    # defaults, and those of --smoke; options given win over both
    for k, full, smoke in (("seconds", 20, 2), ("users", 100000, 1000),
                           ("mem_users", 1000000, 10000),
                           ("max_trials", 7, 3), ("mem_settle", 70, 1)):
        if getattr(a, k) is None:
            setattr(a, k, smoke if a.smoke else full)
    if a.smoke:
        a.kamailio_mem = min(a.kamailio_mem, 256)
    if a.report:
        with open(a.report) as f:
            res = json.load(f)
        print(table(res["results"]))
        ctmp = tempfile.mkdtemp(prefix="sidebyside-chart-")
        try:
            chart(res["results"], os.path.abspath(a.png), ctmp)
        finally:
            shutil.rmtree(ctmp, ignore_errors=True)
        return 0
    cases = [c for c in a.only.split(",") if c]
    bad = [c for c in cases if c not in ("reg", "auth", "mem", "calls",
                                         "sipp")]
    if (bad or a.seconds < 1 or a.users < 1 or a.mem_users < 1 or
            a.max_trials < 1):
        ap.error("bad --only, --seconds or user count")
    missing = [p for p in ("taskset", "kamailio", "kamcmd")
               if not shutil.which(p)]
    missing += [p for p in ("sipd", "sipbench", "sipctl")
                if not os.access(os.path.join(a.build, p), os.X_OK)]
    if missing:
        log("sidebyside: missing %s (make deps; make build)" %
            ", ".join(missing))
        return 1
    tmp = tempfile.mkdtemp(prefix="sidebyside-")
    b = Bench(a, tmp)
    t0 = time.monotonic()
    la0 = loadavg()
    try:
        for c in cases:
            if c in ("reg", "auth", "calls"):
                b.throughput(c)
            elif c == "mem":
                b.memory()
            else:
                b.sipp()
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        log("sidebyside: %s" % e)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res = {"date": time.strftime("%Y-%m-%d %H:%M"), "seconds": a.seconds,
           "users": a.users, "mem_users": a.mem_users,
           "kamailio": {"children": a.kamailio_children,
                        "shm_mb": a.kamailio_mem},
           "loadavg_start": la0, "loadavg_end": loadavg(),
           "duration_s": round(time.monotonic() - t0, 1),
           "results": b.results}
    print(table(b.results))
    print("(%d s runs, %d users; load average %.2f -> %.2f; machine shared: "
          "figures are indicative)" % (a.seconds, a.users, la0,
                                       res["loadavg_end"]))
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    ctmp = tempfile.mkdtemp(prefix="sidebyside-chart-")
    try:
        if chart(b.results, os.path.abspath(a.png), ctmp):
            log("wrote %s and %s" % (a.json, a.png))
    finally:
        shutil.rmtree(ctmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
