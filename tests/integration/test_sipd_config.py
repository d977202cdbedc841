#!/usr/bin/env python3
"""sipd's configuration file, logs and SIGHUP reload, end to end.

usage: test_sipd_config.py SIPD EXAMPLE_CONF

--check-config on docs/sipd.conf.example, a good file and a bad one (the
exact FILE:LINE:COLUMN: error lines, exit 1); sipd started with --config
(listens where the file says, port 0, flags override the file); trace
lines show a received OPTIONS and the sent 200; SIGHUP with level debug
brings debug lines, with format json every line parses as JSON; SIGHUP
with a broken file logs the errors and keeps the old configuration
(OPTIONS still answered, still JSON); a binding registered before the
reloads is still there after them, a new max_expires applies, and
auth = on makes the next REGISTER get a 401.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SIPD, EXAMPLE = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def check_config(path):
    p = subprocess.run([SIPD, "--check-config", path], capture_output=True,
                       text=True, timeout=10)
    return p.returncode, p.stdout, p.stderr


class Sipd:
    def __init__(self, args, env):
        self.proc = subprocess.Popen([SIPD] + args, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines = []
        self.lock = threading.Lock()
        threading.Thread(target=self._drain, daemon=True).start()
        self.udp = None
        line = self.wait_for(r"bindings loaded")
        assert line, "sipd did not start: " + "".join(self.lines)
        for l in self.snapshot():
            m = re.search(r"listening on udp:127\.0\.0\.1:(\d+)", l)
            if m:
                self.udp = int(m.group(1))

    def _drain(self):
        for line in self.proc.stderr:
            with self.lock:
                self.lines.append(line)

    def snapshot(self, start=0):
        with self.lock:
            return list(self.lines[start:])

    def mark(self):
        with self.lock:
            return len(self.lines)

    def wait_for(self, pattern, start=0, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for l in self.snapshot(start):
                if re.search(pattern, l):
                    return l
            time.sleep(0.02)
        return None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


class Client:
    def __init__(self, port):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.lport = self.sock.getsockname()[1]
        self.n = 0

    def request(self, method, ruri, extra=""):
        self.n += 1
        branch = "z9hG4bK-cfg-%d-%d" % (os.getpid(), self.n)
        msg = ("%s %s SIP/2.0\r\n"
               "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport\r\n"
               "Max-Forwards: 70\r\n"
               "From: <sip:alice@example.com>;tag=t%d\r\n"
               "To: <sip:alice@example.com>\r\n"
               "Call-ID: cfg-%d@127.0.0.1\r\n"
               "CSeq: %d %s\r\n"
               "%s"
               "Content-Length: 0\r\n\r\n") % (
                   method, ruri, self.lport, branch, self.n, os.getpid(),
                   self.n, method, extra)
        for _ in range(6):
            self.sock.sendto(msg.encode(), ("127.0.0.1", self.port))
            try:
                while True:
                    data = self.sock.recv(65535).decode()
                    if branch in data:
                        return data
            except socket.timeout:
                continue
        return None

    def options(self):
        r = self.request("OPTIONS", "sip:127.0.0.1")
        return r is not None and r.startswith("SIP/2.0 200 ")

    def register(self, contact):
        return self.request("REGISTER", "sip:example.com",
                            "Contact: %s\r\n" % contact if contact else "")


def status(resp):
    return int(resp.split()[1]) if resp else 0


def contacts(resp):
    out = {}
    for line in resp.split("\r\n"):
        m = re.match(r"(?i)contact:\s*<([^>]*)>.*;expires=(\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


BAD = """\
# a broken file
[server]
listen = udp:localhost:5060
workrs = 2
auth = yes
[registrar]
min_expires = 0
[srever]
db = x
[log]
level = loud
"""


def main():
    tmp = tempfile.mkdtemp(prefix="sipd-config-test-")
    env = dict(os.environ, SIPD_DB=os.path.join(tmp, "sipd.db"))

    # --check-config
    rc, out, err = check_config(EXAMPLE)
    check(rc == 0 and out == "%s: ok\n" % EXAMPLE and err == "",
          "the example file passes --check-config (%r %r)" % (out, err))
    bad = os.path.join(tmp, "bad.conf")
    write(bad, BAD)
    rc, out, err = check_config(bad)
    want = [
        bad + ":3:10: error: expected a listen URI like udp:127.0.0.1:5060",
        bad + ':4:1: error: unknown key "workrs" in [server]; did you mean '
        '"workers"?',
        bad + ":5:8: error: expected on or off",
        bad + ":7:15: error: expected a number 1..604800",
        bad + ":8:2: error: unknown section [srever]; did you mean [server]?",
        bad + ":11:9: error: expected error, warn, info, debug or trace",
    ]
    check(rc == 1 and out == "" and err.splitlines() == want,
          "--check-config reports every error with line and column:\n" + err)
    rc, out, err = check_config(os.path.join(tmp, "missing.conf"))
    check(rc == 1 and "No such file" in err, "--check-config on no file")

    # sipd with a file; the flag -w 1 overrides workers = 2
    conf = os.path.join(tmp, "sipd.conf")
    good = """\
