#!/usr/bin/env python3
"""Transport benchmarks of sipd on loopback (make bench, make bench-soak).

usage: transport_bench.py [--build DIR] [--seconds S] [--soak-count N]
                          [--idle-conns N] [--only CASE,...] [--perf]
                          [--json FILE]

Cases (all by default, in this order):
  udp      OPTIONS over UDP: bare recvmmsg/sendmmsg echo (the ceiling),
           sipd with 1 worker, sipd with 2 workers; the ratio sipd/echo
  calls    sipd --uas, INVITE calls from sipbench over UDP: calls/s
  stream   OPTIONS over TCP and over TLS, 100 connections each
  idle     memory per idle TLS connection (VmRSS growth / N)
  hs       new TLS handshakes/s (ECDSA P-256 and RSA-2048 certificates)
  soak     N TLS connections (1 in 10 reset mid-handshake), then sipd
           must answer and its RSS and descriptors return to baseline

Servers run pinned to core 0 (two workers: cores 0 and 1), the load to
core 1, both with taskset. Nothing is built here: it expects DIR (default
build/) to hold sipd, sipbench and the bench programs. A self-signed
certificate is made with the openssl command in a temporary directory.
Every process started is stopped by its PID; each run is bounded in time.
Prints a table and writes the figures as JSON (default
bench/results/transport.json).
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
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SERVER_CPU = "0"
LOAD_CPU = "1"
TICK = os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cpu_s(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Server:
    """A server process pinned with taskset; its listening ports are read
    from its stderr ("... listening on PROTO:HOST:PORT")."""

    def __init__(self, argv, cpus, tmp, name, expect):
        self.log = os.path.join(tmp, name + ".log")
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(["taskset", "-c", cpus] + argv,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)
        self.pid = self.proc.pid
        self.ports = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(self.ports) < expect:
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
            with open(self.log) as f:
                for m in re.finditer(r"listening on (\w+):([\d.]+):(\d+)",
                                     f.read()):
                    self.ports[m.group(1)] = "%s:%s" % (m.group(2),
                                                        m.group(3))
        if len(self.ports) < expect:
            self.stop()
            raise RuntimeError("%s did not start: %s" %
                               (name, open(self.log).read()[-2000:]))
        time.sleep(0.2)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


def run_load(argv, timeout):
    """Run a load program pinned to the load core; its stdout is JSON
    (the last line). Returns (result, load CPU seconds)."""
    p = subprocess.Popen(["taskset", "-c", LOAD_CPU] + argv,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise RuntimeError("%s timed out" % argv[0])
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (argv[0], p.returncode,
                                                   err[-2000:]))
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]), err


def measured(server, argv, timeout):
    """Run a load against a started server; add the server's CPU use over
    the run (fraction of one core)."""
    c0, t0 = cpu_s(server.pid), time.monotonic()
    res, err = run_load(argv, timeout)
    c1, t1 = cpu_s(server.pid), time.monotonic()
    res["server_cpu"] = round((c1 - c0) / (t1 - t0), 3)
    return res, err


def make_certs(tmp):
    certs = {}
    for name, args in (("ecdsa", ["-newkey", "ec", "-pkeyopt",
                                  "ec_paramgen_curve:P-256"]),
                       ("rsa", ["-newkey", "rsa:2048"])):
        key = os.path.join(tmp, name + "-key.pem")
        cert = os.path.join(tmp, name + "-cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-keyout", key,
                        "-out", cert] + args, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        certs[name] = (cert, key)
    return certs


class Bench:
    def __init__(self, args, tmp):
        self.a = args
        self.tmp = tmp
        self.b = lambda name: os.path.join(args.build, name)
        self.certs = make_certs(tmp)
        self.results = {}
        self.rows = []

    def sipd(self, workers, listen, cpus=SERVER_CPU, cert="ecdsa",
             uas=False, name="sipd"):
        argv = [self.b("sipd"), "--workers", str(workers)]
        for spec in listen:
            argv += ["--listen", spec]
        if any(s.startswith("tls:") for s in listen):
            argv += ["--tls-cert", self.certs[cert][0],
                     "--tls-key", self.certs[cert][1]]
        if uas:
            argv.append("--uas")
        return Server(argv, cpus, self.tmp, name, len(listen))

    def row(self, case, value, unit, cmd, extra=""):
        self.rows.append((case, value, unit, extra, cmd))

    # -- UDP ---------------------------------------------------------------
    def udp(self):
        s = self.a.seconds
        win = str(self.a.udp_window)
        load = lambda t: [self.b("udp_load"), "--target", t, "--window",
                          win, "--sockets", "8", "--duration", str(s)]
        r = {}
        srv = Server([self.b("udp_echo"), "--listen", "127.0.0.1:0",
                      "--duration", str(s + 30)], SERVER_CPU, self.tmp,
                     "udp_echo", 1)
        try:
            r["echo"], _ = measured(srv, load(srv.ports["udp"]), s + 30)
        finally:
            srv.stop()
        self.row("UDP OPTIONS -> udp_echo (ceiling)", r["echo"]["rate"],
                 "req/s", "udp_echo / udp_load --window %s --sockets 8" % win,
                 "echo CPU %.0f%%" % (100 * r["echo"]["server_cpu"]))
        for w, cpus in ((1, SERVER_CPU), (2, "0,1")):
            srv = self.sipd(w, ["udp:127.0.0.1:0"], cpus=cpus)
            perf = None
            try:
                if self.a.perf and w == 1 and shutil.which("perf"):
                    pdata = os.path.join(self.tmp, "perf.data")
                    perf = subprocess.Popen(
                        ["perf", "record", "-g", "-o", pdata, "-p",
                         str(srv.pid), "--", "sleep", str(min(s, 5))],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                key = "sipd_w%d" % w
                r[key], _ = measured(srv, load(srv.ports["udp"]), s + 30)
                if perf:
                    perf.wait(timeout=60)
                    rep = subprocess.run(
                        ["perf", "report", "-i", pdata, "--stdio",
                         "--no-children", "--sort", "symbol", "-g", "none",
                         "--percent-limit", "1"],
                        capture_output=True, text=True, timeout=120).stdout
                    top = [ln.strip() for ln in rep.splitlines()
                           if re.match(r"\s+\d+\.\d+%", ln)]
                    r["perf_top_w1"] = top[:25]
            finally:
                if perf and perf.poll() is None:
                    perf.send_signal(signal.SIGINT)
                    perf.wait(timeout=30)
                if not srv.alive():
                    r["crash_w%d" % w] = True
                srv.stop()
            self.row("UDP OPTIONS -> sipd, %d worker%s" %
                     (w, "s" if w > 1 else ""), r[key]["rate"], "req/s",
                     "sipd --workers %d (taskset %s) / udp_load" % (w, cpus),
                     "sipd CPU %.0f%%%s" % (100 * r[key]["server_cpu"],
                                            ", load shares core 1"
                                            if w > 1 else ""))
        r["ratio_w1_echo"] = round(r["sipd_w1"]["rate"] /
                                   r["echo"]["rate"], 3)
        r["ratio_w1_echo_per_cpu"] = round(
            (r["sipd_w1"]["rate"] / max(r["sipd_w1"]["server_cpu"], 0.01)) /
            (r["echo"]["rate"] / max(r["echo"]["server_cpu"], 0.01)), 3)
        self.row("  ratio sipd(1 worker) / echo", r["ratio_w1_echo"], "",
                 "target >= 0.5",
                 "per server CPU-second: %.2f" % r["ratio_w1_echo_per_cpu"])
        self.results["udp"] = r

    # -- calls (transaction-stateful) ---------------------------------------
    def calls(self):
        s = self.a.seconds
        srv = self.sipd(1, ["udp:127.0.0.1:0"], uas=True)
        out = os.path.join(self.tmp, "calls.json")
        try:
            c0, t0 = cpu_s(srv.pid), time.monotonic()
            run_raw = subprocess.run(
                ["taskset", "-c", LOAD_CPU, self.b("sipbench"), "call",
                 "--target", srv.ports["udp"], "--inflight", "200",
                 "--duration", str(s), "--quiet", "--json", out],
                capture_output=True, text=True, timeout=s + 60)
            cpu = (cpu_s(srv.pid) - c0) / (time.monotonic() - t0)
            if run_raw.returncode != 0:
                raise RuntimeError("sipbench: " + run_raw.stderr[-2000:])
            with open(out) as f:
                j = json.load(f)
            alive = srv.alive()
        finally:
            srv.stop()
        r = {k: j.get(k) for k in ("attempted", "succeeded", "failed",
                                   "failed_by_reason", "retransmissions",
                                   "rate", "duration_s", "latency_ms")}
        r["server_cpu"] = round(cpu, 3)
        r["server_alive"] = alive
        self.results["calls"] = r
        self.row("UDP calls -> sipd --uas, 1 worker", r["rate"], "calls/s",
                 "sipbench call --inflight 200",
                 "failed %s, sipd CPU %.0f%%" % (r["failed"], 100 * cpu))

    # -- TCP and TLS, 100 connections ---------------------------------------
    def stream(self):
        s = self.a.seconds
        r = {}
        srv = self.sipd(1, ["tcp:127.0.0.1:0", "tls:127.0.0.1:0"])
        try:
            for proto in ("tcp", "tls"):
                argv = [self.b("stream_load"), "load", "--target",
                        srv.ports[proto], "--conns", "100", "--depth", "8",
                        "--duration", str(s)]
                if proto == "tls":
                    argv.append("--tls")
                r[proto], _ = measured(srv, argv, s + 60)
                self.row("%s OPTIONS -> sipd, 100 conns" % proto.upper(),
                         r[proto]["rate"], "req/s",
                         "stream_load load --conns 100 --depth 8%s" %
                         (" --tls" if proto == "tls" else ""),
                         "sipd CPU %.0f%%, failed conns %d" %
                         (100 * r[proto]["server_cpu"], r[proto]["failed"]))
            r["server_alive"] = srv.alive()
        finally:
            srv.stop()
        self.results["stream"] = r

    # -- memory per idle TLS connection --------------------------------------
    def idle(self):
        n = self.a.idle_conns
        srv = self.sipd(1, ["tls:127.0.0.1:0"])
        holder = None
        try:
            before = rss_kib(srv.pid)
            holder = subprocess.Popen(
                ["taskset", "-c", LOAD_CPU, self.b("stream_load"), "idle",
                 "--tls", "--target", srv.ports["tls"], "--conns", str(n),
                 "--hold", "120"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            line = holder.stdout.readline()
            ready = json.loads(line)
            time.sleep(1.0)
            after = rss_kib(srv.pid)
            fds_open = nfds(srv.pid)
            holder.stdin.close()
            holder.wait(timeout=60)
            time.sleep(1.0)
            closed = rss_kib(srv.pid)
            alive = srv.alive()
        finally:
            if holder and holder.poll() is None:
                holder.kill()
                holder.wait()
            srv.stop()
        per = (after - before) / max(ready["answered"], 1)
        r = {"conns": n, "answered": ready["answered"],
             "failed": ready["failed"], "setup_s": ready["setup_s"],
             "rss_before_kib": before, "rss_idle_kib": after,
             "rss_after_close_kib": closed, "server_fds_while_idle": fds_open,
             "kib_per_conn": round(per, 2), "server_alive": alive}
        self.results["idle"] = r
        self.row("memory per idle TLS connection", r["kib_per_conn"], "KiB",
                 "stream_load idle --tls --conns %d" % n,
                 "RSS %d -> %d KiB (%d after close), target <= 20" %
                 (before, after, closed))

    # -- new TLS handshakes/s ------------------------------------------------
    def hs(self):
        s = self.a.seconds
        r = {}
        for cert in ("ecdsa", "rsa"):
            srv = self.sipd(1, ["tls:127.0.0.1:0"], cert=cert)
            try:
                res, _ = measured(srv, [self.b("tls_churn"), "--target",
                                        srv.ports["tls"], "--concurrency",
                                        "32", "--duration", str(s)], s + 60)
                res["server_alive"] = srv.alive()
            finally:
                srv.stop()
            res["per_server_core"] = round(
                res["handshakes_per_s"] / max(res["server_cpu"], 0.01), 1)
            r[cert] = res
            self.row("new TLS handshakes/s, %s cert" %
                     ("ECDSA P-256" if cert == "ecdsa" else "RSA-2048"),
                     res["handshakes_per_s"], "hs/s",
                     "tls_churn --concurrency 32",
                     "sipd CPU %.0f%% -> %.0f/s per core; errors %d" %
                     (100 * res["server_cpu"], res["per_server_core"],
                      res["errors"]))
        self.results["handshakes"] = r

    # -- churn soak -------------------------------------------------------------
    def wait_fds(self, srv, target, limit_s):
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and nfds(srv.pid) > target:
            time.sleep(0.2)
        return nfds(srv.pid)

    def answers(self, srv):
        res, _ = run_load([self.b("stream_load"), "idle", "--tls",
                           "--target", srv.ports["tls"], "--conns", "1",
                           "--hold", "0.1"], 30)
        return res["answered"] == 1

    def soak(self):
        n = self.a.soak_count
        if n <= 0:
            return
        srv = self.sipd(1, ["tls:127.0.0.1:0"])
        churn = [self.b("tls_churn"), "--target", srv.ports["tls"],
                 "--concurrency", "32", "--abort-every", "10"]
        try:
            rss_start = rss_kib(srv.pid)
            fds0 = nfds(srv.pid)
            # warm up: OpenSSL's and the allocator's one-time growth
            run_load(churn + ["--count", "2000", "--duration", "60"], 120)
            fds_warm = self.wait_fds(srv, fds0, 15)
            time.sleep(1)
            base = rss_kib(srv.pid)
            t0 = time.monotonic()
            res, _ = run_load(churn + ["--count", str(n), "--duration",
                                       str(self.a.soak_limit),
                                       "--progress", "30"],
                              self.a.soak_limit + 60)
            soak_s = time.monotonic() - t0
            fds_end = self.wait_fds(srv, fds0, 15)
            time.sleep(1)
            after = rss_kib(srv.pid)
            alive = srv.alive()
            answering = alive and self.answers(srv)
        finally:
            srv.stop()
        growth = (after - base) / base
        ok = (alive and answering and fds_end <= fds0 and growth <= 0.10
              and res["started"] >= n)
        r = {"connections": res["started"], "handshakes": res["handshakes"],
             "ok": res["ok"], "aborted_mid_handshake": res["aborted"],
             "errors": res["errors"], "timeouts": res["timeouts"],
             "seconds": round(soak_s, 1),
             "rate": round(res["started"] / soak_s, 1),
             "rss_start_kib": rss_start, "rss_baseline_kib": base,
             "rss_after_kib": after, "rss_growth": round(growth, 4),
             "server_fds_start": fds0, "server_fds_after_warmup": fds_warm,
             "server_fds_after": fds_end, "server_alive": alive,
             "server_answering": answering, "passed": ok}
        self.results["soak"] = r
        self.row("TLS churn soak: %d connections" % res["started"],
                 "PASS" if ok else "FAIL", "",
                 "tls_churn --abort-every 10 --count %d" % n,
                 "RSS %d -> %d KiB (%+.1f%%), fds %d -> %d, %d errors, "
                 "%.0f s" % (base, after, 100 * growth, fds0, fds_end,
                             res["errors"], soak_s))

    def table(self):
        print("\n%-40s %14s %-7s %s" % ("case", "value", "unit", "notes"))
        print("-" * 100)
        for case, value, unit, extra, cmd in self.rows:
            v = ("{:,.1f}".format(value) if isinstance(value, float)
                 else str(value))
            print("%-40s %14s %-7s %s" % (case, v, unit, extra))
            print("%-40s   %s" % ("", cmd))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--idle-conns", type=int, default=2000)
    ap.add_argument("--soak-count", type=int, default=100000)
    ap.add_argument("--soak-limit", type=float, default=600,
                    help="the soak stops starting connections after this")
    ap.add_argument("--only", default="udp,calls,stream,idle,hs,soak")
    ap.add_argument("--udp-window", type=int, default=256,
                    help="requests in flight of the UDP load")
    ap.add_argument("--perf", action="store_true",
                    help="perf record -g sipd (1 worker) during the UDP run")
    ap.add_argument("--json", default=os.path.join(HERE, "results",
                                                   "transport.json"))
    a = ap.parse_args()
    if os.cpu_count() < 2:
        sys.exit("transport_bench: needs two cores (server and load)")
    for prog in ("sipd", "udp_echo", "udp_load", "stream_load", "tls_churn",
                 "sipbench"):
        if not os.access(os.path.join(a.build, prog), os.X_OK):
            sys.exit("transport_bench: %s/%s missing; build first" %
                     (a.build, prog))
    tmp = tempfile.mkdtemp(prefix="transport-bench-")
    la0 = loadavg()
    t0 = time.time()
    bench = Bench(a, tmp)
    failed = []
    try:
        for case in a.only.split(","):
            print("transport_bench: %s ..." % case, file=sys.stderr,
                  flush=True)
            try:
                getattr(bench, case)()
            except (RuntimeError, subprocess.SubprocessError, OSError,
                    ValueError, KeyError) as e:
                failed.append(case)
                bench.results[case] = {"error": str(e)}
                print("transport_bench: %s failed: %s" % (case, e),
                      file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {"date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "cores": os.cpu_count(), "seconds_per_case": a.seconds,
           "loadavg_start": la0, "loadavg_end": loadavg(),
           "elapsed_s": round(time.time() - t0, 1),
           "server_cpus": SERVER_CPU, "load_cpu": LOAD_CPU,
           "results": bench.results}
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    bench.table()
    print("\nload average %.2f at start, %.2f at end; %.0f s; %s" %
          (la0, out["loadavg_end"], out["elapsed_s"], a.json))
    soak = bench.results.get("soak")
    if failed or (soak and soak.get("passed") is False):
        sys.exit(1)


if __name__ == "__main__":
    main()
