#!/usr/bin/env python3
"""A call between two domains, each served by its own sipd.

usage: test_interdomain.py SIPD SIPCTL WORKERS

Two sipd on loopback: P1 serves lp1.test on 127.0.0.2, P2 serves lp2.test
on 127.0.0.3 (free ports, one database each, users made with sipctl, digest
authentication with MD5 for SIPp). Each has a static route to the other
domain and trusts the other's address, as an operator of two peering
servers would configure them. Bob registers two devices at P2 (SIPp, with
his password); one answers, one only rings. Alice registers at P1 (SIPp,
with her password) and calls bob@lp2.test through P1: P1 challenges her
with 407, she sends the INVITE again with credentials, P1 routes it to P2,
P2 forks it to Bob's devices and cancels the ringing one when the other
answers. The 200 carries both Record-Routes; ACK, a re-INVITE and the BYE
go through both proxies along that route set. Then Alice cancels a call
while both devices ring (200, and the 487 back through both proxies with
the right Vias), and Bob hangs up a call (his BYE reaches Alice through P2
then P1). SIPp checks every message
(exit 0 only when its scenario ran as written, with its regexp checks);
the test checks the traces of both servers for the Route set on the wire
and that P2 challenged nothing from P1, and that trust goes by source
address: the same request from 127.0.0.1 is challenged by P2.
Both servers are stopped by PID and must exit 0. Exits 77 without SIPp.
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
SCEN = os.path.join(HERE, "..", "sipp", "interdomain")
PROXY_SCEN = os.path.join(HERE, "..", "sipp", "proxy")
D1, D2 = "lp1.test", "lp2.test"
A1, A2 = "127.0.0.2", "127.0.0.3"
PW = {"alice": "Alice-pw-1", "bob": "Bob-pw-2"}

FAILS = []


def check(cond, what):
    print(("ok - " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)
    return cond


def free_port(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sipd:
    """A sipd whose stderr is collected by a thread."""

    def __init__(self, path, args, addr):
        self.proc = subprocess.Popen(
            [path] + args, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.log, self.port = [], None
        ready = threading.Event()

        def reader():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.log.append(line)
                if "bindings loaded" in line:
                    ready.set()
                m = re.search(r"listening on udp:%s:(\d+)" % re.escape(addr),
                              line)
                if m:
                    self.port = int(m.group(1))
            ready.set()

        threading.Thread(target=reader, daemon=True).start()
        ready.wait(10)

    def alive(self):
        return self.proc.poll() is None and self.port is not None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "killed"


def start_pair(sipd_path, workers, tmp):
    """P1 and P2 on free ports; each needs the other's port for its route,
    so the ports are chosen first (and chosen again if one was taken)."""
    for _ in range(5):
        p1, p2 = free_port(A1), free_port(A2)
        common = ["--workers", str(workers), "--auth", "on",
                  "--digest-algorithms", "md5", "--fork-timeout", "10000",
                  "--log-level", "trace"]
        s1 = Sipd(sipd_path, common + [
            "--db", os.path.join(tmp, "lp1.db"), "--domain", D1,
            "--listen", "udp:%s:%d" % (A1, p1),
            "--route", "%s=%s:%d" % (D2, A2, p2), "--trusted", A2], A1)
        s2 = Sipd(sipd_path, common + [
            "--db", os.path.join(tmp, "lp2.db"), "--domain", D2,
            "--listen", "udp:%s:%d" % (A2, p2),
            "--route", "%s=%s:%d" % (D1, A1, p1), "--trusted", A1], A2)
        if s1.alive() and s2.alive():
            return s1, s2
        s1.stop()
        s2.stop()
    raise SystemExit("sipd did not start:\n" + "\n".join(s1.log + s2.log))


def fill(tmp, name, src_dir, **subst):
    """A copy of scenario @name with @KEY@ placeholders filled in."""
    with open(os.path.join(src_dir, name)) as f:
        text = f.read()
    for k, v in subst.items():
        text = text.replace("@%s@" % k, v)
    left = re.findall(r"@[A-Z0-9_]+@", text)
    if left:
        raise SystemExit("%s: unfilled %s" % (name, left))
    path = os.path.join(tmp, "%d-%s" % (len(os.listdir(tmp)), name))
    with open(path, "w") as f:
        f.write(text)
    return path


def sipp(tmp, scenario, port, remote, service, timeout=20, auth=None,
         keys=()):
    args = ["sipp", "-sf", scenario, "-i", "127.0.0.1", "-p", str(port),
            "-m", "1", "-nostdin", "-timeout", "%ds" % timeout,
            "-timeout_error", "-trace_err", "-trace_msg",
            "-error_file", os.path.join(tmp, "sipp-%d-err.log" % port),
            "-message_file", os.path.join(tmp, "sipp-%d-msg.log" % port),
            "-max_recv_loops", "1000", "-s", service]
    if auth:
        # the digest uri is the Request-URI: sip:AUTH_URI
        args += ["-au", auth[0], "-ap", auth[1], "-auth_uri", auth[2]]
    for k, v in keys:
        args += ["-key", k, v]
    if remote:
        args.append(remote)
    return subprocess.Popen(args, cwd=tmp, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_all(procs, timeout):
    codes, end = [], time.time() + timeout
    for p in procs:
        try:
            codes.append(p.wait(max(0.1, end - time.time())))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            codes.append("killed")
    return codes


def sipp_logs(tmp, port):
    out = []
    for kind in ("err", "msg"):
        try:
            with open(os.path.join(tmp, "sipp-%d-%s.log" % (port, kind)),
                      errors="replace") as f:
                out.append("--- sipp %d %s ---\n%s" % (port, kind,
                                                       f.read()[-3000:]))
        except OSError:
            pass
    return "\n".join(out)


def register(tmp, user, domain, server, port):
    """SIPp registers user@domain with its password from @port."""
    scen = fill(tmp, "register.xml", SCEN, USER=user,
                DOMAIN_RE=re.escape(domain), PORT=str(port))
    code = wait_all([sipp(tmp, scen, port, "%s:%d" % server, user,
                          timeout=10, auth=(user, PW[user], domain),
                          keys=[("domain", domain)])], 15)[0]
    if not check(code == 0, "%s@%s registers with digest (sipp exit %s)"
                 % (user, domain, code)):
        print(sipp_logs(tmp, port))
    return code == 0


def udp_request(src_addr, dst, text):
    """Send one request from @src_addr, return the first final response."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src_addr, 0))
    s.settimeout(3)
    lport = s.getsockname()[1]
    s.sendto(text.replace("@SRC@", "%s:%d" % (src_addr, lport)).encode(),
             dst)
    try:
        while True:
            data = s.recv(65535).decode("utf-8", "replace")
            if not data.startswith("SIP/2.0 1"):
                return data
    except socket.timeout:
        return None
    finally:
        s.close()


