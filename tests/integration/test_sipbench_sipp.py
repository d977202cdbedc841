#!/usr/bin/env python3
"""sipbench against SIPp (Debian package sip-tester), both directions.

usage: test_sipbench_sipp.py SIPBENCH

- `sipp -sn uas` answers `sipbench call`;
- `sipbench uas` answers `sipp -sn uac`.
Both at a low rate, and both must end with every call successful. Exits
with 77 (a CTest skip) when sipp is not installed.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

CALLS = 40
RATE = 20


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def sipp_uas_answers_sipbench_call(bench, sipp, tmp):
    port = free_udp_port()
    uas = subprocess.Popen(
        [sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m",
         str(CALLS), "-nostdin", "-timeout", "20s"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    time.sleep(0.5)
    out = os.path.join(tmp, "call.json")
    p = subprocess.run(
        [bench, "call", "--target", "127.0.0.1:%d" % port, "--rate",
         str(RATE), "--max-requests", str(CALLS), "--json", out, "--quiet"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    try:
        log, _ = uas.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        uas.kill()
        log, _ = uas.communicate()
    if p.returncode != 0:
        fail("sipbench call exited %d: %s" % (p.returncode, p.stderr))
    with open(out) as f:
        res = json.load(f)
    if res["succeeded"] != CALLS or res["failed"] != 0:
        fail("sipbench call against sipp: %s" % json.dumps(res))
    if uas.returncode != 0:
        fail("sipp -sn uas exited %d:\n%s" % (uas.returncode,
                                               log.decode()[-2000:]))
    print("sipp uas <- sipbench call: %d calls ok" % CALLS)


def sipbench_uas_answers_sipp_uac(bench, sipp, tmp):
    out = os.path.join(tmp, "uas.json")
    uas = subprocess.Popen(
        [bench, "uas", "--listen", "127.0.0.1:0", "--json", out, "--quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    line = uas.stderr.readline().decode()
    m = re.search(r"listening on udp:127\.0\.0\.1:(\d+)", line)
    if not m:
        uas.kill()
        fail("sipbench uas did not start: %r" % line)
    try:
        p = subprocess.run(
            [sipp, "-sn", "uac", "127.0.0.1:%s" % m.group(1), "-i",
             "127.0.0.1", "-p", str(free_udp_port()), "-m", str(CALLS),
             "-r", str(RATE), "-nostdin", "-timeout", "20s"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    finally:
        uas.send_signal(signal.SIGINT)
        uas.communicate(timeout=10)
    if p.returncode != 0:
        fail("sipp -sn uac exited %d:\n%s" % (
            p.returncode, p.stdout.decode()[-2000:]))
    with open(out) as f:
        res = json.load(f)
    if res["succeeded"] != CALLS or res["failed"] != 0:
        fail("sipbench uas answering sipp: %s" % json.dumps(res))
    print("sipbench uas <- sipp uac: %d calls ok" % CALLS)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    sipp = shutil.which("sipp")
    if not sipp:
        print("SKIP: sipp is not installed (Debian package sip-tester)")
        return 77
    tmp = tempfile.mkdtemp(prefix="sipbench-sipp-")
    sipp_uas_answers_sipbench_call(sys.argv[1], sipp, tmp)
    sipbench_uas_answers_sipp_uac(sys.argv[1], sipp, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
