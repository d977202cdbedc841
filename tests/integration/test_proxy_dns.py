#!/usr/bin/env python3
"""The proxy reaches a domain through DNS (RFC 3263), and a DNS server that
never answers does not stall it.

usage: test_proxy_dns.py SIPD

A DNS server written here (stdlib only: UDP on 127.0.0.1, a free port)
serves the zone lp2.test:

    lp2.test              NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.lp2.test
    _sip._udp.lp2.test    SRV   10 10 PORT_DOWN down.lp2.test
                          SRV   20 10 PORT_UAS  uas.lp2.test
    down.lp2.test, uas.lp2.test   A 127.0.0.1 (AAAA: no records)
    any other name        NXDOMAIN

down.lp2.test is a small UAS here that answers every INVITE with 503;
uas.lp2.test is a SIPp UAS that answers the call. sipd runs with --dns
pointing at this server only (never the system resolver). Checked:

1. A SIPp caller calls bob@lp2.test through sipd: the INVITE reaches the
   503 answerer first (SRV priority 10), then fails over to the SIPp UAS
   (priority 20); the call completes with ACK and BYE (SIPp exit 0).
2. A second call needs no DNS query (positive cache, TTL 300).
3. A request for a name that does not exist is answered (not forwarded),
   and the same request again makes no new query (negative cache).
4. With a second sipd whose DNS server never answers (--dns-timeout
   1500): an OPTIONS to sipd itself is answered at once while an INVITE
   for a name waits; that INVITE gets 100 at once and 408 after the bound.
"""
import atexit
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

HERE = os.path.dirname(os.path.abspath(__file__))
SCEN = os.path.join(HERE, "..", "sipp", "proxy")
TMP = tempfile.mkdtemp(prefix="sipd-dns-test-")
atexit.register(shutil.rmtree, TMP, True)
os.environ["SIPD_DB"] = os.path.join(TMP, "sipd.db")

FAILS = []


