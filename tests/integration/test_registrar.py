#!/usr/bin/env python3
"""The registrar of sipd end to end, over UDP on loopback.

usage: test_registrar.py SIPD SIPCTL [SIPBENCH]

A temporary database with two users; sipd with digest authentication:
401 with SHA-256 and MD5 challenges, the answer computed here with
hashlib, 200 listing the bindings, refresh, two contacts, Contact: *,
423, a foreign domain, wrong password / unknown user / user mismatch.
Then persistence: 1,000 bindings registered (auth off), sipd killed with
SIGKILL and restarted on the same file, every binding still there with
its remaining expiry (sipctl reg list and REGISTER queries). Last,
sipbench register against it: no failure.
"""
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

DOMAIN = "example.com"
SIPD, SIPCTL = sys.argv[1], sys.argv[2]
SIPBENCH = sys.argv[3] if len(sys.argv) > 3 else None


class Sipd:
    def __init__(self, db, auth, workers=2, extra=()):
        self.proc = subprocess.Popen(
            [SIPD, "--db", db, "--auth", auth, "--domain", DOMAIN,
             "-l", "udp:127.0.0.1:0", "-l", "tcp:127.0.0.1:0",
             "-w", str(workers)] + list(extra),
            stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.udp = None
        deadline = time.time() + 10
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            m = re.search(r"listening on udp:127\.0\.0\.1:(\d+)", line)
            if m:
                self.udp = int(m.group(1))
            if "bindings loaded" in line:
                break
        assert self.udp, "sipd did not start: " + "".join(self.lines)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)


class Client:
    def __init__(self, port):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.lport = self.sock.getsockname()[1]
        self.n = 0

    def register(self, user, domain=DOMAIN, call_id="c1", cseq=1,
                 headers=(), to_user=None):
        self.n += 1
        to = "sip:%s@%s" % (to_user or user, domain)
        msg = ("REGISTER sip:%s SIP/2.0\r\n"
               "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-%d-%d;rport\r\n"
               "Max-Forwards: 70\r\n"
               "From: <%s>;tag=t%d\r\n"
               "To: <%s>\r\n"
               "Call-ID: %s\r\n"
               "CSeq: %d REGISTER\r\n"
               "%s"
               "Content-Length: 0\r\n\r\n") % (
                   domain, self.lport, os.getpid(), self.n, to, self.n, to,
                   call_id, cseq, "".join(h + "\r\n" for h in headers))
        for _ in range(6):
            self.sock.sendto(msg.encode(), ("127.0.0.1", self.port))
            try:
                while True:
                    data = self.sock.recv(65535).decode()
                    if ("z9hG4bK-%d-%d;" % (os.getpid(), self.n)) in data:
                        return parse(data)
            except socket.timeout:
                continue
        raise AssertionError("no answer to REGISTER")


def parse(data):
    head = data.split("\r\n\r\n", 1)[0].split("\r\n")
    status = int(head[0].split()[1])
    hdrs = []
    for line in head[1:]:
        name, value = line.split(":", 1)
        hdrs.append((name.strip().lower(), value.strip()))
    return status, hdrs


def values(hdrs, name):
    return [v for n, v in hdrs if n == name]


def contacts(hdrs):
    out = {}
    for v in values(hdrs, "contact"):
        m = re.match(r"<([^>]*)>(.*)", v)
        exp = re.search(r";expires=(\d+)", m.group(2))
        out[m.group(1)] = int(exp.group(1))
    return out


