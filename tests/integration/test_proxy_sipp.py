#!/usr/bin/env python3
"""The stateful proxy and the redirect server with real SIP peers (SIPp).

usage: test_proxy_sipp.py SIPD SIPCTL SIPBENCH WORKERS

Starts sipd (registrar and proxy, auth off, WORKERS workers) on a free
loopback UDP port. Callees are SIPp UAS instances (tests/sipp/proxy/uas_*)
on free ports whose Contact is registered with a REGISTER sent from here;
the caller is a SIPp UAC scenario (uac_*). Every SIPp instance must end
with exit status 0, which SIPp gives only when its scenario ran as written
(expected messages, header checks with check_it). Then sipbench calls a
registered sipbench uas through sipd and must see no failure. sipd is
stopped by its PID and must exit 0.
"""
import atexit
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
SCEN = os.path.join(HERE, "..", "sipp", "proxy")
TMP = tempfile.mkdtemp(prefix="sipd-proxy-test-")
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


class Sipd:
    def __init__(self, path, workers, *extra):
        self.proc = subprocess.Popen(
            [path, "--workers", str(workers), "--auth", "off",
             "--listen", "udp:127.0.0.1:0", "--fork-timeout", "1500",
             "--log-level", "debug"] + list(extra),
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


def sip_request(port, text):
    """Send one request from a fresh socket, return the final response."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(3)
    lport = s.getsockname()[1]
    s.sendto(text.replace("@LPORT@", str(lport)).encode(),
             ("127.0.0.1", port))
    try:
        while True:
            data = s.recv(65535).decode("utf-8", "replace")
            if not data.startswith("SIP/2.0 1"):
                return data
    except socket.timeout:
        return None
    finally:
        s.close()


_cseq = [0]


def register(port, user, contact, q=None, expires=300):
    _cseq[0] += 1
    qp = ";q=%s" % q if q else ""
    r = sip_request(port, (
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:@LPORT@;branch=z9hG4bK-reg%d;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:%s@127.0.0.1>;tag=r%d\r\n"
        "To: <sip:%s@127.0.0.1>\r\n"
        "Call-ID: reg-%d-%s@test\r\n"
        "CSeq: %d REGISTER\r\n"
        "Contact: <%s>%s;expires=%d\r\n"
        "Content-Length: 0\r\n\r\n") % (_cseq[0], user, _cseq[0], user,
                                        _cseq[0], user, _cseq[0], contact,
                                        qp, expires))
    return r is not None and r.startswith("SIP/2.0 200 ")


def unregister(port, user):
    _cseq[0] += 1
    sip_request(port, (
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:@LPORT@;branch=z9hG4bK-unreg%d;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:%s@127.0.0.1>;tag=u%d\r\n"
        "To: <sip:%s@127.0.0.1>\r\n"
        "Call-ID: unreg-%d@test\r\n"
        "CSeq: 1 REGISTER\r\n"
        "Contact: *\r\nExpires: 0\r\n"
        "Content-Length: 0\r\n\r\n") % (_cseq[0], user, _cseq[0], user,
                                        _cseq[0]))


def sipp(scenario, port, remote=None, service=None, timeout=20, keys=()):
    args = ["sipp", "-sf", scenario if os.path.isabs(scenario)
            else os.path.join(SCEN, scenario),
            "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin",
            "-timeout", "%ds" % timeout, "-timeout_error", "-trace_err",
            "-error_file", os.path.join(TMP, "sipp-%d-err.log" % port),
            "-message_file", os.path.join(TMP, "sipp-%d-msg.log" % port),
            "-trace_msg", "-max_recv_loops", "1000"]
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


def scenario_call(sipd, name, callees, uac="uac_call.xml", user=None,
                  keys=()):
    """Register each callee (scenario, q) as a SIPp UAS, call USER."""
    user = user or "u%s" % re.sub(r"\W", "", name)[:12]
    uases, ports = [], []
    for scen, q in callees:
        port = free_port()
        if scen == "uas_reject.xml":
            scen = template("uas_reject.xml", dict(keys)["status"])
        uases.append(sipp(scen, port, timeout=15))
        ports.append(port)
        register(sipd.port, user, "sip:%s@127.0.0.1:%d" % (user, port), q)
    time.sleep(0.3)
    cport = free_port()
    uac_p = sipp(uac, cport, remote=sipd.port, service=user)
    codes = wait_all([uac_p] + uases)
    ok = all(c == 0 for c in codes)
    check(ok, "%s (exit codes %s)" % (name, codes))
    if not ok:
        for p in [cport] + ports:
            print(errlog(p))
    for p in [cport] + ports:
        try:
            os.unlink(os.path.join(TMP, "sipp-%d-err.log" % p))
        except OSError:
            pass
    unregister(sipd.port, user)


def template(name, status, extra="Max-Forwards: 70"):
    """A scenario template with @STATUS@ (and @EXTRA@) filled in."""
    with open(os.path.join(SCEN, name)) as f:
        text = f.read()
    path = os.path.join(TMP, "%s_%s_%d.xml" % (name[:-4], status,
                                              len(os.listdir(TMP))))
    with open(path, "w") as f:
        f.write(text.replace("@STATUS@", str(status))
                .replace("@EXTRA@", extra))
    return path


def status_file(status, extra="Max-Forwards: 70"):
    """uac_status.xml for @status: an INVITE whose answer must be it."""
    return template("uac_status.xml", status, extra)


def status_call(sipd, name, status, user, extra="Max-Forwards: 70"):
    """A UAC whose INVITE must get @status."""
    path = status_file(status, extra)
    cport = free_port()
    code = wait_all([sipp(path, cport, remote=sipd.port, service=user)])[0]
    check(code == 0, "%s: %s" % (name, status))
    if code != 0:
        print(errlog(cport))


def sipbench_calls(sipd, sipbench, calls):
    user = "bench"
    u = subprocess.Popen(
        [sipbench, "uas", "--listen", "127.0.0.1:0", "--register",
         "--target", "127.0.0.1:%d" % sipd.port, "--users", "1",
         "--user", user, "--duration", "30", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        r = subprocess.run(
            [sipbench, "call", "--target", "127.0.0.1:%d" % sipd.port,
             "--callee", user, "--max-requests", str(calls), "--rate",
             "500", "--quiet"], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=60)
        out = r.stdout.decode()
        ok = re.search(r"succeeded\s+(\d+)", out)
        failed = re.search(r"failed\s+(\d+)", out)
        check(r.returncode == 0 and ok and int(ok.group(1)) == calls and
              failed and int(failed.group(1)) == 0,
              "sipbench: %d calls through the proxy, none failed" % calls)
        if not ok or int(ok.group(1)) != calls:
            print(out)
    finally:
        u.send_signal(signal.SIGINT)
        try:
            u.wait(10)
        except subprocess.TimeoutExpired:
            u.kill()
            u.wait()


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    sipd_path, sipctl, sipbench, workers = argv[1], argv[2], argv[3], \
        int(argv[4])
    if not shutil.which("sipp"):
        print("sipp not installed (Debian package sip-tester): skipped")
        return 77
    # a known user without bindings: 480; everyone else unknown: 404
    subprocess.run([sipctl, "--db", os.environ["SIPD_DB"], "domain", "add",
                    "127.0.0.1"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    subprocess.run([sipctl, "--db", os.environ["SIPD_DB"], "user", "add",
                    "carol@127.0.0.1", "--password", "secret"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sipd = Sipd(sipd_path, workers)
    try:
        scenario_call(sipd, "basic call: INVITE, 180, 200, ACK, BYE via "
                      "Record-Route", [("uas_answer.xml", None)])
        scenario_call(sipd, "re-INVITE and BYE through Record-Route",
                      [("uas_reinvite.xml", None)], uac="uac_reinvite.xml")
        scenario_call(sipd, "caller CANCEL: 200, the callee cancelled, 487",
                      [("uas_ring.xml", None)], uac="uac_cancel.xml")
        scenario_call(sipd, "486 Busy Here reaches the caller",
                      [("uas_reject.xml", None)], uac=status_file(486),
                      user="busy", keys=[("status", "486")])
        scenario_call(sipd, "3 devices ring in parallel, one answers, the "
                      "others get CANCEL",
                      [("uas_answer.xml", None), ("uas_ring.xml", None),
                       ("uas_ring.xml", None)])
        scenario_call(sipd, "603 from one device cancels the others",
                      [("uas_reject.xml", None), ("uas_ring.xml", None),
                       ("uas_ring.xml", None)], uac=status_file(603),
                      keys=[("status", "603")])
        scenario_call(sipd, "sequential by q: q=1.0 busy, q=0.5 answers",
                      [("uas_reject.xml", "1.0"), ("uas_answer.xml", "0.5")],
                      keys=[("status", "486")])
        scenario_call(sipd, "sequential by q: q=1.0 rings past the fork "
                      "timeout and is cancelled, q=0.5 answers",
                      [("uas_ring.xml", "1.0"), ("uas_answer.xml", "0.5")])
        status_call(sipd, "Max-Forwards: 0", 483, "carol",
                    "Max-Forwards: 0")
        status_call(sipd, "Proxy-Require: an unknown option", 420, "carol",
                    "Max-Forwards: 70\n      Proxy-Require: x-unknown")
        status_call(sipd, "unknown user", 404, "nobody")
        status_call(sipd, "known user without a binding", 480, "carol")
        register(sipd.port, "loop", "sip:loop@127.0.0.1:%d" % sipd.port)
        status_call(sipd, "a binding that points back at the proxy", 482,
                    "loop")
        sipbench_calls(sipd, sipbench, 1000)
    finally:
        code = sipd.stop()
    check(code == 0, "sipd exits 0")
    if workers > 1:
        time.sleep(0.2)
        n = [int(m.group(1)) for m in
             (re.search(r"(\d+) responses handed over", x) for x in sipd.log)
             if m]
        check(n and n[0] > 0, "responses were handed over between workers "
              "(%s)" % (n[0] if n else "no count"))

    # redirect mode: the bindings in a 302
    red = Sipd(sipd_path, workers, "--mode", "redirect")
    try:
        register(red.port, "dave", "sip:dave@127.0.0.1:5999", "0.7")
        register(red.port, "dave", "sip:dave@127.0.0.1:5998", "0.2")
        status_call(red, "redirect mode", 302, "dave")
        r = sip_request(red.port, (
            "INVITE sip:dave@127.0.0.1 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:@LPORT@;branch=z9hG4bK-r1;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\n"
            "To: <sip:dave@127.0.0.1>\r\nCall-ID: redirect-1@test\r\n"
            "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
        check(r is not None and
              re.search(r"Contact: <sip:dave@127\.0\.0\.1:5999>;q=0\.700;"
                        r"expires=\d+", r) is not None and
              re.search(r"Contact: <sip:dave@127\.0\.0\.1:5998>;q=0\.200;"
                        r"expires=\d+", r) is not None,
              "302 lists both bindings with q and expires")
        status_call(red, "redirect mode, unknown user", 404, "nobody")
        # the caller follows the 302 to the binding with the highest q,
        # which answers it directly
        uport = free_port()
        uas = sipp("uas_direct.xml", uport, timeout=15)
        register(red.port, "erin", "sip:erin@127.0.0.1:%d" % uport, "1.0")
        register(red.port, "erin", "sip:erin@127.0.0.1:%d" % free_port(),
                 "0.3")
        time.sleep(0.3)
        cport = free_port()
        uac = sipp("uac_follow_302.xml", cport, remote=red.port,
                   service="erin")
        codes = wait_all([uac, uas])
        check(codes == [0, 0], "redirect mode: the caller follows the 302 "
              "to the q=1.0 binding, which answers (exit codes %s)" % codes)
        if codes != [0, 0]:
            print(errlog(cport))
            print(errlog(uport))
    finally:
        code = red.stop()
    check(code == 0, "sipd (redirect) exits 0")
    if FAILS:
        print("\n".join(sipd.log[-60:]))
    print("%d failed" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