def trust_by_address(s2):
    """An INVITE claiming a user of lp2.test: challenged from 127.0.0.1,
    not from P1's address (unknown user: 404)."""
    req = ("INVITE sip:nobody@%s SIP/2.0\r\n"
           "Via: SIP/2.0/UDP @SRC@;branch=z9hG4bK-trust%%s;rport\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:bob@%s>;tag=t%%s\r\nTo: <sip:nobody@%s>\r\n"
           "Call-ID: trust-%%s@test\r\nCSeq: 1 INVITE\r\n"
           "Content-Length: 0\r\n\r\n") % (D2, D2, D2)
    r = udp_request("127.0.0.1", (A2, s2.port), req % ((1,) * 3))
    check(r is not None and r.startswith("SIP/2.0 407 ") and
          re.search(r'Proxy-Authenticate: Digest realm="lp2\.test"', r),
          "P2 challenges a caller of lp2.test at 127.0.0.1 (%s)"
          % (r.split("\r\n")[0] if r else "no answer"))
    r = udp_request(A1, (A2, s2.port), req % ((2,) * 3))
    check(r is not None and r.startswith("SIP/2.0 404 "),
          "P2 does not challenge the same request from P1's address %s (%s)"
          % (A1, r.split("\r\n")[0] if r else "no answer"))