def check(cond, what):
    print(("ok - " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------
# DNS
# --------------------------------------------------------------------------

T_A, T_AAAA, T_SRV, T_NAPTR = 1, 28, 33, 35


def wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def char_string(s):
    return bytes([len(s)]) + s.encode()


class DnsServer:
    """Answers from ZONE {(name, type): [rdata]}; names not in NAMES get
    NXDOMAIN. With silent=True it reads queries and never answers."""

    def __init__(self, zone=None, silent=False, ttl=300):
        self.zone = zone or {}
        self.names = {n for (n, _) in self.zone}
        self.silent = silent
        self.ttl = ttl
        self.queries = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def count(self, pred=lambda n, t: True):
        with self.lock:
            return sum(1 for (n, t) in self.queries if pred(n, t))

    def run(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            q = self.parse(data)
            if not q:
                continue
            qid, name, qtype, question = q
            with self.lock:
                self.queries.append((name, qtype))
            if self.silent:
                continue
            rrs = self.zone.get((name, qtype), [])
            rcode = 0 if name in self.names else 3
            hdr = struct.pack("!HHHHHH", qid, 0x8400 | rcode, 1, len(rrs),
                              0, 0)
            body = b""
            for rd in rrs:
                body += wire_name(name) + struct.pack(
                    "!HHIH", qtype, 1, self.ttl, len(rd)) + rd
            self.sock.sendto(hdr + question + body, peer)

    @staticmethod
    def parse(data):
        if len(data) < 12:
            return None
        qid, _, qd = struct.unpack("!HHH", data[:6])
        if qd != 1:
            return None
        off, labels = 12, []
        while off < len(data) and data[off]:
            n = data[off]
            labels.append(data[off + 1:off + 1 + n].decode("ascii",
                                                           "replace"))
            off += 1 + n
        off += 1
        if off + 4 > len(data):
            return None
        qtype = struct.unpack("!H", data[off:off + 2])[0]
        return qid, ".".join(labels).lower(), qtype, data[12:off + 4]

    def stop(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


def zone_lp2(port_down, port_uas):
    a = socket.inet_aton("127.0.0.1")
    naptr = (struct.pack("!HH", 10, 10) + char_string("s") +
             char_string("SIP+D2U") + char_string("") +
             wire_name("_sip._udp.lp2.test"))
    return {
        ("lp2.test", T_NAPTR): [naptr],
        ("_sip._udp.lp2.test", T_SRV): [
            struct.pack("!HHH", 10, 10, port_down) +
            wire_name("down.lp2.test"),
            struct.pack("!HHH", 20, 10, port_uas) + wire_name("uas.lp2.test"),
        ],
        ("down.lp2.test", T_A): [a],
        ("down.lp2.test", T_AAAA): [],
        ("uas.lp2.test", T_A): [a],
        ("uas.lp2.test", T_AAAA): [],
    }


# --------------------------------------------------------------------------
# SIP peers
# --------------------------------------------------------------------------

class Rejecter:
    """A UAS that answers every INVITE with 503 (and absorbs the ACK)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.invites = 0
        self.acks = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode("utf-8", "replace")
            if text.startswith("ACK "):
                self.acks += 1
                continue
            if not text.startswith("INVITE "):
                continue
            self.invites += 1
            head = text.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
            keep = [h for h in head
                    if re.match(r"(?i)(via|from|to|call-id|cseq)\s*:", h)]
            keep = [h + ";tag=down1" if re.match(r"(?i)to\s*:", h)
                    else h for h in keep]
            resp = ("SIP/2.0 503 Service Unavailable\r\n" +
                    "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n")
            self.sock.sendto(resp.encode(), peer)

    def stop(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


class Sipd:
    def __init__(self, path, *extra):
        self.proc = subprocess.Popen(
            [path, "--workers", "1", "--auth", "off",
             "--listen", "udp:127.0.0.1:0", "--log-level", "debug"] +
            list(extra),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        self.log, self.port = [], None
        ready = threading.Event()

        def reader():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.log.append(line)
                m = re.search(r"listening on udp:127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=reader, daemon=True).start()
        if not ready.wait(10) or not self.port:
            self.proc.kill()
            raise SystemExit("sipd did not start:\n" + "\n".join(self.log))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -1


def sipp(scenario, port, remote=None, service=None, keys=(), timeout=20):
    args = ["sipp", "-sf", os.path.join(SCEN, scenario),
            "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin",
            "-timeout", "%ds" % timeout, "-timeout_error", "-trace_err",
            "-error_file", os.path.join(TMP, "sipp-%d-err.log" % port),
            "-max_recv_loops", "1000"]
    if service:
        args += ["-s", service]
    for k, v in keys:
        args += ["-key", k, v]
    if remote:
        args.append("127.0.0.1:%d" % remote)
    return subprocess.Popen(args, cwd=TMP, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_all(procs, timeout=30):
    codes = []
    end = time.time() + timeout
    for p in procs:
        try:
            codes.append(p.wait(max(0.1, end - time.time())))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            codes.append(-1)
    return codes


def errlog(port):
    try:
        with open(os.path.join(TMP, "sipp-%d-err.log" % port)) as f:
            return f.read()[-2000:]
    except OSError:
        return ""


def call_lp2(sipd, uas_port, what):
    uas = sipp("uas_answer.xml", uas_port, timeout=15)
    time.sleep(0.3)
    cport = free_port()
    uac = sipp("uac_call_dns.xml", cport, remote=sipd.port, service="bob",
               keys=[("dom", "lp2.test")])
    codes = wait_all([uac, uas])
    ok = codes == [0, 0]
    check(ok, "%s (SIPp exit codes caller, callee: %s)" % (what, codes))
    if not ok:
        print(errlog(cport))
        print(errlog(uas_port))
    return ok


def request(sock, port, text):
    sock.sendto(text.encode(), ("127.0.0.1", port))


def recv_until(sock, pred, timeout):
    """Responses until pred(text) or timeout: [(time, text)]."""
    got = []
    end = time.time() + timeout
    while time.time() < end:
        sock.settimeout(max(0.01, end - time.time()))
        try:
            data = sock.recv(65535).decode("utf-8", "replace")
        except socket.timeout:
            break
        got.append((time.time(), data))
        if pred(data):
            break
    return got


def msg(method, ruri, lport, n, to_tag=""):
    return ("%s %s SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-dns%d;rport\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:alice@127.0.0.1>;tag=a%d\r\n"
            "To: <%s>%s\r\n"
            "Call-ID: dns-%d-%d@test\r\n"
            "CSeq: 1 %s\r\n"
            "Contact: <sip:alice@127.0.0.1:%d>\r\n"
            "Content-Length: 0\r\n\r\n") % (
                method, ruri, lport, n, n, ruri, to_tag, n, os.getpid(),
                method, lport)


def final(got):
    for _, t in got:
        if re.match(r"SIP/2\.0 [2-6]\d\d ", t):
            return t
    return None


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    if not shutil.which("sipp"):
        print("sipp not installed (Debian package sip-tester): skipped")
        return 77
    sipd_path = argv[1]

    # ---- 1-3: a zone, failover, caches --------------------------------
    down = Rejecter()
    uas_port = free_port()
    dns = DnsServer(zone_lp2(down.port, uas_port))
    sipd = Sipd(sipd_path, "--dns", "127.0.0.1:%d" % dns.port,
                "--dns-timeout", "3000")
    try:
        call_lp2(sipd, uas_port, "call to bob@lp2.test found through "
                 "NAPTR and SRV")
        check(down.invites == 1 and down.acks == 1,
              "the first SRV target (503) was tried first and its 503 "
              "acknowledged (INVITEs %d, ACKs %d)" % (down.invites,
                                                      down.acks))
        check(dns.count(lambda n, t: n == "lp2.test" and t == T_NAPTR)
              == 1, "one NAPTR query for lp2.test")
        check(dns.count(lambda n, t: t == T_SRV) >= 1 and
              dns.count(lambda n, t: n == "uas.lp2.test" and t == T_A) == 1,
              "SRV and A queries made (%s)" % dns.queries)
        before = dns.count()
        call_lp2(sipd, uas_port, "a second call to bob@lp2.test")
        check(dns.count() == before,
              "the second call made no DNS query (cache; %d then %d)" %
              (before, dns.count()))
        check(down.invites == 2,
              "the second call failed over from the 503 target again")

        # negative answers
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        lport = s.getsockname()[1]
        finals = []
        counts = []
        for n in (1, 2):
            request(s, sipd.port, msg("OPTIONS", "sip:carol@nx.lp2.test",
                                      lport, 100 + n))
            f = final(recv_until(s, lambda t: re.match(
                r"SIP/2\.0 [2-6]", t), 6))
            finals.append(f.split("\r\n")[0] if f else None)
            counts.append(dns.count(lambda n_, t: "nx.lp2.test" in n_))
        s.close()
        check(all(f and re.match(r"SIP/2\.0 5\d\d ", f) for f in finals),
              "a name that does not exist is answered 5xx (%s)" % finals)
        check(counts[0] >= 1 and counts[1] == counts[0],
              "the second request for it made no query (negative cache; "
              "queries %s)" % counts)
    finally:
        rc = sipd.stop()
        check(rc == 0, "sipd exits 0 (%s)" % rc)
        dns.stop()
        down.stop()
    if FAILS:
        print("\n".join(sipd.log[-60:]))

    # ---- 4: a DNS server that never answers ---------------------------
    hole = DnsServer(silent=True)
    sipd = Sipd(sipd_path, "--dns", "127.0.0.1:%d" % hole.port,
                "--dns-timeout", "1500")
    try:
        inv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        inv.bind(("127.0.0.1", 0))
        ip = inv.getsockname()[1]
        opt = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        opt.bind(("127.0.0.1", 0))
        op = opt.getsockname()[1]
        t0 = time.time()
        request(inv, sipd.port, msg("INVITE", "sip:bob@void.test", ip, 201))
        time.sleep(0.05)
        t1 = time.time()
        request(opt, sipd.port, msg("OPTIONS", "sip:127.0.0.1:%d" %
                                    sipd.port, op, 202))
        og = recv_until(opt, lambda t: t.startswith("SIP/2.0 200 "), 2)
        check(bool(og) and og[-1][1].startswith("SIP/2.0 200 ") and
              og[-1][0] - t1 < 0.5,
              "OPTIONS to sipd answered at once while a lookup hangs "
              "(%s)" % ("%.3f s" % (og[-1][0] - t1) if og else "none"))
        got = recv_until(inv, lambda t: re.match(r"SIP/2\.0 [2-6]", t), 6)
        first = got[0] if got else None
        check(first is not None and first[1].startswith("SIP/2.0 100 ") and
              first[0] - t0 < 0.5, "the INVITE got 100 Trying at once")
        f = final(got)
        when = [t for t, x in got if x is f]
        check(f is not None and f.startswith("SIP/2.0 408 ") and
              1.3 <= when[0] - t0 <= 3.5,
              "the INVITE got 408 after the 1.5 s bound (%s after %s)" % (
                  f.split("\r\n")[0] if f else None,
                  "%.2f s" % (when[0] - t0) if when else "-"))
        check(hole.count() >= 1, "the silent server was asked (%d queries)"
              % hole.count())
        if f:
            tag = re.search(r"(?im)^To:.*?(;tag=[^;\r\n]+)", f)
            request(inv, sipd.port, msg("ACK", "sip:bob@void.test", ip, 201,
                                        tag.group(1) if tag else ""))
        # sipd still works for the next request
        request(opt, sipd.port, msg("OPTIONS", "sip:127.0.0.1:%d" %
                                    sipd.port, op, 203))
        og = recv_until(opt, lambda t: t.startswith("SIP/2.0 200 "), 2)
        check(bool(og) and og[-1][1].startswith("SIP/2.0 200 "),
              "sipd answers after the lookup gave up")
        inv.close()
        opt.close()
    finally:
        rc = sipd.stop()
        check(rc == 0, "sipd exits 0 (%s)" % rc)
        hole.stop()
    if FAILS:
        print("\n".join(sipd.log[-40:]))
        print("%d check(s) failed" % len(FAILS))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
