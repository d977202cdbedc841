#!/usr/bin/env python3
"""sipd over WebSocket (RFC 7118), driven by a real client: Node and `ws`.

usage: test_sipd_ws.py SIPD WORKERS

Makes a self-signed certificate for 127.0.0.1 with the openssl command line
tool in a temporary directory, starts SIPD with WORKERS workers in UAS mode on ws: and wss: listeners at
free loopback ports (port 0; the bound ports come from its "listening on"
lines), runs tests/integration/ws/sip_ws_client.js against each (with Debian's
node-ws package, found through NODE_PATH=/usr/share/nodejs: no registry is
needed at test time) (OPTIONS, a
call, a clean close; several connections), then stops SIPD by its PID with
SIGTERM and expects a clean exit.
"""
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_DIR = os.path.join(HERE, "ws")
CLIENT = os.path.join(CLIENT_DIR, "sip_ws_client.js")
# where Debian's node-* packages put their modules
NODE_MODULES = "/usr/share/nodejs"

OPENSSL_CONF = """\
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = sip.test
[ext]
basicConstraints = critical,CA:TRUE
subjectAltName = DNS:sip.test,IP:127.0.0.1
"""

# sipd keeps a database (users, bindings): give it a private one, never the
# default under $HOME.
_DB_DIR = tempfile.mkdtemp(prefix="sipd-test-")
atexit.register(shutil.rmtree, _DB_DIR, True)
os.environ["SIPD_DB"] = os.path.join(_DB_DIR, "sipd.db")


def make_cert(tmp):
    conf = os.path.join(tmp, "openssl.cnf")
    cert = os.path.join(tmp, "cert.pem")
    key = os.path.join(tmp, "key.pem")
    with open(conf, "w") as f:
        f.write(OPENSSL_CONF)
    subprocess.run(
        ["openssl", "req", "-x509", "-config", conf, "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2"],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, timeout=60)
    return cert, key


class Sipd:
    def __init__(self, path, workers, cert, key):
        self.proc = subprocess.Popen(
            [path, "--listen", "ws:127.0.0.1:0", "--listen",
             "wss:127.0.0.1:0", "--tls-cert", cert, "--tls-key", key,
             "--workers", str(workers), "--uas", "--verbose"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        self.log = []
        self.ports = {}
        ready = threading.Event()

        def reader():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.log.append(line)
                m = re.search(r"listening on (wss?):127\.0\.0\.1:(\d+)", line)
                if m:
                    self.ports[m.group(1)] = int(m.group(2))
                if len(self.ports) == 2:
                    ready.set()
            ready.set()

        self.thread = threading.Thread(target=reader, daemon=True)
        self.thread.start()
        if not ready.wait(10) or len(self.ports) != 2:
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


def run_client(url, ca, rounds):
    env = dict(os.environ)
    env["NODE_PATH"] = os.pathsep.join(
        p for p in (NODE_MODULES, env.get("NODE_PATH")) if p)
    r = subprocess.run(["node", CLIENT, url, ca or "-", str(rounds)],
                       env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    sys.stdout.write(r.stdout.decode("utf-8", "replace"))
    return r.returncode == 0


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    sipd_path, workers = argv[1], int(argv[2])
    for tool in ("openssl", "node"):
        if not shutil.which(tool):
            print("FAIL %s not found (scripts/deps.sh installs it)" % tool,
                  file=sys.stderr)
            return 1
    if not os.path.isfile(os.path.join(NODE_MODULES, "ws", "package.json")):
        print("FAIL the ws module is not in %s (Debian package node-ws; "
              "scripts/deps.sh installs it)" % NODE_MODULES, file=sys.stderr)
        return 1
    failures = []
    with tempfile.TemporaryDirectory(prefix="sipd-ws-") as tmp:
        cert, key = make_cert(tmp)
        server = Sipd(sipd_path, workers, cert, key)
        try:
            rounds = 2 * workers
            if not run_client("ws://127.0.0.1:%d" % server.ports["ws"], None,
                              rounds):
                failures.append("ws: client failed")
            if not run_client("wss://127.0.0.1:%d" % server.ports["wss"],
                              cert, rounds):
                failures.append("wss: client failed")
        finally:
            rc = server.stop()
    if rc != 0:
        failures.append("sipd exit status %r after SIGTERM" % rc)
    if failures:
        print("sipd log:\n  " + "\n  ".join(server.log), file=sys.stderr)
        for f in failures:
            print("FAIL %s" % f, file=sys.stderr)
        return 1
    print("test_sipd_ws (%d workers): all passed" % workers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
