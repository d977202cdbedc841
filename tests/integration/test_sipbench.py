#!/usr/bin/env python3
"""sipbench on loopback: its scenarios against itself and a small responder.

usage: test_sipbench.py SIPBENCH

- `uas` on a free port and `call` against it (UDP, then TCP): every call
  succeeds, and both sides count the same calls;
- `options`, `register` (with and without digest, MD5 and SHA-256) against
  a Python UDP responder that checks the Authorization response itself;
- `uas --register` registering its contact with digest first;
- `call` against a responder that drops every 5th request: retransmissions
  happen and the calls still succeed;
- `call` through a record-routing Python proxy to `uas`: the uas copies
  Record-Route into its 180 and 200, the caller sends ACK and BYE to the
  200's Contact with the route set as Route headers;
- usage errors exit with 2.
"""
import hashlib
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

BENCH = None
TMP = tempfile.mkdtemp(prefix="sipbench-test-")


def run_bench(args, timeout=20):
    out = os.path.join(TMP, "r%d.json" % time.monotonic_ns())
    p = subprocess.run([BENCH] + args + ["--json", out, "--quiet"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("sipbench %s exited %d:\n%s%s" % (
            " ".join(args), p.returncode, p.stdout.decode(),
            p.stderr.decode()))
    with open(out) as f:
        res = json.load(f)
    res["_text"] = p.stdout.decode()
    return res


def check(cond, what, res=None):
    if not cond:
        raise AssertionError(what + ("\n" + json.dumps(res) if res else ""))


class Uas:
    """sipbench uas on a free loopback port."""

    def __init__(self, transport="udp", host="127.0.0.1"):
        self.json = os.path.join(TMP, "uas%d.json" % time.monotonic_ns())
        listen = ("[%s]:0" % host) if ":" in host else ("%s:0" % host)
        self.proc = subprocess.Popen(
            [BENCH, "uas", "--listen", listen, "--transport", transport,
             "--json", self.json, "--quiet"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        line = self.proc.stderr.readline().decode()
        m = re.search(r"listening on \w+:(\S+):(\d+)$", line.strip())
        if not m:
            self.proc.kill()
            raise AssertionError("uas did not start: %r" % line)
        self.target = "%s:%s" % (m.group(1), m.group(2))

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=10)
        check(self.proc.returncode == 0, "uas exit %d: %s" % (
            self.proc.returncode, err.decode()))
        with open(self.json) as f:
            return json.load(f)


class Responder:
    """A UDP UAS in Python: 200 to everything but ACK, 401 challenges for
    REGISTER when a password is set, every Nth request dropped."""

    def __init__(self, password=None, algorithm="MD5", drop_every=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.password = password
        self.algorithm = algorithm
        self.drop_every = drop_every
        self.received = 0
        self.dropped = 0
        self.challenged = 0
        self.verified = 0
        self.bad_auth = 0
        self.methods = {}
        self.nonces = set()
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()

    def loop(self):
        while self.running:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.received += 1
            if self.drop_every and self.received % self.drop_every == 0:
                self.dropped += 1
                continue
            reply = self.answer(data)
            if reply:
                self.sock.sendto(reply, addr)

    def answer(self, data):
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        lines = head.split("\r\n")
        method, ruri = lines[0].split(" ")[:2]
        self.methods[method] = self.methods.get(method, 0) + 1
        if method == "ACK":
            return None
        hdrs = []
        auth = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            lname = name.strip().lower()
            if lname in ("via", "from", "to", "call-id", "cseq"):
                hdrs.append(line)
            if lname == "authorization":
                auth = value.strip()
        call_id = [h for h in hdrs if h.lower().startswith("call-id")][0]
        tag = hashlib.md5(call_id.encode()).hexdigest()[:8]
        out = []
        for h in hdrs:
            if h.lower().startswith("to:") and ";tag=" not in h:
                h += ";tag=" + tag
            out.append(h)
        status = "200 OK"
        if method == "REGISTER" and self.password is not None:
            if auth is None:
                self.challenged += 1
                nonce = "n%d" % self.challenged
                self.nonces.add(nonce)
                status = "401 Unauthorized"
                out.append('WWW-Authenticate: Digest realm="bench", '
                           'nonce="%s", qop="auth", algorithm=%s, '
                           'opaque="op"' % (nonce, self.algorithm))
            elif self.verify(auth, method):
                self.verified += 1
            else:
                self.bad_auth += 1
                status = "403 Forbidden"
        if method == "INVITE":
            out.append("Contact: <sip:uas@127.0.0.1:%d>" % self.port)
        msg = "SIP/2.0 %s\r\n%s\r\nContent-Length: 0\r\n\r\n" % (
            status, "\r\n".join(out))
        return msg.encode()

    def verify(self, auth, method):
        if not auth.startswith("Digest "):
            return False
        p = dict((m.group(1), m.group(2) if m.group(2) is not None
                  else m.group(3))
                 for m in re.finditer(r'(\w+)=(?:"([^"]*)"|([^,\s]+))',
                                      auth[7:]))
        h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[self.algorithm]
        if p.get("algorithm") != self.algorithm or p.get("opaque") != "op":
            return False
        if p.get("nonce") not in self.nonces or p.get("realm") != "bench":
            return False
        user = p["username"]
        num = re.sub(r"\D", "", user)
        password = self.password.replace("%d", num)

        def hx(s):
            return h(s.encode()).hexdigest()

        ha1 = hx("%s:bench:%s" % (user, password))
        ha2 = hx("%s:%s" % (method, p["uri"]))
        want = hx(":".join([ha1, p["nonce"], p["nc"], p["cnonce"], "auth",
                            ha2]))
        return p.get("qop") == "auth" and p.get("response") == want


class RrProxy:
    """A minimal stateless loose-routing UDP proxy between `call` and
    `uas`: record-routes the INVITE, forwards every request to the uas
    (pushing its own Via, popping its Route), every response back to the
    caller (popping its Via). Counts what the route set looked like."""

    def __init__(self, uas_target):
        host, port = uas_target.rsplit(":", 1)
        self.uas = (host, int(port))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.me = "<sip:127.0.0.1:%d;lr>" % self.port
        self.callers = {}
        self.counts = {"routed": 0, "unrouted": 0, "rr_echoed": 0,
                       "rr_missing": 0}
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()

    def loop(self):
        while self.running:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            if lines[0].startswith("SIP/2.0"):
                self.response(lines, body)
            else:
                self.request(lines, body, addr)

    def request(self, lines, body, addr):
        method = lines[0].split(" ")[0]
        hdrs = lines[1:]
        cid = [h for h in hdrs if h.lower().startswith("call-id:")][0]
        self.callers[cid] = addr
        routes = [h for h in hdrs if h.lower().startswith("route:")]
        if method in ("ACK", "BYE"):
            ok = len(routes) == 1 and routes[0] == "Route: " + self.me
            self.counts["routed" if ok else "unrouted"] += 1
        out = [lines[0], "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKp%d"
               % (self.port, len(self.callers))]
        out += [h for h in hdrs if not h.lower().startswith("route:")]
        if method == "INVITE":
            out.insert(2, "Record-Route: " + self.me)
        self.sock.sendto(("\r\n".join(out) + "\r\n\r\n").encode() + body,
                         self.uas)

    def response(self, lines, body):
        hdrs = lines[1:]
        vias = [i for i, h in enumerate(hdrs) if h.lower().startswith("via:")]
        del hdrs[vias[0]]
        if "INVITE" in [h for h in hdrs if h.lower().startswith("cseq:")][0] \
                and lines[0].split(" ")[1] in ("180", "200"):
            rr = [h for h in hdrs if h.lower().startswith("record-route:")]
            ok = rr == ["Record-Route: " + self.me]
            self.counts["rr_echoed" if ok else "rr_missing"] += 1
        cid = [h for h in hdrs if h.lower().startswith("call-id:")][0]
        if cid in self.callers:
            self.sock.sendto(("\r\n".join([lines[0]] + hdrs) +
                              "\r\n\r\n").encode() + body, self.callers[cid])


def test_call_through_rr_proxy():
    uas = Uas("udp")
    proxy = RrProxy(uas.target)
    try:
        res = run_bench(["call", "--target", proxy.target, "--rate", "50",
                         "--duration", "2"])
    finally:
        proxy.stop()
        ures = uas.stop()
    c = proxy.counts
    check(res["succeeded"] >= 50 and res["failed"] == 0,
          "calls through the proxy", res)
    check(ures["succeeded"] == res["succeeded"], "uas saw %d calls, call %d"
          % (ures["succeeded"], res["succeeded"]), ures)
    check(c["unrouted"] == 0 and c["routed"] >= 2 * res["succeeded"],
          "ACK/BYE without the route set: %r" % c, res)
    check(c["rr_missing"] == 0 and c["rr_echoed"] >= 2 * res["succeeded"],
          "uas did not copy Record-Route: %r" % c, ures)
    print("call through a record-routing proxy: %d calls, %d ACK/BYE "
          "routed" % (res["succeeded"], c["routed"]))


def test_call_against_uas(transport):
    uas = Uas(transport)
    try:
        res = run_bench(["call", "--target", uas.target, "--transport",
                         transport, "--rate", "100", "--duration", "2"])
    finally:
        ures = uas.stop()
    check(res["succeeded"] > 100, "too few calls", res)
    check(res["failed"] == 0, "calls failed", res)
    check(res["attempted"] == res["succeeded"], "attempted != succeeded",
          res)
    check(ures["succeeded"] == res["succeeded"],
          "uas saw %d calls, call %d" % (ures["succeeded"],
                                         res["succeeded"]), ures)
    check(ures["failed"] == 0, "uas failures", ures)
    for k in ("p50", "p90", "p99", "p999"):
        check(res["latency_ms"][k] > 0, "latency %s" % k, res)
    print("call over %s: %d calls, p99 %.3f ms" % (
        transport, res["succeeded"], res["latency_ms"]["p99"]))


def test_options_v6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        print("options over IPv6: skipped, no ::1")
        return
    uas = Uas("udp", "::1")
    try:
        res = run_bench(["options", "--target", uas.target, "--inflight",
                         "20", "--max-requests", "500"])
    finally:
        uas.stop()
    check(res["succeeded"] == 500 and res["failed"] == 0, "options v6", res)
    print("options over IPv6: 500 ok")


def test_options():
    r = Responder()
    try:
        res = run_bench(["options", "--target", r.target, "--rate", "200",
                         "--duration", "1"])
    finally:
        r.stop()
    check(res["attempted"] >= 150, "too few OPTIONS", res)
    check(res["succeeded"] == res["attempted"] and res["failed"] == 0,
          "OPTIONS failed", res)
    check(r.methods.get("OPTIONS", 0) == res["attempted"],
          "responder saw %r" % r.methods, res)
    print("options: %d ok" % res["succeeded"])


def test_register_plain():
    r = Responder()
    try:
        res = run_bench(["register", "--target", r.target, "--users", "20",
                         "--inflight", "5"])
    finally:
        r.stop()
    check(res["attempted"] == 20 and res["succeeded"] == 20,
          "register without auth", res)
    print("register: 20 users ok")


def test_register_digest(algorithm):
    r = Responder(password="pw%d", algorithm=algorithm)
    try:
        # 10 users, 30 registrations: the later 20 refresh with the nonce
        # already known (nc 2, 3) without a new challenge.
        res = run_bench(["register", "--target", r.target, "--users", "10",
                         "--password", "pw%d", "--max-requests", "30",
                         "--inflight", "4"])
    finally:
        r.stop()
    check(res["succeeded"] == 30 and res["failed"] == 0,
          "register with %s digest" % algorithm, res)
    check(r.challenged == 10, "challenges: %d" % r.challenged, res)
    check(r.verified == 30 and r.bad_auth == 0,
          "verified %d, bad %d" % (r.verified, r.bad_auth), res)
    print("register with %s digest: 30 ok, 10 challenges" % algorithm)


def test_wrong_password():
    r = Responder(password="right")
    try:
        res = run_bench(["register", "--target", r.target, "--users", "3",
                         "--password", "wrong"])
    finally:
        r.stop()
    check(res["failed"] == 3 and res["failed_by_status"].get("403") == 3,
          "a wrong password must fail with 403", res)
    print("register with a wrong password: 3 x 403")


def test_uas_register():
    r = Responder(password="pw%d")
    out = os.path.join(TMP, "uasreg.json")
    try:
        p = subprocess.run(
            [BENCH, "uas", "--listen", "127.0.0.1:0", "--register",
             "--target", r.target, "--users", "3", "--password", "pw%d",
             "--duration", "1", "--json", out, "--quiet"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    finally:
        r.stop()
    check(p.returncode == 0, "uas --register exited %d" % p.returncode)
    with open(out) as f:
        res = json.load(f)
    check(res["registrations"] == {"attempted": 3, "succeeded": 3,
                                   "failed": 0}, "uas registrations", res)
    check(r.verified == 3, "verified %d" % r.verified, res)
    print("uas --register: 3 contacts registered with digest")


def test_drops():
    r = Responder(drop_every=5)
    try:
        res = run_bench(["call", "--target", r.target, "--rate", "40",
                         "--duration", "2", "--t1", "100"])
    finally:
        r.stop()
    check(r.dropped > 0, "nothing dropped")
    check(res["retransmissions"] > 0, "no retransmissions", res)
    check(res["failed"] == 0 and res["succeeded"] == res["attempted"],
          "calls failed with drops", res)
    print("call with every 5th request dropped: %d ok, %d retransmissions"
          % (res["succeeded"], res["retransmissions"]))


def test_usage():
    for args in (["call"], ["nosuch", "--target", "127.0.0.1:5060"],
                 ["call", "--target", "192.0.2.1:5060"],
                 ["call", "--target", "127.0.0.1:5060", "--bogus"],
                 ["options", "--target", "127.0.0.1:5060", "--rate", "x"]):
        p = subprocess.run([BENCH] + args, capture_output=True, timeout=5)
        check(p.returncode == 2, "%r exited %d, expected 2" % (
            args, p.returncode))
    p = subprocess.run([BENCH, "--help"], capture_output=True, timeout=5)
    check(p.returncode == 0 and b"--inflight" in p.stdout, "--help")
    print("usage errors: exit 2")


def main():
    global BENCH
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    BENCH = sys.argv[1]
    t0 = time.monotonic()
    test_usage()
    test_call_against_uas("udp")
    test_call_against_uas("tcp")
    test_call_through_rr_proxy()
    test_options_v6()
    test_options()
    test_register_plain()
    test_register_digest("MD5")
    test_register_digest("SHA-256")
    test_wrong_password()
    test_uas_register()
    test_drops()
    print("all passed in %.1f s" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
