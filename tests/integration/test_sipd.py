#!/usr/bin/env python3
"""sipd on loopback over UDP and TCP: status codes and call flows on the wire.

usage: test_sipd.py SIPD CORPUS_DIR WORKERS

Starts SIPD with WORKERS worker threads in UAS mode on free loopback ports
(port 0; the bound ports are read from its "listening on" log lines), sends
requests from several source ports over UDP and TCP and checks the answers:
RFC 4475 verdicts, OPTIONS, received/rport on the top Via, a whole call
(INVITE, 180, 200, ACK, BYE, 200), retransmitted INVITE absorbed with the
last response resent; then stops it with SIGTERM and expects a clean exit.
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

TIMEOUT = 3.0

# sipd keeps a database (users, bindings): give it a private one, never the
# default under $HOME.
_DB_DIR = tempfile.mkdtemp(prefix="sipd-test-")
atexit.register(shutil.rmtree, _DB_DIR, True)
os.environ["SIPD_DB"] = os.path.join(_DB_DIR, "sipd.db")


def request(method, extra="", body=b"", cseq_method=None, call_id="c1",
            branch=None, transport="UDP", via_params=";rport"):
    head = (
        "%s sip:sipd@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/%s 127.0.0.1:5999;branch=%s%s\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@127.0.0.1>;tag=a1\r\n"
        "To: <sip:sipd@127.0.0.1>\r\n"
        "Call-ID: %s\r\n"
        "CSeq: 1 %s\r\n"
        "%s"
        "Content-Length: %d\r\n\r\n"
        % (method, transport,
           branch or "z9hG4bK-%s-%d" % (method.lower(), time.monotonic_ns()),
           via_params, call_id, cseq_method or method, extra, len(body))
    )
    return head.encode() + body


def parse_response(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    m = re.match(r"SIP/2\.0 (\d{3}) ?(.*)$", lines[0])
    if not m:
        raise AssertionError("not a SIP response: %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(m.group(1)), m.group(2), headers


class Sipd:
    def __init__(self, path, workers):
        self.proc = subprocess.Popen(
            [path, "--listen", "udp:127.0.0.1:0", "--listen",
             "tcp:127.0.0.1:0", "--workers", str(workers), "--uas"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        self.log = []
        self.port = None
        self.tcp_port = None
        ready = threading.Event()

        def reader():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.log.append(line)
                m = re.search(r"listening on (udp|tcp):127\.0\.0\.1:(\d+)",
                              line)
                if m and m.group(1) == "udp":
                    self.port = int(m.group(2))
                elif m:
                    self.tcp_port = int(m.group(2))
                if self.port and self.tcp_port and not ready.is_set():
                    ready.set()
            ready.set()

        self.thread = threading.Thread(target=reader, daemon=True)
        self.thread.start()
        if not ready.wait(10) or self.port is None:
            self.stop()
            raise AssertionError("sipd did not start:\n" + "\n".join(self.log))

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            rc = None
        self.thread.join(2)
        return rc


class UdpClient:
    """One UDP socket: a distinct source port, so SO_REUSEPORT may pick any
    worker for it, and keeps picking the same one."""

    name = "UDP"

    def __init__(self, port):
        self.dest = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    def send(self, data):
        self.sock.sendto(data, self.dest)

    def recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            reply, _ = self.sock.recvfrom(65535)
            return reply
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()


class TcpClient:
    """One TCP connection; responses are framed by Content-Length."""

    name = "TCP"

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), TIMEOUT)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def recv(self, timeout):
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                if len(rest) >= n:
                    self.buf = rest[n:]
                    return head + sep + rest[:n]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65535)
            except socket.timeout:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def close(self):
        self.sock.close()


def with_rport(msg):
    """The corpus messages name other hosts in their Via; with rport the
    answer comes back to our socket (RFC 3581) instead of their sent-by."""
    return re.sub(rb"(?m)^(Via:[^\r\n]*?)(\r\n)", rb"\1;rport\2", msg, count=1)


def run_checks(client, dat_file, failures):
    tp = client.name
    tag = "[%s] " % tp

    def dat(name):
        data = dat_file(name)
        return with_rport(data) if tp == "UDP" else data

    def exchange(data, timeout=TIMEOUT):
        client.send(data)
        reply = client.recv(timeout)
        return parse_response(reply) if reply else None

    def expect(label, data, status, check=None):
        got = exchange(data)
        if got is None:
            failures.append("%s%s: no answer, expected %d" % (tag, label, status))
            return None
        code, reason, headers = got
        if code != status:
            failures.append("%s%s: got %d %s, expected %d"
                            % (tag, label, code, reason, status))
            return None
        if check:
            problem = check(headers)
            if problem:
                failures.append("%s%s: %s" % (tag, label, problem))
                return None
        print("ok   %s%-34s %d %s" % (tag, label, code, reason))
        return headers

    def expect_silence(label, data):
        client.send(data)
        reply = client.recv(0.5)
        if reply is not None:
            failures.append("%s%s: unexpected answer %r" % (tag, label, reply[:40]))
        else:
            print("ok   %s%-34s no answer" % (tag, label))

    def options_ok(h):
        for name in ("allow", "accept", "supported"):
            if name not in h:
                return "missing %s" % name
        if "OPTIONS" not in h["allow"][0] or "INVITE" not in h["allow"][0]:
            return "Allow lacks OPTIONS/INVITE: %r" % h["allow"]
        if ";tag=" not in h.get("to", [""])[0]:
            return "To has no tag: %r" % h.get("to")
        if h.get("call-id") != ["c1"] or h.get("cseq") != ["1 OPTIONS"]:
            return "Call-ID/CSeq not copied: %r" % h
        via = h.get("via", [""])[0]
        if tp == "UDP" and not re.search(r";rport=\d+", via):
            return "rport not filled in: %r" % via
        if tp == "UDP" and ";received=127.0.0.1" not in via:
            return "received missing: %r" % via
        return None

    def unsupported_foo(h):
        if h.get("unsupported") != ["foo"]:
            return "Unsupported is %r, expected ['foo']" % h.get("unsupported")
        return None

    expect("OPTIONS", request("OPTIONS", transport=tp), 200, options_ok)
    if tp == "UDP":
        # without rport, §18.2.2: received address, sent-by port. Here the
        # sent-by port is a second socket of ours.
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.1", 0))
        other.settimeout(TIMEOUT)
        sent_by = other.getsockname()[1]
        client.send(request("OPTIONS", transport=tp, via_params="").replace(
            b"127.0.0.1:5999", b"127.0.0.1:%d" % sent_by))
        try:
            reply, _ = other.recvfrom(65535)
            code = parse_response(reply)[0]
            if code != 200:
                failures.append("%sOPTIONS to sent-by: got %d" % (tag, code))
            else:
                print("ok   %s%-34s 200 at the sent-by port" % (tag, "OPTIONS, no rport"))
        except socket.timeout:
            failures.append("%sOPTIONS without rport: nothing at the "
                            "sent-by port" % tag)
        finally:
            other.close()
    expect("OPTIONS with Require: foo",
           request("OPTIONS", "Require: foo\r\n", transport=tp), 420,
           unsupported_foo)
    expect("RFC 4475 badvers.dat", dat("badvers.dat"), 505)
    expect("RFC 4475 insuf.dat", dat("insuf.dat"), 400)
    if tp == "UDP":
        expect("RFC 4475 clerr.dat (parse error)", dat("clerr.dat"), 400)
    expect("CSeq method mismatch",
           request("OPTIONS", cseq_method="INVITE", transport=tp), 400)
    expect("MESSAGE (not served)", request("MESSAGE", transport=tp), 405,
           lambda h: None if "INVITE" in h.get("allow", [""])[0]
           else "no Allow: %r" % h.get("allow"))
    expect("unknown method", request("FOO", transport=tp), 501)
    expect_silence("stray ACK", request("ACK", transport=tp))
    expect_silence("a response",
                   b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;"
                   b"branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
                   b"To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n"
                   b"Content-Length: 0\r\n\r\n")
    if tp == "UDP":
        expect_silence("garbage", b"\x00\x01hello\r\n\r\n")

    # A whole call through the UAS: INVITE, 180, 200, ACK, BYE, 200.
    call_id = "call-%s-%d" % (tp, time.monotonic_ns())
    branch = "z9hG4bK-inv-%d" % time.monotonic_ns()
    sdp = (b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1"
           b"\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n")
    invite = request("INVITE", "Content-Type: application/sdp\r\n", sdp,
                     call_id=call_id, branch=branch, transport=tp)
    client.send(invite)
    codes, to_tag, last = [], None, None
    while True:
        reply = client.recv(TIMEOUT)
        if reply is None:
            break
        code, _, h = parse_response(reply)
        codes.append(code)
        last = reply
        if code >= 200:
            m = re.search(r";tag=([^;>\s]+)", h.get("to", [""])[0])
            to_tag = m.group(1) if m else None
            if h.get("content-type") != ["application/sdp"] or b"m=audio" not in reply:
                failures.append("%sINVITE 200 without an SDP answer" % tag)
            if "contact" not in h:
                failures.append("%sINVITE 200 without Contact" % tag)
            break
    if codes[-1:] != [200] or 180 not in codes or not to_tag:
        failures.append("%sINVITE: got %r (To tag %r)" % (tag, codes, to_tag))
        return
    print("ok   %s%-34s %s" % (tag, "INVITE", " ".join(map(str, codes))))
    to = "To: <sip:sipd@127.0.0.1>;tag=%s" % to_tag
    ack = request("ACK", call_id=call_id,
                  branch="z9hG4bK-ack-%d" % time.monotonic_ns(),
                  transport=tp).replace(b"To: <sip:sipd@127.0.0.1>",
                                        to.encode())
    expect_silence("ACK for the 200", ack)
    bye = request("BYE", call_id=call_id, transport=tp).replace(
        b"CSeq: 1 BYE", b"CSeq: 2 BYE").replace(
        b"To: <sip:sipd@127.0.0.1>", to.encode())
    client.send(bye)
    first = client.recv(TIMEOUT)
    got = parse_response(first) if first else None
    if not got or got[0] != 200:
        failures.append("%sBYE: got %r" % (tag, got and got[0]))
        return
    print("ok   %s%-34s 200 %s" % (tag, "BYE", got[1]))
    if tp == "UDP":
        # a retransmitted BYE is absorbed by its transaction, which sends
        # the same 200 again (§17.2.2)
        client.send(bye)
        again = client.recv(TIMEOUT)
        if again != first:
            failures.append("%sretransmitted BYE: got %r"
                            % (tag, again and again[:40]))
        else:
            print("ok   %s%-34s last response resent" % (tag, "BYE again"))
    expect("OPTIONS after the call", request("OPTIONS", transport=tp), 200)


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    sipd_path, corpus, workers = argv[1], argv[2], int(argv[3])
    rfc4475 = os.path.join(corpus, "rfc4475")

    def dat(name):
        with open(os.path.join(rfc4475, name), "rb") as f:
            return f.read()

    server = Sipd(sipd_path, workers)
    failures = []
    try:
        # a second server on the same address fails instead of sharing it
        # through SO_REUSEPORT
        for uri in ("udp:127.0.0.1:%d" % server.port,
                    "tcp:127.0.0.1:%d" % server.tcp_port):
            second = subprocess.run(
                [sipd_path, "--listen", uri, "--workers", "1", "--uas"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, timeout=10)
            err = second.stderr.decode("utf-8", "replace")
            if second.returncode != 1 or "Address already in use" not in err:
                failures.append("second sipd on %s: status %d, %r"
                                % (uri, second.returncode, err))
        # several source ports: with 4 workers they spread over workers
        for _ in range(3):
            client = UdpClient(server.port)
            try:
                run_checks(client, dat, failures)
            finally:
                client.close()
        for _ in range(2):
            client = TcpClient(server.tcp_port)
            try:
                run_checks(client, dat, failures)
            finally:
                client.close()
    finally:
        rc = server.stop()

    if rc != 0:
        failures.append("sipd exit status %r after SIGTERM" % rc)
    if failures:
        print("sipd log:\n  " + "\n  ".join(server.log), file=sys.stderr)
        for f in failures:
            print("FAIL %s" % f, file=sys.stderr)
        return 1
    print("test_sipd (%d workers): all passed" % workers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