def trace_msgs(log, direction, peer):
    """SIP messages of a trace log sent to / received from @peer."""
    out = []
    for line in log:
        m = re.search(r"%s udp[ :]%s \d+ bytes(?: \(proxy\))?: (.*)$" %
                      (direction, re.escape(peer)), line)
        if m:
            out.append(m.group(1).replace("\\r\\n", "\n"))
    return out


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    sipd_path, sipctl, workers = argv[1], argv[2], int(argv[3])
    if not shutil.which("sipp"):
        print("sipp not installed (Debian package sip-tester): skipped")
        return 77
    tmp = tempfile.mkdtemp(prefix="sipd-interdomain-")
    try:
        return run(sipd_path, sipctl, workers, tmp)
    finally:
        shutil.rmtree(tmp, True)


def run(sipd_path, sipctl, workers, tmp):
    for db, dom, user in (("lp1.db", D1, "alice"), ("lp2.db", D2, "bob")):
        for cmd in (["domain", "add", dom],
                    ["user", "add", "%s@%s" % (user, dom), "--password",
                     PW[user]]):
            subprocess.run([sipctl, "--db", os.path.join(tmp, db)] + cmd,
                           check=True, capture_output=True, timeout=30)
    s1, s2 = start_pair(sipd_path, workers, tmp)
    print("P1 %s:%d (%s), P2 %s:%d (%s), %d worker(s)"
          % (A1, s1.port, D1, A2, s2.port, D2, workers))
    p1 = re.escape("%s:%d" % (A1, s1.port))
    p2 = re.escape("%s:%d" % (A2, s2.port))
    try:
        b1, b2, a = free_port("127.0.0.1"), free_port("127.0.0.1"), \
            free_port("127.0.0.1")
        if register(tmp, "bob", D2, (A2, s2.port), b1) and \
           register(tmp, "bob", D2, (A2, s2.port), b2) and \
           register(tmp, "alice", D1, (A1, s1.port), a):
            mark1, mark2 = len(s1.log), len(s2.log)
            answer = sipp(tmp, fill(tmp, "uas_answer.xml", SCEN, P1=p1,
                                    P2=p2), b1, None, "bob")
            ring = sipp(tmp, os.path.join(PROXY_SCEN, "uas_ring.xml"), b2,
                        None, "bob")
            time.sleep(0.3)
            caller = sipp(tmp, fill(tmp, "uac_call.xml", SCEN, P1=p1, P2=p2,
                                    D1=D1, D2=D2, D1_RE=re.escape(D1)),
                          a, "%s:%d" % (A1, s1.port), "bob",
                          auth=("alice", PW["alice"], "bob@" + D2))
            codes = wait_all([caller, answer, ring], 25)
            names = ("alice (407, INVITE with credentials, 200 with both "
                     "Record-Routes, ACK, re-INVITE, BYE)",
                     "bob's answering device (both Record-Routes and Vias, "
                     "in-dialog requests without Route)",
                     "bob's ringing device (CANCEL after the other answered)")
            for name, code, port in zip(names, codes, (a, b1, b2)):
                if not check(code == 0, "%s: sipp exit %s" % (name, code)):
                    print(sipp_logs(tmp, port))
            check_traces(s1.log[mark1:], s2.log[mark2:], s1.port, s2.port)
            more_calls(tmp, s1, s2, p1, p2, a, b1, b2)
        trust_by_address(s2)
    finally:
        rc1, rc2 = s1.stop(), s2.stop()
    check(rc1 == 0 and rc2 == 0, "both sipd stopped by PID, exit 0 (%s, %s)"
          % (rc1, rc2))
    if FAILS:
        print("--- P1 ---\n" + "\n".join(s1.log[-80:]))
        print("--- P2 ---\n" + "\n".join(s2.log[-80:]))
    print("%d failed" % len(FAILS))
    return 1 if FAILS else 0


