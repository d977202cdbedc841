#!/usr/bin/env python3
"""sipd over UDP on loopback: status codes on the wire.

usage: test_sipd_udp.py SIPD CORPUS_DIR

Starts SIPD on a free loopback port (port 0; the bound port is read from
its "listening on" log line), sends requests and checks the answers, then
stops it with SIGTERM and expects a clean exit.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

TIMEOUT = 3.0


def request(method, extra="", body=b"", cseq_method=None, call_id="c1"):
    head = (
        "%s sip:sipd@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-%s-%d\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@127.0.0.1>;tag=a1\r\n"
        "To: <sip:sipd@127.0.0.1>\r\n"
        "Call-ID: %s\r\n"
        "CSeq: 1 %s\r\n"
        "%s"
        "Content-Length: %d\r\n\r\n"
        % (method, method.lower(), time.monotonic_ns(), call_id,
           cseq_method or method, extra, len(body))
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
    def __init__(self, path):
        self.proc = subprocess.Popen(
            [path, "--listen", "udp:127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        self.log = []
        self.port = None
        ready = threading.Event()

        def reader():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.log.append(line)
                m = re.search(r"listening on udp:127\.0\.0\.1:(\d+)", line)
                if m and not ready.is_set():
                    self.port = int(m.group(1))
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


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    sipd_path, corpus = argv[1], argv[2]
    rfc4475 = os.path.join(corpus, "rfc4475")

    def dat(name):
        with open(os.path.join(rfc4475, name), "rb") as f:
            return f.read()

    server = Sipd(sipd_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(TIMEOUT)
    failures = []

    def exchange(data):
        sock.sendto(data, ("127.0.0.1", server.port))
        try:
            reply, _ = sock.recvfrom(65535)
        except socket.timeout:
            return None
        return parse_response(reply)

    def expect(label, data, status, check=None):
        got = exchange(data)
        if got is None:
            failures.append("%s: no answer, expected %d" % (label, status))
            return
        code, reason, headers = got
        if code != status:
            failures.append("%s: got %d %s, expected %d"
                            % (label, code, reason, status))
            return
        if check:
            problem = check(headers)
            if problem:
                failures.append("%s: %s" % (label, problem))
                return
        print("ok   %-34s %d %s" % (label, code, reason))

    def expect_silence(label, data):
        sock.sendto(data, ("127.0.0.1", server.port))
        sock.settimeout(0.5)
        try:
            reply, _ = sock.recvfrom(65535)
            failures.append("%s: unexpected answer %r"
                            % (label, reply[:40]))
        except socket.timeout:
            print("ok   %-34s no answer" % label)
        finally:
            sock.settimeout(TIMEOUT)

    def options_ok(h):
        for name in ("allow", "accept", "supported"):
            if name not in h:
                return "missing %s" % name
        if "OPTIONS" not in h["allow"][0]:
            return "Allow lacks OPTIONS: %r" % h["allow"]
        if ";tag=" not in h.get("to", [""])[0]:
            return "To has no tag: %r" % h.get("to")
        if h.get("call-id") != ["c1"] or h.get("cseq") != ["1 OPTIONS"]:
            return "Call-ID/CSeq not copied: %r" % h
        return None

    def unsupported_foo(h):
        if h.get("unsupported") != ["foo"]:
            return "Unsupported is %r, expected ['foo']" % h.get("unsupported")
        return None

    try:
        expect("OPTIONS", request("OPTIONS"), 200, options_ok)
        expect("OPTIONS with Require: foo",
               request("OPTIONS", "Require: foo\r\n"), 420, unsupported_foo)
        expect("RFC 4475 badvers.dat", dat("badvers.dat"), 505)
        expect("RFC 4475 insuf.dat", dat("insuf.dat"), 400)
        expect("RFC 4475 clerr.dat (parse error)", dat("clerr.dat"), 400)
        expect("CSeq method mismatch",
               request("OPTIONS", cseq_method="INVITE"), 400)
        expect("INVITE (not served yet)", request("INVITE"), 501)
        expect_silence("ACK", request("ACK"))
        expect_silence("a response",
                       b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;"
                       b"branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n")
        expect_silence("garbage", b"\x00\x01hello\r\n\r\n")
        expect("OPTIONS after the bad ones", request("OPTIONS"), 200,
               options_ok)
    finally:
        sock.close()
        rc = server.stop()

    if rc != 0:
        failures.append("sipd exit status %r after SIGTERM" % rc)
    if failures:
        print("sipd log:\n  " + "\n  ".join(server.log), file=sys.stderr)
        for f in failures:
            print("FAIL %s" % f, file=sys.stderr)
        return 1
    print("test_sipd_udp: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
