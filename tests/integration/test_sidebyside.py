#!/usr/bin/env python3
"""bench/sidebyside.py end to end, small: calls through Kamailio's
record-routing proxy (sipd's proxy mode reported as not available while
sipd rejects it) and bytes per binding at 2,000 bindings on both servers.
Checks that every part ran and gave figures, not how fast: the rates
depend on the machine.

usage: test_sidebyside.py BUILD_DIR
Exit 77 (skipped) when kamailio or kamcmd is not installed.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bench", "sidebyside.py")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if not shutil.which("kamailio") or not shutil.which("kamcmd"):
        print("kamailio not installed (make deps): skipped")
        return 77
    tmp = tempfile.mkdtemp(prefix="sidebyside-test-")
    try:
        js, png = os.path.join(tmp, "r.json"), os.path.join(tmp, "r.png")
        p = subprocess.run(
            [sys.executable, SCRIPT, "--build", sys.argv[1], "--smoke",
             "--only", "calls,mem", "--seconds", "1", "--max-trials", "1",
             "--start-rate", "200", "--mem-users", "2000", "--json", js,
             "--png", png], capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, "sidebyside exited %d:\n%s%s" % (
            p.returncode, p.stdout, p.stderr))
        check("| figure |" in p.stdout, "no table:\n" + p.stdout)
        with open(js) as f:
            r = json.load(f)["results"]
        calls = r["calls"]
        s = calls["sipd"]
        if s["available"]:
            check(s["runs"] and s["runs"][0]["attempted"] > 0,
                  "sipd calls ran nothing: %r" % s)
        else:
            check("proxy not available" in s["note"], "sipd note: %r" % s)
            check("proxy not available" in p.stdout, "table lacks the note")
        k = calls["Kamailio"]
        check(k["available"] and k["runs"][0]["attempted"] >= 100,
              "Kamailio calls: %r" % k)
        for who in ("sipd", "Kamailio"):
            m = r["mem"][who]
            check(m["bindings"] + m["failed"] == 2000 and m["bindings"] > 0,
                  "%s registrations: %r" % (who, m))
            check(m["bytes_per_binding"] > 0, "%s memory: %r" % (who, m))
        if shutil.which("gnuplot"):
            check(os.path.getsize(png) > 1000, "no chart")
        print("sidebyside: calls through Kamailio %d/%d, sipd %s; %.0f and "
              "%.0f B/binding at 2,000" % (
                  k["runs"][0]["succeeded"], k["runs"][0]["attempted"],
                  "available" if s["available"] else "proxy not available",
                  r["mem"]["sipd"]["bytes_per_binding"],
                  r["mem"]["Kamailio"]["bytes_per_binding"]))
        print("1 passed, 0 failed")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
