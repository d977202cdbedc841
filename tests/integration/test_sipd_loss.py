#!/usr/bin/env python3
"""Datagram loss recovered by retransmission.

usage: test_sipd_loss.py SIPD SIPBENCH

Starts SIPD --uas with its test hook dropping every 5th received UDP
datagram, then places calls with sipbench (INVITE, 180/200, ACK, BYE; RFC
3261 retransmissions over UDP, T1 shortened to 50 ms to keep the test
short). Every call must succeed, and sipbench must have retransmitted: the
lost INVITEs and BYEs were recovered by the client's timers and absorbed or
answered by sipd's server transactions.
"""
import json
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

# sipd keeps a database (users, bindings): give it a private one, never the
# default under $HOME.
_DB_DIR = tempfile.mkdtemp(prefix="sipd-test-")
atexit.register(shutil.rmtree, _DB_DIR, True)
os.environ["SIPD_DB"] = os.path.join(_DB_DIR, "sipd.db")


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    sipd, sipbench = argv[1], argv[2]
    proc = subprocess.Popen(
        [sipd, "--uas", "--workers", "1", "--test-drop-every", "5",
         "--listen", "udp:127.0.0.1:0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    log, port, ready = [], [], threading.Event()

    def reader():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            log.append(line)
            m = re.search(r"listening on udp:127\.0\.0\.1:(\d+)", line)
            if m:
                port.append(int(m.group(1)))
                ready.set()
        ready.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    failures = []
    try:
        if not ready.wait(10) or not port:
            raise SystemExit("sipd did not start:\n" + "\n".join(log))
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "calls.json")
            res = subprocess.run(
                [sipbench, "call", "--target", "127.0.0.1:%d" % port[0],
                 "--rate", "40", "--max-requests", "60", "--t1", "50",
                 "--drain", "10", "--json", out],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=60)
            text = res.stdout.decode("utf-8", "replace")
            if res.returncode != 0 or not os.path.exists(out):
                failures.append("sipbench exit %d:\n%s"
                                % (res.returncode, text))
            else:
                with open(out) as f:
                    r = json.load(f)
                print("calls: attempted %d, succeeded %d, failed %d, "
                      "retransmissions %d"
                      % (r["attempted"], r["succeeded"], r["failed"],
                         r["retransmissions"]))
                if r["attempted"] != 60 or r["succeeded"] != 60 \
                        or r["failed"] != 0:
                    failures.append("not every call succeeded:\n" + text)
                if r["retransmissions"] <= 0:
                    failures.append("no retransmission with 1 in 5 "
                                    "datagrams dropped:\n" + text)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            rc = proc.wait()
        t.join(2)
    if rc != 0:
        failures.append("sipd exit status %d after SIGTERM" % rc)
    if failures:
        print("sipd log:\n  " + "\n  ".join(log), file=sys.stderr)
        for f in failures:
            print("FAIL %s" % f, file=sys.stderr)
        return 1
    print("test_sipd_loss: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
