#!/usr/bin/env python3
"""The registrar of sipd driven by SIPp scenarios (tests/sipp/registrar/).

usage: test_registrar_sipp.py SIPD SIPCTL WORKERS [TRANSPORT...]

For each scenario: a fresh database with the domain example.com and the
user alice; sipd with digest authentication (MD5 offered: SIPp 3.6 cannot
compute SHA-256), WORKERS workers, on free loopback ports; then one SIPp
run per scenario file, each of which fails on any unexpected message and
checks the answers with regular expressions (expiry, q, Min-Expires,
stale=true, Path, +sip.instance/reg-id, what must not be listed). sipd is
stopped by its PID and must exit 0; then `sipctl reg list` on the database
must show exactly the bindings the scenario leaves. TRANSPORT is udp
(default) and/or tcp. Exits 77 when SIPp (Debian sip-tester) is missing.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS_DIR = os.path.join(HERE, "..", "sipp", "registrar")
DOMAIN = "example.com"
USER = "alice"
PASSWORD = "pw-Alice-7"
AOR = "sip:%s@%s" % (USER, DOMAIN)
INSTANCE = '"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>"'


def c(port, **kw):
    """An expected binding of alice: contact URI and checks."""
    return ("sip:alice@127.0.0.1:%s" % port, kw)


# name: (SIPp scenario files, run in order against one sipd; extra sipd
# flags; the bindings left, {contact: checks} with the port "LOCAL" for
# SIPp's own; lines sipd's log must hold)
SCENARIOS = [
    ("register", ["register.xml"], [],
     [c("LOCAL", expires=(590, 600), q="1.000")], []),
    ("refresh", ["refresh.xml"], [],
     [c(5071, expires=(1790, 1800))], []),
    ("unregister_one", ["unregister_one.xml"], [],
     [c(5072, expires=(590, 600))], []),
    ("unregister_all", ["unregister_all.xml"], [], [], []),
    ("interval_too_brief", ["interval_too_brief.xml"], [],
     [c(5071, expires=(50, 60))], [r"-> 423 Interval Too Brief"]),
    ("stale_nonce", ["stale_nonce.xml"], ["--nonce-lifetime", "2"],
     [c(5071, expires=(890, 900))], []),
    ("wrong_password", ["wrong_password.xml"], [], [],
     [r"127\.0\.0\.1: 10 failed authentications, source is now limited",
      r"-> 403 Forbidden source over the failure limit"]),
    ("multi_contact", ["multi_contact.xml"], [],
     [c(5071, expires=(590, 600), q="0.900"),
      c(5072, expires=(290, 300), q="1.000"),
      c(5073, expires=(590, 600), q="0.100")], []),
    ("path", ["path.xml"], [],
     [c(5071, expires=(590, 600),
        path="<sip:edge1.example.net;lr>, <sip:edge2.example.net;lr>")],
     [r"-> 421 Extension Required"]),
    ("instance", ["instance.xml", "instance_reboot.xml"], [],
     [("sip:alice@127.0.0.1:5081;ob",
       dict(expires=(590, 600), instance=INSTANCE + ";reg-id=1")),
      ("sip:alice@127.0.0.1:5082;ob",
       dict(expires=(590, 600), instance=INSTANCE + ";reg-id=2"))], []),
]


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_local_port():
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        p = free_port(socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            t.close()
    raise RuntimeError("no free local port")


class Sipd:
    def __init__(self, path, db, workers, extra):
        self.proc = subprocess.Popen(
            [path, "--db", db, "--auth", "on", "--domain", DOMAIN,
             "--digest-algorithms", "md5", "--log-level", "debug",
             "-l", "udp:127.0.0.1:0", "-l", "tcp:127.0.0.1:0",
             "-w", str(workers)] + extra,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self.lines, self.ports = [], {}
        deadline = time.time() + 10
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            m = re.search(r"listening on (udp|tcp):127\.0\.0\.1:(\d+)", line)
            if m:
                self.ports[m.group(1)] = int(m.group(2))
            if "bindings loaded" in line:
                break
        if len(self.ports) != 2:
            self.kill()
            raise AssertionError("sipd did not start:\n" + "".join(self.lines))
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        """SIGTERM by PID; the exit status."""
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = "timeout"
        self.reader.join(2)
        return rc


def run_sipp(scenario, port, transport, lport, workdir):
    name = os.path.splitext(os.path.basename(scenario))[0]
    errors = os.path.join(workdir, name + "-errors.log")
    logs = os.path.join(workdir, name + "-logs.log")
    args = ["sipp", "127.0.0.1:%d" % port, "-sf", scenario,
            "-key", "domain", DOMAIN, "-au", USER, "-ap", PASSWORD,
            "-auth_uri", DOMAIN, "-i", "127.0.0.1", "-p", str(lport),
            "-m", "1", "-nostdin", "-nd", "-timeout", "30s",
            "-timeout_error", "-trace_err", "-error_file", errors,
            "-trace_logs", "-log_file", logs]
    if transport == "tcp":
        args += ["-t", "t1"]
    try:
        res = subprocess.run(args, cwd=workdir, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=60)
        out = res.stdout.decode("utf-8", "replace")
        rc = res.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        rc = "timeout"
    detail = ""
    for f in (errors, logs):
        if os.path.exists(f):
            detail += open(f, errors="replace").read()
    return rc, out, detail


def bindings(sipctl, db):
    out = subprocess.run([sipctl, "--db", db, "reg", "list"],
                         capture_output=True, text=True, check=True,
                         timeout=30).stdout
    got = {}
    for line in out.splitlines():
        f = line.split("\t")
        fields = dict(x.split("=", 1) for x in f[2:] if "=" in x)
        got[(f[0], f[1])] = fields
    return got


def check_bindings(got, want, lport):
    """Exactly the bindings of @want for alice; their fields checked."""
    problems = []
    want_keys = {}
    for contact, kw in want:
        want_keys[(AOR, contact.replace("LOCAL", str(lport)))] = kw
    if set(got) != set(want_keys):
        problems.append("bindings %s, expected %s" % (
            sorted(k[1] for k in got), sorted(k[1] for k in want_keys)))
        return problems
    for key, kw in want_keys.items():
        b = got[key]
        lo, hi = kw["expires"]
        if not lo <= int(b["expires"]) <= hi:
            problems.append("%s: expires=%s, expected %d..%d" % (
                key[1], b["expires"], lo, hi))
        if "q" in kw and b["q"] != kw["q"]:
            problems.append("%s: q=%s, expected %s" % (key[1], b["q"],
                                                       kw["q"]))
        want_inst = kw.get("instance", "-")
        if b["instance"] != want_inst:
            problems.append("%s: instance=%s, expected %s" % (
                key[1], b["instance"], want_inst))
        if b.get("path") != kw.get("path"):
            problems.append("%s: path=%s, expected %s" % (
                key[1], b.get("path"), kw.get("path")))
    return problems


def one(sipd_path, sipctl, workers, transport, name, files, extra, want,
        log_res, tmp):
    work = os.path.join(tmp, "%s-%s" % (name, transport))
    os.mkdir(work)
    db = os.path.join(work, "sipd.db")
    for cmd in (["domain", "add", DOMAIN],
                ["user", "add", "%s@%s" % (USER, DOMAIN), "--password",
                 PASSWORD]):
        subprocess.run([sipctl, "--db", db] + cmd, check=True,
                       capture_output=True, timeout=30)
    lport = free_local_port()
    sipd = Sipd(sipd_path, db, workers, extra)
    problems = []
    try:
        for f in files:
            rc, out, detail = run_sipp(os.path.join(SCENARIOS_DIR, f),
                                       sipd.ports[transport], transport,
                                       lport, work)
            if rc != 0:
                problems.append("sipp %s exited %s\n%s\n%s" % (
                    f, rc, out[-1500:], detail[-3000:]))
                break
    finally:
        rc = sipd.stop()
    if rc != 0:
        problems.append("sipd exit status %s after SIGTERM" % rc)
    log = "".join(sipd.lines)
    for pat in log_res:
        if not re.search(pat, log):
            problems.append("sipd log lacks /%s/" % pat)
    if not problems:
        problems += check_bindings(bindings(sipctl, db), want, lport)
    if problems:
        print("FAIL %s over %s, %d workers:\n  %s\nsipd log:\n%s" % (
            name, transport, workers, "\n  ".join(problems), log[-4000:]))
        return False
    print("ok - %s over %s, %d workers: SIPp passed, %d binding(s) left "
          "as expected" % (name, transport, workers, len(want)))
    return True


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    if not shutil.which("sipp"):
        print("sipp not installed (Debian package sip-tester): skipped")
        return 77
    sipd_path, sipctl, workers = argv[1], argv[2], int(argv[3])
    transports = argv[4:] or ["udp"]
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="sipd-regsipp-") as tmp:
        for transport in transports:
            for name, files, extra, want, log_res in SCENARIOS:
                if one(sipd_path, sipctl, workers, transport, name, files,
                       extra, want, log_res, tmp):
                    passed += 1
                else:
                    failed += 1
    print("test_registrar_sipp: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
