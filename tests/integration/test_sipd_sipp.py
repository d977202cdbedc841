#!/usr/bin/env python3
"""SIPp (Debian sip-tester) calls through sipd's UAS mode.

usage: test_sipd_sipp.py SIPD WORKERS

Starts SIPD --uas with WORKERS workers on free loopback UDP and TCP ports,
then runs SIPp's built-in UAC scenario (INVITE, 100/180/200, ACK, pause,
BYE, 200) against it: 200 calls over UDP, 200 over TCP. SIPp exits 0 only
when every call succeeded. sipd is stopped by its PID and must exit 0.
"""
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

CALLS = 200

# sipd keeps a database (users, bindings): give it a private one, never the
# default under $HOME.
_DB_DIR = tempfile.mkdtemp(prefix="sipd-test-")
atexit.register(shutil.rmtree, _DB_DIR, True)
os.environ["SIPD_DB"] = os.path.join(_DB_DIR, "sipd.db")


def start_sipd(path, workers):
    proc = subprocess.Popen(
        [path, "--uas", "--workers", str(workers),
         "--listen", "udp:127.0.0.1:0", "--listen", "tcp:127.0.0.1:0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    ports, log, ready = {}, [], threading.Event()

    def reader():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            log.append(line)
            m = re.search(r"listening on (udp|tcp):127\.0\.0\.1:(\d+)", line)
            if m:
                ports[m.group(1)] = int(m.group(2))
            if len(ports) == 2:
                ready.set()
        ready.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    if not ready.wait(10) or len(ports) != 2:
        proc.kill()
        raise SystemExit("sipd did not start:\n" + "\n".join(log))
    return proc, ports, log, t


def run_sipp(port, transport, workdir):
    args = ["sipp", "-sn", "uac", "127.0.0.1:%d" % port,
            "-i", "127.0.0.1", "-p", "0", "-m", str(CALLS), "-r", "100",
            "-l", "50", "-d", "10", "-timeout", "40s", "-timeout_error",
            "-nostdin", "-trace_err", "-error_file",
            os.path.join(workdir, "sipp-%s-errors.log" % transport)]
    if transport == "tcp":
        args += ["-t", "t1"]
    res = subprocess.run(args, cwd=workdir, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=60)
    out = res.stdout.decode("utf-8", "replace")
    ok = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", out)
    failed = re.search(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", out)
    return res.returncode, int(ok.group(1)) if ok else -1, \
        int(failed.group(1)) if failed else -1, out


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    if not shutil.which("sipp"):
        print("sipp not installed (Debian package sip-tester): skipped")
        return 77
    sipd, workers = argv[1], int(argv[2])
    proc, ports, log, reader = start_sipd(sipd, workers)
    failures = []
    with tempfile.TemporaryDirectory() as workdir:
        try:
            for transport in ("udp", "tcp"):
                rc, ok, failed, out = run_sipp(ports[transport], transport,
                                               workdir)
                if rc != 0 or ok != CALLS or failed != 0:
                    failures.append("%s: sipp exit %d, %d successful, %d "
                                    "failed\n%s" % (transport, rc, ok,
                                                    failed, out[-3000:]))
                else:
                    print("ok   sipp uac over %s: %d calls, 0 failed"
                          % (transport, ok))
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                rc = proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                rc = proc.wait()
            reader.join(2)
    if rc != 0:
        failures.append("sipd exit status %d after SIGTERM" % rc)
    if failures:
        print("sipd log:\n  " + "\n  ".join(log), file=sys.stderr)
        for f in failures:
            print("FAIL %s" % f, file=sys.stderr)
        return 1
    print("test_sipd_sipp (%d workers): all passed" % workers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