def more_calls(tmp, s1, s2, p1, p2, a, b1, b2):
    """Alice cancels while Bob's devices ring; Bob hangs up a call."""
    subst = dict(P1=p1, P2=p2, D1=D1, D2=D2, D1_RE=re.escape(D1))
    cases = (
        ("alice cancels while bob's two devices ring: 200, 487 through "
         "both proxies", "uac_cancel.xml",
         [(os.path.join(PROXY_SCEN, "uas_ring.xml"), b1),
          (os.path.join(PROXY_SCEN, "uas_ring.xml"), b2)]),
        ("bob answers, then hangs up: his BYE reaches alice through P2 "
         "and P1", "uac_callee_bye.xml",
         [(fill(tmp, "uas_bye.xml", SCEN, **subst), b1),
          (os.path.join(PROXY_SCEN, "uas_ring.xml"), b2)]),
    )
    for name, uac, uases in cases:
        mark1 = len(s1.log)
        procs = [sipp(tmp, scen, port, None, "bob") for scen, port in uases]
        time.sleep(0.3)
        procs.insert(0, sipp(tmp, fill(tmp, uac, SCEN, **subst), a,
                             "%s:%d" % (A1, s1.port), "bob",
                             auth=("alice", PW["alice"], "bob@" + D2)))
        codes = wait_all(procs, 25)
        if not check(all(c == 0 for c in codes),
                     "%s (sipp exits %s)" % (name, codes)):
            for port in [a] + [u[1] for u in uases]:
                print(sipp_logs(tmp, port))
        if uac == "uac_cancel.xml":
            r487 = [m for m in trace_msgs(s1.log[mark1:], "recv", "%s:%d"
                                          % (A2, s2.port))
                    if m.startswith("SIP/2.0 487 ")]
            check(r487 and re.search(
                r"\nVia: SIP/2\.0/UDP %s;[^\n]*\nVia: SIP/2\.0/UDP "
                r"127\.0\.0\.1:\d+;" % p1, r487[0]),
                "P2 passes the 487 back to P1 with P1's and Alice's Vias")
        for port in [a] + [u[1] for u in uases]:
            for kind in ("err", "msg"):
                try:
                    os.unlink(os.path.join(tmp, "sipp-%d-%s.log"
                                           % (port, kind)))
                except OSError:
                    pass


def check_traces(log1, log2, port1, port2):
    """What the servers' traces show on the wire between them."""
    rr1 = "<sip:%s:%d;lr>" % (A1, port1)
    rr2 = "<sip:%s:%d;lr>" % (A2, port2)
    to_p2 = trace_msgs(log1, "send", "%s:%d" % (A2, port2))
    p2_from_p1 = trace_msgs(log2, "recv", "%s:%d" % (A1, port1))
    invites = [m for m in to_p2 if m.startswith("INVITE sip:bob@lp2.test ")]
    check(len(invites) >= 1 and "Proxy-Authorization:" not in invites[0] and
          ("Record-Route: %s" % rr1) in invites[0],
          "P1 forwards the authenticated INVITE to P2 with its Record-Route "
          "and without Alice's credentials")
    reinv = [m for m in to_p2 if re.match(r"INVITE sip:bob@127\.0\.0\.1:", m)]
    check(len(reinv) >= 1 and
          re.search(r"\nRoute: %s\n" % re.escape(rr2), reinv[0]) and
          rr1 not in reinv[0],
          "P1 sends the re-INVITE to P2 with Route: P2 only (its own popped)")
    for meth in ("ACK", "BYE"):
        ms = [m for m in to_p2 if re.match(r"%s sip:bob@127\.0\.0\.1:" % meth,
                                           m)]
        check(len(ms) >= 1 and
              re.search(r"\nRoute: %s\n" % re.escape(rr2), ms[0]),
              "P1 sends the in-dialog %s to P2 with Route: P2" % meth)
    from_alice = [m for line in log1 for m in [re.search(
        r"recv udp 127\.0\.0\.1:\d+ \d+ bytes: (INVITE sip:bob@127.*)$",
        line)] if m]
    check(len(from_alice) >= 1 and re.search(
        r"\\r\\nRoute: %s, ?%s\\r\\n|\\r\\nRoute: %s\\r\\nRoute: %s\\r\\n"
        % (re.escape(rr1), re.escape(rr2), re.escape(rr1), re.escape(rr2)),
        from_alice[0].group(1)),
        "Alice's re-INVITE carries the route set P1, P2")
    chal2 = [m for m in trace_msgs(log2, "send", "%s:%d" % (A1, port1))
             if re.match(r"SIP/2\.0 40[17] ", m)]
    check(p2_from_p1 and not chal2,
          "P2 took %d messages from P1 and challenged none"
          % len(p2_from_p1))
    chal1 = [line for line in log1
             if re.search(r"send udp[ :]127\.0\.0\.1:\d+ \d+ bytes"
                           r"(?: \(proxy\))?: SIP/2\.0 407 ", line)]
    check(len(chal1) == 1, "P1 challenged Alice's INVITE once (407)")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
