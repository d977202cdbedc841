#!/usr/bin/env python3
"""baresip (Debian) registers to sipd with a password.

usage: test_baresip_register.py SIPD SIPCTL

A private database with the domain example.com and the user alice; sipd
with digest authentication, offering MD5 only (baresip 1.0's libre gives
up on a SHA-256 challenge even when an MD5 one follows), on free loopback
UDP, TCP and TLS ports (a self-signed certificate made with the openssl
command line). For each transport: a private baresip config directory
(net_interface 127.0.0.1, no audio device, an accounts line with
auth_pass and outbound= pointing at sipd), baresip started without a
console; the test waits until sipd answered its REGISTER with 200 and
`sipctl reg list` shows alice's binding over that transport, then stops
baresip by its PID with SIGTERM: baresip unregisters, and the binding is
gone. Exits 77 when baresip is not installed.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

DOMAIN = "example.com"
USER = "alice"
PASSWORD = "pw-Alice-7"
AOR = "sip:%s@%s" % (USER, DOMAIN)
WAIT = 15

CONFIG = """\
poll_method		epoll
sip_listen		127.0.0.1:0
net_interface		127.0.0.1
module_path		%(modules)s
module			g711.so
module_app		account.so
audio_player		aufile,/dev/null
audio_source		aufile,/dev/null
audio_alert		aufile,/dev/null
"""


def modules_dir():
    for d in ("/usr/lib/baresip/modules",
              "/usr/lib/x86_64-linux-gnu/baresip/modules",
              "/usr/local/lib/baresip/modules"):
        if os.path.exists(os.path.join(d, "account.so")):
            return d
    return None


class Proc:
    """A process whose output is collected by a thread."""

    def __init__(self, args, stderr=True):
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if stderr else subprocess.DEVNULL,
            text=True, errors="replace")
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait_for(self, pattern, timeout):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    m = re.search(pattern, line)
                    if m:
                        return m
                left = deadline - time.time()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.2))

    def text(self):
        with self.cond:
            return "".join(self.lines)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            rc = "killed after timeout"
        self.reader.join(2)
        return rc


def make_cert(tmp):
    cert = os.path.join(tmp, "cert.pem")
    key = os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out",
                    cert], check=True, capture_output=True, timeout=30)
    return cert, key


def reg_list(sipctl, db):
    out = subprocess.run([sipctl, "--db", db, "reg", "list", AOR],
                         capture_output=True, text=True, timeout=30)
    rows = []
    for line in out.stdout.splitlines():
        f = line.split("\t")
        if len(f) >= 3 and f[0] == AOR:
            rows.append(f)
    return rows


def check(cond, what, *dumps):
    if not cond:
        for name, text in dumps:
            print("--- %s ---\n%s" % (name, text[-4000:]))
        raise AssertionError(what)
    print("ok -", what)


def run_one(sipctl, db, sipd, port, transport, tmp, modules):
    conf = os.path.join(tmp, "baresip-" + transport)
    os.mkdir(conf)
    with open(os.path.join(conf, "config"), "w") as f:
        f.write(CONFIG % {"modules": modules})
    with open(os.path.join(conf, "accounts"), "w") as f:
        f.write('<%s>;auth_pass=%s;outbound="sip:127.0.0.1:%d;transport=%s"'
                ';regint=600\n' % (AOR, PASSWORD, port, transport))
    mark = len(sipd.lines)
    bs = Proc(["baresip", "-f", conf])
    try:
        dumps = lambda: [("baresip", bs.text()),
                         ("sipd", "".join(sipd.lines[mark:]))]
        ok = sipd.wait_for(r"sipd\[\d+\]: %s:127\.0\.0\.1:(\d+) REGISTER "
                           r"sip:%s -> 200 OK" % (transport, re.escape(DOMAIN)),
                           WAIT)
        check(ok, "%s: sipd answered baresip's REGISTER with 200" % transport,
              *dumps())
        src_port = ok.group(1)
        challenged = [l for l in sipd.lines[mark:]
                      if "-> 401 Unauthorized" in l]
        check(challenged, "%s: after a 401 challenge" % transport, *dumps())
        check(bs.wait_for(r"200 OK", WAIT),
              "%s: baresip reports 200 OK" % transport, *dumps())
        rows = reg_list(sipctl, db)
        check(len(rows) == 1 and
              re.match(r"sip:%s[^@]*@127\.0\.0\.1:\d+" % USER, rows[0][1]) and
              ("flow=%s:127.0.0.1:%s" % (transport, src_port)) in rows[0],
              "%s: sipctl reg list shows alice's binding from baresip (%s)"
              % (transport, rows[0][1] if rows else "none"),
              ("reg list", repr(rows)), *dumps())
    finally:
        rc = bs.stop()
    check(rc == 0, "%s: baresip stopped by PID (exit %s)" % (transport, rc),
          ("baresip", bs.text()))
    deadline = time.time() + WAIT
    while reg_list(sipctl, db) and time.time() < deadline:
        time.sleep(0.2)
    check(not reg_list(sipctl, db),
          "%s: baresip unregistered on exit: no binding left" % transport,
          ("sipd", "".join(sipd.lines[mark:])))


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    if not shutil.which("baresip"):
        print("baresip not installed (Debian package baresip): skipped")
        return 77
    modules = modules_dir()
    if not modules:
        print("baresip's modules (account.so) not found: skipped")
        return 77
    sipd_path, sipctl = argv[1], argv[2]
    transports = ("udp", "tcp", "tls")
    with tempfile.TemporaryDirectory(prefix="sipd-baresip-") as tmp:
        cert, key = make_cert(tmp)
        db = os.path.join(tmp, "sipd.db")
        for cmd in (["domain", "add", DOMAIN],
                    ["user", "add", "%s@%s" % (USER, DOMAIN), "--password",
                     PASSWORD]):
            subprocess.run([sipctl, "--db", db] + cmd, check=True,
                           capture_output=True, timeout=30)
        sipd = Proc([sipd_path, "--db", db, "--auth", "on", "--domain",
                     DOMAIN, "--digest-algorithms", "md5", "--log-level",
                     "debug", "-l", "udp:127.0.0.1:0", "-l",
                     "tcp:127.0.0.1:0", "-l", "tls:127.0.0.1:0",
                     "--tls-cert", cert, "--tls-key", key, "-w", "2"])
        ports = {}
        for t in transports:
            m = sipd.wait_for(r"listening on %s:127\.0\.0\.1:(\d+)" % t, 10)
            if m:
                ports[t] = int(m.group(1))
        try:
            check(len(ports) == 3 and sipd.wait_for("bindings loaded", 10),
                  "sipd listens on UDP %s, TCP %s and TLS %s" % (
                      ports.get("udp"), ports.get("tcp"), ports.get("tls")),
                  ("sipd", sipd.text()))
            for t in transports:
                run_one(sipctl, db, sipd, ports[t], t, tmp, modules)
        finally:
            rc = sipd.stop()
        check(rc == 0, "sipd stopped by PID, exit 0", ("sipd", sipd.text()))
    print("test_baresip_register: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
