#!/usr/bin/env python3
"""baresip calls baresip through sipd, with digest authentication.

usage: test_baresip_call.py SIPD SIPCTL

A private database with the domain example.com and the users alice and
bob; sipd (registrar and proxy, auth on, MD5 only for baresip 1.0, SIP
trace) on a free loopback UDP port. Two baresip, each with a private
config directory: net_interface 127.0.0.1, audio from an 8 kHz WAV made
here with the wave module (aufile), an accounts line with auth_pass and
outbound= pointing at sipd (bob's with answermode=auto), and ctrl_tcp on
a free loopback port: the test sends its commands (dial, hangup) as
netstrings and reads its events. Both register (200 in sipd's log); alice
dials bob; sipd challenges her INVITE with 407, she answers, sipd forks
to bob's binding, bob answers by himself. Both report CALL_ESTABLISHED and
receive RTP from the other, and sipd's trace shows the 200 to the INVITE going to alice and her ACK
going to bob. Alice hangs up: the BYE and its 200 pass through sipd and
bob reports CALL_CLOSED. Every process is stopped by its PID. Exits 77
when baresip is not installed.
"""
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave

DOMAIN = "example.com"
USERS = {"alice": "pw-Alice-7", "bob": "pw-Bob-8"}
WAIT = 10

CONFIG = """\
poll_method		epoll
sip_listen		127.0.0.1:0
net_interface		127.0.0.1
module_path		%(modules)s
module			g711.so
module			aufile.so
module			aubridge.so
module_app		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:%(ctrl)d
audio_source		aufile,%(wav)s
audio_player		aubridge,%(user)s-out
audio_alert		aubridge,%(user)s-alert
call_local_timeout	20
rtp_ports		%(rtp)d-%(rtp_end)d
"""


def modules_dir():
    for d in ("/usr/lib/baresip/modules",
              "/usr/lib/x86_64-linux-gnu/baresip/modules",
              "/usr/local/lib/baresip/modules"):
        if os.path.exists(os.path.join(d, "account.so")):
            return d
    return None


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_wav(path, seconds=3):
    """8 kHz, mono, 16-bit: a 440 Hz tone."""
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i /
                                                  8000)))
            for i in range(8000 * seconds)))


class Proc:
    """A process whose output is collected by a thread."""

    def __init__(self, args):
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace")
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait_for(self, pattern, timeout, start=0):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    m = re.search(pattern, line)
                    if m:
                        return m
                left = deadline - time.time()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.2))

    def text(self, start=0):
        with self.cond:
            return "".join(self.lines[start:])

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


