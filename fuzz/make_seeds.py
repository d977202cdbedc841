#!/usr/bin/env python3
"""Seed inputs for the libFuzzer targets (used by fuzz/run.sh).

  make_seeds.py messages OUTDIR [--protos TARBALL] FILE...
      copies the given message files, plus the first template of every
      10th PROTOS c07-sip test case with its placeholders filled in
  make_seeds.py uris OUTDIR [--protos TARBALL] FILE...
      one file per distinct URI found in the messages: request-URIs and
      the <...> URIs of the headers

Seeds larger than 64 KiB are skipped: the parser rejects them at once.
"""
import hashlib
import os
import re
import sys
import tarfile

MAX_SEED = 65535
EVERY = 10

PLACEHOLDERS = {
    b"<To>": b"bob@127.0.0.1",
    b"<From>": b"alice@127.0.0.1",
    b"<From-Address>": b"127.0.0.1",
    b"<From-IP>": b"127.0.0.1",
    b"<Local-Port>": b"5061",
    b"<Branch-ID>": b"protos",
    b"<Call-ID>": b"protos-call",
    b"<CSeq>": b"1",
    b"<Teardown-Method>": b"CANCEL",
}


def first_template(data):
    """The first `<count> SP <bytes>` template of a PROTOS case."""
    m = re.match(rb"(\d+) ", data)
    if not m:
        return None
    n = int(m.group(1))
    start = m.end()
    return data[start:start + n]


def fill(template, case_no):
    msg = template
    for key, value in PLACEHOLDERS.items():
        if key == b"<Branch-ID>":
            value = b"%s%07d" % (value, case_no)
        msg = msg.replace(key, value)
    # Content-Length: the real length of what follows the blank line.
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = msg.find(sep)
        if i >= 0:
            body_len = len(msg) - (i + len(sep))
            break
    else:
        body_len = 0
    return msg.replace(b"<Content-Length>", str(body_len).encode())


def protos_messages(tarball):
    """(name, bytes) of the filled first template of every 10th case."""
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            m = re.fullmatch(r"testcases/(\d+)", member.name)
            if not member.isfile() or not m:
                continue
            case_no = int(m.group(1))
            if case_no % EVERY:
                continue
            f = tar.extractfile(member)
            template = first_template(f.read()) if f else None
            if template is None:
                continue
            yield "protos-%07d" % case_no, fill(template, case_no)


def write(outdir, name, data, seen):
    if len(data) > MAX_SEED or not data:
        return False
    digest = hashlib.sha1(data).hexdigest()
    if digest in seen:
        return False
    seen.add(digest)
    with open(os.path.join(outdir, "%s-%s" % (name, digest[:8])), "wb") as f:
        f.write(data)
    return True


URI_IN_BRACKETS = re.compile(rb"<([A-Za-z][A-Za-z0-9+.-]*:[^<>\r\n]*)>")


def uris_of(msg):
    head = re.split(rb"\r?\n\r?\n", msg, maxsplit=1)[0]
    lines = head.split(b"\n")
    start = lines[0].rstrip(b"\r").split(b" ") if lines else []
    if len(start) >= 3 and not start[0].startswith(b"SIP/"):
        yield start[1]
    for m in URI_IN_BRACKETS.finditer(head):
        yield m.group(1)


def main(argv):
    args = argv[1:]
    if len(args) < 2 or args[0] not in ("messages", "uris"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, outdir, rest = args[0], args[1], args[2:]
    tarball = None
    if len(rest) >= 2 and rest[0] == "--protos":
        tarball, rest = rest[1], rest[2:]
    os.makedirs(outdir, exist_ok=True)

    messages = []
    for path in rest:
        with open(path, "rb") as f:
            messages.append((os.path.basename(path), f.read()))
    if tarball:
        messages.extend(protos_messages(tarball))

    seen, count = set(), 0
    for name, msg in messages:
        if mode == "messages":
            count += write(outdir, name, msg, seen)
        else:
            for i, uri in enumerate(uris_of(msg)):
                count += write(outdir, "%s-uri%d" % (name, i), uri, seen)
    print("%s: %d seeds" % (outdir, count))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