[server]
listen = udp:127.0.0.1:0   # a free port
listen = tcp:127.0.0.1:0
workers = 2
domain = example.com
db = "%s"
auth = off
[registrar]
max_expires = 7200
[log]
level = trace
""" % os.path.join(tmp, "sipd.db")
    write(conf, good)
    rc, out, err = check_config(conf)
    check(rc == 0, "the test's file passes --check-config " + err)
    sipd = Sipd(["--config", conf, "-w", "1"], env)
    try:
        check(sipd.udp is not None, "listens on the file's udp address")
        check(sipd.wait_for(r"listening on tcp:127\.0\.0\.1:\d+") is not None,
              "listens on the file's tcp address")
        check(sipd.wait_for(r"^sipd: 1 worker$") is not None,
              "the flag -w 1 overrides workers = 2")
        c = Client(sipd.udp)

        # trace: the OPTIONS received and the 200 sent
        m = sipd.mark()
        check(c.options(), "OPTIONS answered 200")
        recv = sipd.wait_for(r"recv udp 127\.0\.0\.1:%d \d+ bytes: OPTIONS "
                             r"sip:127\.0\.0\.1 SIP/2\.0\\r\\nVia:" % c.lport,
                             m)
        sent = sipd.wait_for(r"send udp 127\.0\.0\.1:%d \d+ bytes: SIP/2\.0 "
                             r"200 OK\\r\\n" % c.lport, m)
        check(recv is not None, "trace shows the received OPTIONS")
        check(sent is not None, "trace shows the sent 200")

        # a binding, then reloads
        resp = c.register("<sip:alice@192.0.2.1:5060>;expires=600")
        check(status(resp) == 200, "REGISTER with auth off: 200")

        write(conf, good.replace("level = trace", "level = warn"))
        m = sipd.mark()
        sipd.proc.send_signal(signal.SIGHUP)
        check(sipd.wait_for(r"reloaded .*log level warn", m) is not None,
              "SIGHUP: reloaded with level warn")
        m = sipd.mark()
        check(c.options(), "OPTIONS answered after the reload")
        time.sleep(0.3)
        check(not any("OPTIONS" in l for l in sipd.snapshot(m)),
              "level warn: no more trace or debug lines")

        write(conf, good.replace("level = trace", "level = debug")
              .replace("max_expires = 7200",
                       "max_expires = 900\ndefault_expires = 600")
              .replace("workers = 2", "workers = 3")
              .replace("listen = tcp:127.0.0.1:0\n", ""))
        sipd.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        m = sipd.mark()
        check(c.options(), "OPTIONS answered after the second reload")
        check(sipd.wait_for(r"sipd\[\d+\]: udp:127\.0\.0\.1:%d OPTIONS "
                            r"sip:127\.0\.0\.1 -> 200 OK" % c.lport, m)
              is not None, "SIGHUP with level debug: debug lines appear")
        check(sipd.wait_for(r"\[server\] listen changed; needs a restart")
              is not None, "a listen change is logged as needing a restart")
        check(not sipd.wait_for(r"workers changed", timeout=0.1),
              "workers = 3 is overridden by -w 1: no change")
        resp = c.register("<sip:alice@192.0.2.2:5060>;expires=5000")
        got = contacts(resp)
        check(status(resp) == 200 and
              got.get("sip:alice@192.0.2.2:5060") in (899, 900),
              "the new max_expires applies (%r)" % got)
        check("sip:alice@192.0.2.1:5060" in got,
              "the binding made before the reloads survived them")

        # JSON lines
        write(conf, good.replace("level = trace",
                                 "level = trace\nformat = json"))
        sipd.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        m = sipd.mark()
        check(c.options(), "OPTIONS answered with JSON logs")
        sipd.wait_for(r'"dir":"send"', m)
        lines = sipd.snapshot(m)
        objs = []
        for l in lines:
            try:
                objs.append(json.loads(l))
            except ValueError:
                check(False, "a log line is not JSON: %r" % l)
        check(objs and all({"ts", "level", "worker", "event"} <= set(o)
                           for o in objs), "every JSON line has ts, level, "
              "worker and event")
        sip = [o for o in objs if o.get("event") == "sip"]
        check(any(o["dir"] == "recv" and o["transport"] == "udp" and
                  o["message"].startswith("OPTIONS sip:127.0.0.1 SIP/2.0\r\n")
                  and o["peer"] == "127.0.0.1:%d" % c.lport for o in sip),
              "a JSON trace line holds the received OPTIONS")
        check(any(o["dir"] == "send" and
                  o["message"].startswith("SIP/2.0 200 OK\r\n") for o in sip),
              "a JSON trace line holds the sent 200")

        # a broken file: errors logged, the old configuration stays
        write(conf, BAD)
        m = sipd.mark()
        sipd.proc.send_signal(signal.SIGHUP)
        failed = sipd.wait_for(r"reload failed", m)
        check(failed is not None, "SIGHUP with a broken file: reload failed")
        errs = [json.loads(l) for l in sipd.snapshot(m)
                if '"config_error"' in l]
        check(len(errs) == 6 and errs[0]["line"] == 3 and
              errs[0]["column"] == 10, "each error is logged with its line "
              "and column (%d)" % len(errs))
        m = sipd.mark()
        check(c.options(), "still answers OPTIONS after the broken reload")
        check(sipd.wait_for(r'"event":"sip"', m) is not None,
              "the old log settings (json, trace) still apply")
        resp = c.register(None)
        check(len(contacts(resp)) == 2, "bindings still there")

        # auth is switched at run time
        write(conf, good.replace("auth = off", "auth = on"))
        m = sipd.mark()
        sipd.proc.send_signal(signal.SIGHUP)
        check(sipd.wait_for(r"reloaded .*auth on", m) is not None,
              "SIGHUP with auth = on: reloaded")
        check(status(c.register(None)) == 401,
              "REGISTER is challenged after auth = on")
    finally:
        sipd.stop()
    check(sipd.proc.returncode == 0, "sipd exits 0 on SIGTERM")

    # a bad file at start: errors and exit 1
    p = subprocess.run([SIPD, "--config", bad], capture_output=True,
                       text=True, env=env, timeout=10)
    check(p.returncode == 1 and p.stderr.splitlines() == want,
          "sipd --config with a broken file exits 1 with the errors")

    if failures:
        print("sipd log:\n  " + "  ".join(sipd.lines), file=sys.stderr)
        for f in failures:
            print("FAIL %s" % f, file=sys.stderr)
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