class Ctrl:
    """baresip's ctrl_tcp: netstring JSON commands, responses and events."""

    def __init__(self, port, timeout=WAIT):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), 1)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(0.2)
        self.buf = b""
        self.events = []
        self.responses = []

    def send(self, command, params=None, token="t"):
        msg = {"command": command, "token": token}
        if params is not None:
            msg["params"] = params
        data = json.dumps(msg).encode()
        self.sock.sendall(b"%d:%s," % (len(data), data))

    def _pump(self):
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        if not chunk:
            raise ConnectionError("ctrl_tcp closed")
        self.buf += chunk
        while True:
            m = re.match(rb"(\d+):", self.buf)
            if not m:
                return
            n, start = int(m.group(1)), m.end()
            if len(self.buf) < start + n + 1:
                return
            obj = json.loads(self.buf[start:start + n])
            self.buf = self.buf[start + n + 1:]
            (self.events if obj.get("event") else self.responses).append(obj)

    def wait_event(self, etype, timeout=WAIT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e in self.events:
                if e.get("type") == etype:
                    return e
            self._pump()
        return None

    def wait_response(self, token, timeout=WAIT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for r in self.responses:
                if r.get("token") == token:
                    return r
            self._pump()
        return None

    def close(self):
        self.sock.close()


def check(cond, what, *dumps):
    if not cond:
        for name, text in dumps:
            print("--- %s ---\n%s" % (name, text[-6000:]))
        raise AssertionError(what)
    print("ok -", what)


def sip_traces(lines, direction, first_line, cseq_method):
    """sipd trace lines: messages sent/received starting with first_line
    and with that CSeq method."""
    out = []
    for line in lines:
        m = re.search(r"%s udp[ :](127\.0\.0\.1:\d+) \d+ bytes"
                      r"(?: \(proxy\))?: (.*)$" % direction, line)
        if m and m.group(2).startswith(first_line) and \
           re.search(r"\\r\\nCSeq: \d+ %s\\r\\n" % cseq_method, m.group(2)):
            out.append((m.group(1), m.group(2)))
    return out


def wait_traces(proc, start, direction, first_line, cseq_method,
                timeout=WAIT):
    """sip_traces() of @proc's log from line @start, waiting until there
    is one."""
    deadline = time.time() + timeout
    while True:
        found = sip_traces(proc.lines[start:], direction, first_line,
                           cseq_method)
        if found or time.time() > deadline:
            return found
        time.sleep(0.1)


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
    for mod in ("aufile.so", "aubridge.so", "menu.so", "ctrl_tcp.so",
                "g711.so"):
        if not os.path.exists(os.path.join(modules, mod)):
            print("baresip module %s not found: skipped" % mod)
            return 77
    sipd_path, sipctl = argv[1], argv[2]
    with tempfile.TemporaryDirectory(prefix="sipd-bcall-") as tmp:
        return run(sipd_path, sipctl, tmp, modules)


def run(sipd_path, sipctl, tmp, modules):
    db = os.path.join(tmp, "sipd.db")
    wav = os.path.join(tmp, "tone-8k.wav")
    make_wav(wav)
    cmds = [["domain", "add", DOMAIN]] + [
        ["user", "add", "%s@%s" % (u, DOMAIN), "--password", pw]
        for u, pw in USERS.items()]
    for cmd in cmds:
        subprocess.run([sipctl, "--db", db] + cmd, check=True,
                       capture_output=True, timeout=30)
    sipd = Proc([sipd_path, "--db", db, "--auth", "on", "--domain", DOMAIN,
                 "--digest-algorithms", "md5", "--log-level", "trace",
                 "-l", "udp:127.0.0.1:0", "-w", "2"])
    procs, ctrls = {}, {}
    m = sipd.wait_for(r"listening on udp:127\.0\.0\.1:(\d+)", WAIT)
    try:
        check(m and sipd.wait_for("bindings loaded", WAIT),
              "sipd listens on UDP", ("sipd", sipd.text()))
        port = int(m.group(1))
        for i, user in enumerate(("bob", "alice")):
            conf = os.path.join(tmp, user)
            os.mkdir(conf)
            ctrl = free_port()
            rtp = 20000 + (os.getpid() * 7 + i * 100) % 30000
            with open(os.path.join(conf, "config"), "w") as f:
                f.write(CONFIG % {"modules": modules, "ctrl": ctrl,
                                  "wav": wav, "user": user, "rtp": rtp,
                                  "rtp_end": rtp + 99})
            with open(os.path.join(conf, "accounts"), "w") as f:
                f.write('<sip:%s@%s>;auth_pass=%s;outbound="sip:127.0.0.1:%d;'
                        'transport=udp";regint=600%s\n'
                        % (user, DOMAIN, USERS[user], port,
                           ";answermode=auto" if user == "bob" else ""))
            procs[user] = Proc(["baresip", "-f", conf])
            ok = sipd.wait_for(r"send udp[ :]127\.0\.0\.1:\d+ \d+ bytes"
                               r"(?: \(proxy\))?: SIP/2\.0 200 OK\\r\\n.*"
                               r"\\r\\nTo: <sip:%s@%s>.*CSeq: \d+ REGISTER"
                               % (user, re.escape(DOMAIN)), WAIT)
            check(ok, "%s's baresip registered (200 from sipd)" % user,
                  ("baresip " + user, procs[user].text()),
                  ("sipd", sipd.text()))
            ctrls[user] = Ctrl(ctrl)
        mark = len(sipd.lines)
        dumps = lambda: [("baresip alice", procs["alice"].text()),
                         ("baresip bob", procs["bob"].text()),
                         ("sipd", sipd.text(mark))]
        ctrls["alice"].send("dial", "sip:bob@%s" % DOMAIN, "dial1")
        r = ctrls["alice"].wait_response("dial1")
        check(r and r.get("ok"), "alice's baresip takes the dial command "
              "(%s)" % r, *dumps())
        ea = ctrls["alice"].wait_event("CALL_ESTABLISHED", 15)
        eb = ctrls["bob"].wait_event("CALL_ESTABLISHED", 5)
        check(ea and eb, "alice and bob report CALL_ESTABLISHED "
              "(alice: %s; bob: %s)" % (ea, eb), *dumps())
        check(ea.get("peeruri") == "sip:bob@%s" % DOMAIN and
              (eb.get("peeruri") or "").startswith("sip:alice@%s" % DOMAIN),
              "each sees the other (%s, %s)" % (ea.get("peeruri"),
                                                eb.get("peeruri")), *dumps())
        chal = wait_traces(sipd, mark, "send", "SIP/2.0 407 ", "INVITE")
        check(chal, "sipd challenged alice's INVITE with 407", *dumps())
        ok200 = wait_traces(sipd, mark, "send", "SIP/2.0 200 ", "INVITE")
        check(ok200, "sipd forwarded bob's 200 to the INVITE to alice",
              *dumps())
        invs = wait_traces(sipd, mark, "send", "INVITE sip:bob", "INVITE")
        check(invs and all("Proxy-Authorization" not in m for _, m in invs),
              "sipd kept alice's credentials: none in the INVITE to bob",
              *dumps())
        acks = wait_traces(sipd, mark, "send", "ACK sip:bob", "ACK")
        check(acks, "sipd forwarded alice's ACK of the 200 to bob's "
              "contact", *dumps())
        alice_at = chal[0][0]
        check(ok200[0][0] == alice_at and acks[0][0] != alice_at,
              "the 200 went to alice (%s), the ACK to bob (%s)"
              % (ok200[0][0], acks[0][0]), *dumps())
        check(re.search(r"\\r\\nRecord-Route: <sip:127\.0\.0\.1:%d;lr>" % port,
                        ok200[0][1]),
              "the 200 carries sipd's Record-Route", *dumps())
        for user in ("alice", "bob"):
            check(procs[user].wait_for(r"incoming rtp for 'audio' "
                                       r"established", 5),
                  "%s's baresip receives the other's RTP (the SDP passed "
                  "through sipd)" % user, *dumps())
        mark = len(sipd.lines)
        ctrls["alice"].send("hangup", None, "hup1")
        eb = ctrls["bob"].wait_event("CALL_CLOSED", WAIT)
        ea = ctrls["alice"].wait_event("CALL_CLOSED", WAIT)
        check(ea and eb, "both report CALL_CLOSED after alice's hangup",
              *dumps())
        byes = wait_traces(sipd, mark, "send", "BYE sip:bob", "BYE")
        bye200 = wait_traces(sipd, mark, "send", "SIP/2.0 200 ", "BYE")
        check(byes and byes[0][0] == acks[0][0],
              "sipd forwarded alice's BYE to bob", *dumps())
        check(bye200 and bye200[0][0] == alice_at,
              "sipd forwarded bob's 200 to the BYE to alice", *dumps())
    finally:
        for c in ctrls.values():
            c.close()
        rcs = {u: p.stop() for u, p in procs.items()}
        rc = sipd.stop()
    check(all(v == 0 for v in rcs.values()),
          "both baresip stopped by PID (exit %s)" % rcs,
          *[("baresip " + u, p.text()) for u, p in procs.items()])
    check(rc == 0, "sipd stopped by PID, exit 0", ("sipd", sipd.text()))
    print("test_baresip_call: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