def challenge_params(value):
    assert value.startswith("Digest "), value
    return dict((k, v.strip('"')) for k, v in
                re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', value))


def authorization(ch, user, password, nc=1, uri="sip:" + DOMAIN):
    alg = ch["algorithm"]
    h = hashlib.sha256 if alg == "SHA-256" else hashlib.md5

    def hx(s):
        return h(s.encode()).hexdigest()
    ha1 = hx("%s:%s:%s" % (user, ch["realm"], password))
    ha2 = hx("REGISTER:%s" % uri)
    ncs = "%08x" % nc
    resp = hx("%s:%s:%s:%s:auth:%s" % (ha1, ch["nonce"], ncs, "abcd", ha2))
    return ('Authorization: Digest username="%s", realm="%s", nonce="%s", '
            'uri="%s", response="%s", algorithm=%s, qop=auth, nc=%s, '
            'cnonce="abcd", opaque="%s"' % (
                user, ch["realm"], ch["nonce"], uri, resp, alg, ncs,
                ch["opaque"]))


def sipctl(db, *args, stdin=None):
    return subprocess.run([SIPCTL, "--db", db] + list(args), input=stdin,
                          capture_output=True, text=True, check=True).stdout


def sipctl_run(db, *args):
    return subprocess.run([SIPCTL, "--db", db] + list(args),
                          capture_output=True, text=True)


def admin_raw(path, data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out.decode()


def db_contacts(db, aor):
    con = sqlite3.connect(db)
    rows = [r[0] for r in con.execute(
        "SELECT contact FROM bindings WHERE aor = ?", (aor,))]
    con.close()
    return sorted(rows)


def admin_tests(db):
    """sipctl reg through the running sipd's admin socket (memory and
    database change together), and directly on the file without one."""
    sock = db + ".sock"
    a1 = "sip:adm1@" + DOMAIN
    sipd = Sipd(db, "off")
    c = Client(sipd.udp)
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.settimeout(30)
    try:
        silent.connect(sock)
        silent_t0 = time.time()
        check(any(("admin socket " + sock) in l for l in sipd.lines) and
              os.path.exists(sock) and
              (os.stat(sock).st_mode & 0o777) == 0o600,
              "admin socket beside the database, mode 0600")
        st, h = c.register("adm1", call_id="a1", headers=[
            "Contact: <sip:adm1@127.0.0.1:5101>, <sip:adm1@127.0.0.1:5102>",
            "Expires: 600"])
        assert st == 200, st
        st, h = c.register("adm2", call_id="a2", headers=[
            "Contact: <sip:adm2@127.0.0.1:5103>", "Expires: 600"])
        assert st == 200, st
        out = sipctl(db, "reg", "list")
        lines = [l.split("\t") for l in out.splitlines()]
        check(sorted(l[1] for l in lines) == [
            "sip:adm1@127.0.0.1:5101", "sip:adm1@127.0.0.1:5102",
            "sip:adm2@127.0.0.1:5103"] and
              all(590 <= int(l[2].split("=")[1]) <= 600 for l in lines),
              "reg list through the socket: every binding, seconds left")
        out = sipctl(db, "reg", "list", "adm1@" + DOMAIN)
        check(len(out.splitlines()) == 2, "reg list AOR: its two bindings")

        out = sipctl(db, "reg", "del", "adm1@" + DOMAIN,
                     "sip:adm1@127.0.0.1:5101")
        check("removed" in out, "reg del AOR CONTACT through the socket")
        st, h = c.register("adm1", call_id="a1q")
        check(st == 200 and contacts(h) == {"sip:adm1@127.0.0.1:5102":
                                            contacts(h).get(
                                                "sip:adm1@127.0.0.1:5102")}
              and len(contacts(h)) == 1,
              "the running sipd no longer has it (memory changed)")
        check(db_contacts(db, a1) == ["sip:adm1@127.0.0.1:5102"],
              "and the database neither (committed before the answer)")
        r = sipctl_run(db, "reg", "del", a1, "sip:adm1@127.0.0.1:5999")
        check(r.returncode == 1 and "no such binding" in r.stderr,
              "reg del of a missing binding: exit 1, no such binding")
        out = sipctl(db, "reg", "del", a1)
        check("1 binding of " + a1 + " removed" in out,
              "reg del AOR through the socket")
        st, h = c.register("adm1", call_id="a1r")
        check(st == 200 and contacts(h) == {} and db_contacts(db, a1) == [],
              "AOR gone from memory and database")
        r = sipctl_run(db, "reg", "del", a1)
        check(r.returncode == 1 and "has no bindings" in r.stderr,
              "reg del of an AOR without bindings: exit 1")

        out = admin_raw(sock, b"hello there\n")
        check(out.startswith("err EINVAL"), "unknown admin command: err")
        out = admin_raw(sock, b"x" * 5000)
        check(out.startswith("err E2BIG"), "over-long admin line: err")
        out = admin_raw(sock, b"reg list not-an-aor\n")
        check(out.startswith("err EINVAL"), "bad AOR: err")
        check(admin_raw(sock, b"ping\n") == "ok 0\n" and
              sipd.proc.poll() is None, "sipd answers on after bad input")

        check(silent.recv(100) == b"" and
              9 <= time.time() - silent_t0 <= 20,
              "a connection that sends nothing is closed after 10 s")
        silent.close()
        # --admin off: the file directly while sipd runs
        out = sipctl(db, "reg", "--admin", "off", "list")
        check([l.split("\t")[1] for l in out.splitlines()] ==
              ["sip:adm2@127.0.0.1:5103"], "reg --admin off reads the file")
    finally:
        sipd.stop()
    check(not os.path.exists(sock), "socket file removed on SIGTERM")

    # no sipd: the database directly
    out = sipctl(db, "reg", "list")
    check([l.split("\t")[1] for l in out.splitlines()] ==
          ["sip:adm2@127.0.0.1:5103"], "reg list without sipd: the file")
    out = sipctl(db, "reg", "del", "adm2@" + DOMAIN)
    check("1 binding" in out and
          db_contacts(db, "sip:adm2@" + DOMAIN) == [],
          "reg del without sipd: the file")

    # a socket file left by a killed sipd is replaced; sipctl falls back
    sipd = Sipd(db, "off")
    sipd.stop(signal.SIGKILL)
    check(os.path.exists(sock), "killed sipd leaves its socket file")
    r = sipctl_run(db, "reg", "list")
    check(r.returncode == 0 and r.stdout == "",
          "sipctl with a stale socket file uses the database")
    sipd = Sipd(db, "off")
    try:
        check(admin_raw(sock, b"ping\n") == "ok 0\n",
              "a new sipd takes over a stale socket file")
        other = os.path.join(os.path.dirname(db), "other.sock")
        second = subprocess.run(
            [SIPD, "--db", db, "--admin", sock, "-l", "udp:127.0.0.1:0"],
            capture_output=True, text=True, timeout=20)
        check(second.returncode != 0 and "admin socket" in second.stderr,
              "a second sipd on a live admin socket refuses to start")
    finally:
        sipd.stop()
    sipd = Sipd(db, "off", extra=["--admin", other])
    try:
        check(os.path.exists(other) and not os.path.exists(sock),
              "--admin PATH puts the socket there")
        out = sipctl(db, "reg", "--admin", other, "list")
        check(out == "", "sipctl reg --admin PATH uses it")
    finally:
        sipd.stop()
    sipd = Sipd(db, "off", extra=["--admin", "off"])
    try:
        check(not os.path.exists(sock) and not os.path.exists(other),
              "--admin off: no socket")
    finally:
        sipd.stop()


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what)


def auth_tests(db):
    sipd = Sipd(db, "on")
    c = Client(sipd.udp)
    try:
        st, h = c.register("alice", headers=["Contact: <sip:alice@127.0.0.1:5070>"])
        chs = [challenge_params(v) for v in values(h, "www-authenticate")]
        check(st == 401 and [x["algorithm"] for x in chs] == ["SHA-256", "MD5"],
              "401 with SHA-256 then MD5 challenges")
        check(all(x["realm"] == DOMAIN and x["qop"] == "auth" for x in chs),
              "challenges for realm %s with qop=auth" % DOMAIN)

        st, h = c.register("alice", cseq=2, headers=[
            authorization(chs[0], "alice", "pw-alice"),
            "Contact: <sip:alice@127.0.0.1:5070>", "Expires: 600"])
        check(st == 200 and contacts(h) == {"sip:alice@127.0.0.1:5070": 600},
              "SHA-256 answer: 200 listing the binding with expires=600")
        check(values(h, "date"), "200 carries Date")

        time.sleep(1.1)
        st, h = c.register("alice", cseq=3, headers=[
            authorization(chs[1], "alice", "pw-alice", nc=2),
            "Contact: <sip:alice@127.0.0.1:5070>", "Expires: 900"])
        check(st == 200 and contacts(h) == {"sip:alice@127.0.0.1:5070": 900},
              "MD5 answer, refresh: expires=900")

        st, h = c.register("alice", cseq=4, headers=[
            authorization(chs[0], "alice", "pw-alice", nc=3),
            "Contact: <sip:alice@127.0.0.1:5071>;expires=300;q=0.5"])
        got = contacts(h)
        check(st == 200 and len(got) == 2 and
              got["sip:alice@127.0.0.1:5071"] == 300 and
              abs(got["sip:alice@127.0.0.1:5070"] - 900) <= 2,
              "two contacts listed with their remaining expiry")
        check(any(";q=0.500" in v for v in values(h, "contact")),
              "q-value kept")

        st, h = c.register("alice", cseq=5, headers=[
            authorization(chs[0], "alice", "pw-alice", nc=4),
            "Contact: <sip:alice@127.0.0.1:5072>", "Expires: 10"])
        check(st == 423 and values(h, "min-expires") == ["60"],
              "Expires: 10 gets 423 with Min-Expires: 60")

        st, h = c.register("alice", cseq=6, headers=[
            authorization(chs[0], "alice", "pw-alice", nc=5),
            "Contact: *", "Expires: 0"])
        check(st == 200 and contacts(h) == {},
              "Contact: * with Expires: 0 removes every binding")

        st, h = c.register("alice", domain="foreign.test", headers=[
            "Contact: <sip:alice@127.0.0.1:5070>"])
        check(st == 403, "REGISTER for a domain not served: 403")

        st, h = c.register("alice", cseq=7, headers=[
            authorization(chs[0], "alice", "wrong"),
            "Contact: <sip:alice@127.0.0.1:5070>"])
        st2, h2 = c.register("nobody", call_id="c2", cseq=1, headers=[
            authorization(chs[0], "nobody", "wrong"),
            "Contact: <sip:nobody@127.0.0.1:5070>"])
        shape = lambda hs: [(n, re.sub(r'nonce="[^"]*"', "", v))
                            for n, v in hs if n == "www-authenticate"]
        check(st == 401 and st2 == 401 and shape(h) == shape(h2),
              "wrong password and unknown user: the same 401")

        st, h = c.register("bob", call_id="c3", cseq=1,
                           to_user="alice", headers=[
                               authorization(chs[0], "bob", "pw-bob", nc=9),
                               "Contact: <sip:bob@127.0.0.1:5070>"])
        check(st == 403, "bob's credentials for alice's AOR: 403")
    finally:
        sipd.stop()
    check(sipd.proc.returncode == 0, "sipd stops cleanly on SIGTERM")


def persistence_tests(db, n=1000):
    sipd = Sipd(db, "off", workers=4)
    c = Client(sipd.udp)
    t0 = time.time()
    sent = []  # when each registration was sent: its expiry counts from then
    for i in range(n):
        sent.append(time.time())
        st, h = c.register("u%d" % i, call_id="p%d" % i, headers=[
            "Contact: <sip:u%d@127.0.0.1:%d>" % (i, 10000 + i),
            "Expires: %d" % (1000 + i)])
        assert st == 200, st
    check(True, "%d bindings registered with auth off" % n)
    sipd.stop(signal.SIGKILL)
    check(sipd.proc.returncode == -signal.SIGKILL, "sipd killed with SIGKILL")

    sipd = Sipd(db, "off", workers=2)
    try:
        loaded = [l for l in sipd.lines if "bindings loaded" in l]
        check(loaded and int(loaded[0].split()[1]) == n,
              "restart loads %d bindings (%s)" % (n, loaded[0].strip() if loaded else "?"))
        now = time.time()
        seen = {}
        for line in sipctl(db, "reg", "list").splitlines():
            aor, contact, exp = line.split("\t")[:3]
            seen[aor] = (contact, int(exp.split("=")[1]))
        bad = [i for i in range(n)
               if "sip:u%d@%s" % (i, DOMAIN) not in seen or
               abs(seen["sip:u%d@%s" % (i, DOMAIN)][1] -
                   (t0 + 1000 + i - now)) > 2 + (now - t0)]
        check(len(seen) == n and not bad,
              "sipctl reg list: all %d with their remaining expiry" % n)
        c = Client(sipd.udp)
        for i in (0, n // 2, n - 1):
            st, h = c.register("u%d" % i, call_id="q%d" % i)
            got = contacts(h)
            want = 1000 + i - (time.time() - sent[i])
            check(st == 200 and
                  list(got) == ["sip:u%d@127.0.0.1:%d" % (i, 10000 + i)] and
                  abs(list(got.values())[0] - want) <= 2,
                  "REGISTER query for u%d returns its binding (%s %s)" % (i, st, got))
        if SIPBENCH:
            out = os.path.join(os.path.dirname(db), "bench.json")
            subprocess.run([SIPBENCH, "register", "--target",
                            "127.0.0.1:%d" % sipd.udp, "--users", "1000",
                            "--domain", DOMAIN, "--password", "x",
                            "--inflight", "100", "--json", out, "--quiet"],
                           check=True, capture_output=True, timeout=60)
            res = json.load(open(out))
            text = json.dumps(res)
            failed = re.findall(r'"failed": (\d+)', text)
            check(failed and all(f == "0" for f in failed),
                  "sipbench register, 1000 users: no failure")
    finally:
        sipd.stop()


def commit_failure_tests(db):
    """A transaction the database refuses: 500 with Retry-After, and the
    binding is not kept in memory either; other AORs go on."""
    con = sqlite3.connect(db)
    con.execute("CREATE TRIGGER refuse BEFORE INSERT ON bindings "
                "WHEN NEW.aor = 'sip:doomed@%s' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END" % DOMAIN)
    con.commit()
    con.close()
    sipd = Sipd(db, "off", workers=2)
    c = Client(sipd.udp)
    try:
        st, h = c.register("doomed", call_id="d1", headers=[
            "Contact: <sip:doomed@127.0.0.1:5090>", "Expires: 600"])
        check(st == 500 and values(h, "retry-after") == ["1"],
              "a failed commit is answered 500 with Retry-After (%d)" % st)
        st, h = c.register("doomed", call_id="d2")
        check(st == 200 and contacts(h) == {},
              "the refused binding is not in memory either")
        st, h = c.register("fine", call_id="f1", headers=[
            "Contact: <sip:fine@127.0.0.1:5091>", "Expires: 600"])
        check(st == 200 and contacts(h) == {"sip:fine@127.0.0.1:5091": 600},
              "other AORs are committed and answered 200 meanwhile")
    finally:
        sipd.stop()
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER refuse")
    con.execute("DELETE FROM bindings")
    con.commit()
    con.close()


def shutdown_tests(db, n=300):
    """SIGTERM right after a burst of REGISTERs: sipd answers what it held
    once committed, and every binding answered 200 is in the database."""
    sipd = Sipd(db, "off", workers=2)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(("127.0.0.1", 0))
    lport = sock.getsockname()[1]
    for i in range(n):
        to = "sip:sd%d@%s" % (i, DOMAIN)
        msg = ("REGISTER sip:%s SIP/2.0\r\n"
               "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-sd-%d\r\n"
               "Max-Forwards: 70\r\nFrom: <%s>;tag=s%d\r\nTo: <%s>\r\n"
               "Call-ID: sd%d\r\nCSeq: 1 REGISTER\r\n"
               "Contact: <sip:sd%d@127.0.0.1:7000>\r\nExpires: 600\r\n"
               "Content-Length: 0\r\n\r\n") % (
                   DOMAIN, lport, i, to, i, to, i, i)
        sock.sendto(msg.encode(), ("127.0.0.1", sipd.udp))
    sipd.stop()
    ok = set()
    sock.settimeout(0.5)
    try:
        while True:
            data = sock.recv(65535).decode()
            m = re.search(r"branch=z9hG4bK-sd-(\d+)", data)
            if data.startswith("SIP/2.0 200") and m:
                ok.add(int(m.group(1)))
    except socket.timeout:
        pass
    sock.close()
    con = sqlite3.connect(db)
    stored = set(int(r[0][len("sip:sd"):].split("@")[0]) for r in con.execute(
        "SELECT aor FROM bindings WHERE aor LIKE 'sip:sd%'"))
    con.execute("DELETE FROM bindings WHERE aor LIKE 'sip:sd%'")
    con.commit()
    con.close()
    check(sipd.proc.returncode == 0 and ok and ok <= stored,
          "SIGTERM after a burst: %d of %d answered 200, all of them stored"
          % (len(ok), n))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "sipd.db")
        sipctl(db, "domain", "add", DOMAIN)
        sipctl(db, "user", "add", "alice@" + DOMAIN, "--password", "pw-alice")
        sipctl(db, "user", "add", "bob@" + DOMAIN, "--password", "pw-bob")
        auth_tests(db)
        commit_failure_tests(db)
        admin_tests(db)
        shutdown_tests(db)
        persistence_tests(db)
    print("test_registrar: all passed")


if __name__ == "__main__":
    main()
