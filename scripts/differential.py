#!/usr/bin/env python3
"""Differential framing test: malformed and smuggling request streams, each judged by
two strict HTTP/1.1 parsers (llhttp through `httptools`, and `h11`) and sent to a
running tinyprom. Whatever BOTH parsers refuse, tinyprom must refuse too: some
answer in the stream is one of the gate's refusal statuses, never only the answers of
routes (which would mean a malformed or smuggled request reached tiny_http).

The corpus is built here from the public desync techniques: CL.TE and TE.CL, TE
obfuscation (case, whitespace and control characters around names and values, lists,
repeated lines), repeated and malformed Content-Length, obs-fold, bare CR and LF, NUL
and other control characters, invalid Host, malformed request lines and versions.
Each head is followed by a second, pipelined request for a path no route has, so a
desync shows as an extra answer.

Usage: scripts/differential.py HOST:PORT [--limit SECONDS]
Exit status 0 when tinyprom refused everything both parsers refused (the counts are
printed), 1 otherwise (each offending vector is printed with what each side did).
"""

import argparse
import random
import re
import socket
import sys
import time

import h11
import httptools

# The statuses only the gate answers with (a route answers 200, 404, 405, ...).
GATE_REFUSALS = {400, 411, 413, 414, 417, 431, 501, 505}
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"


def corpus():
    """(name, bytes) pairs: every vector is a complete stream a client sends."""
    vectors = []

    def add(name, data):
        vectors.append((name, data if isinstance(data, bytes) else data.encode("latin-1")))

    # Characters that desync techniques put around header names, colons and values.
    odd = {
        "sp": " ", "tab": "\t", "vt": "\x0b", "ff": "\x0c", "cr": "\r", "lf": "\n",
        "nul": "\x00", "soh": "\x01", "esc": "\x1b", "del": "\x7f", "x80": "\x80",
        "xff": "\xff", "comma": ",", "semi": ";", "x": "x",
    }
    bodies = {
        "te": ("Transfer-Encoding", "chunked", "0\r\n\r\n"),
        "cl": ("Content-Length", "5", "hello"),
        "host": ("Host", "t", ""),
        "conn": ("Connection", "close", ""),
    }
    for key, (name, value, body) in bodies.items():
        host = "" if key == "host" else "Host: t\r\n"
        for cname, c in odd.items():
            placements = {
                "name-before": f"{c}{name}: {value}",
                "name-after": f"{name}{c}: {value}",
                "value-before": f"{name}: {c}{value}",
                "value-after": f"{name}: {value}{c}",
                "value-inside": f"{name}: {value[:1]}{c}{value[1:]}",
            }
            for where, line in placements.items():
                add(
                    f"{key}/{where}/{cname}",
                    f"POST /up HTTP/1.1\r\n{host}{line}\r\n\r\n{body}" + SMUGGLED.decode(),
                )
    # CL.TE and TE.CL, and TE obfuscations from the public desync lists.
    te_variants = [
        "Transfer-Encoding: chunked", "Transfer-Encoding: xchunked", "Transfer-Encoding: chunked, identity",
        "Transfer-Encoding: identity, chunked", "Transfer-Encoding: chunked, chunked",
        "Transfer-Encoding: CHUNKED", "Transfer-Encoding:chunked", "Transfer-Encoding : chunked",
        "Transfer-Encoding: \"chunked\"", "Transfer-Encoding: chunk", "Transfer-Encoding: chunked;q=1",
        "Transfer-Encoding: gzip, chunked", "Transfer-Encoding:\n chunked", "Transfer-Encoding: x\r\n chunked",
        "Transfer_Encoding: chunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: x",
        "Transfer-Encoding: x\r\nTransfer-Encoding: chunked",
    ]
    for i, te in enumerate(te_variants):
        for cl in ("4", "6", "0", "30"):
            add(f"cl-te/{i}/{cl}", f"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {cl}\r\n{te}\r\n\r\n1\r\nZ\r\n0\r\n\r\n" + SMUGGLED.decode())
            add(f"te-cl/{i}/{cl}", f"POST /up HTTP/1.1\r\nHost: t\r\n{te}\r\nContent-Length: {cl}\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n" + SMUGGLED.decode())
        add(f"te-only/{i}", f"POST /up HTTP/1.1\r\nHost: t\r\n{te}\r\n\r\n0\r\n\r\n" + SMUGGLED.decode())
        add(f"te-1.0/{i}", f"POST /up HTTP/1.0\r\n{te}\r\n\r\n0\r\n\r\n" + SMUGGLED.decode())
    # Content-Length forms.
    for cl in ["5, 5", "5,5", "+5", "-5", "0x5", "5 5", "5.0", "05", " 5", "5 ", "1e1",
               "99999999999999999999999", "", "5\x00", "\xd9\xa5"]:
        add(f"cl/{cl!r}", f"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {cl}\r\n\r\nhello" + SMUGGLED.decode())
    for a, b in [("5", "5"), ("5", "6"), ("0", "5"), ("5", "0")]:
        add(f"cl-dup/{a}/{b}", f"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {a}\r\nContent-Length: {b}\r\n\r\nhello" + SMUGGLED.decode())
    # obs-fold and line endings.
    add("obs-fold/sp", "GET /up HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n" + SMUGGLED.decode())
    add("obs-fold/tab", "GET /up HTTP/1.1\r\nHost: t\r\nX: a\r\n\tb\r\n\r\n" + SMUGGLED.decode())
    add("obs-fold/first", "GET /up HTTP/1.1\r\n Host: t\r\n\r\n" + SMUGGLED.decode())
    add("obs-fold/host", "GET /up HTTP/1.1\r\nHost: t\r\n x\r\n\r\n" + SMUGGLED.decode())
    for name, eol in [("lf", "\n"), ("cr", "\r"), ("crcr", "\r\r\n"), ("lfcr", "\n\r")]:
        add(f"eol/line/{name}", f"GET /up HTTP/1.1{eol}Host: t\r\n\r\n" + SMUGGLED.decode())
        add(f"eol/header/{name}", f"GET /up HTTP/1.1\r\nHost: t{eol}X: y\r\n\r\n" + SMUGGLED.decode())
        add(f"eol/end/{name}", f"GET /up HTTP/1.1\r\nHost: t\r\n{eol}" + SMUGGLED.decode())
    # Host.
    for host in ["a b", "[zz", "a/b@c", "a@b", "a:b:c", "[::1", "a:8x", "[::1]x", "a%g1", "a\\b",
                 "a\"b", "<a>", "a{b}", "a|b", "a^b", "a`b"]:
        add(f"host/{host!r}", f"GET /up HTTP/1.1\r\nHost: {host}\r\n\r\n" + SMUGGLED.decode())
    add("host/none", "GET /up HTTP/1.1\r\n\r\n" + SMUGGLED.decode())
    add("host/two", "GET /up HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + SMUGGLED.decode())
    # Request lines and versions.
    for line in ["GET  /up HTTP/1.1", "GET /up  HTTP/1.1", "GET\t/up HTTP/1.1", "GET /up\tHTTP/1.1",
                 "GET /up HTTP/1.1 ", " GET /up HTTP/1.1", "GET /up http/1.1", "GET /up HTTP/1.10",
                 "GET /up HTTP/01.1", "GET /up HTTP/1", "GET /up", "GET /u p HTTP/1.1",
                 "GET /up\x00 HTTP/1.1", "GET /up\x7f HTTP/1.1", "GET /\xff HTTP/1.1", "G\x00T /up HTTP/1.1",
                 "GET /up HTTP/1.1\x0b", "GET /up HTTP/2.0", "GET /up HTTP/0.9", "GET /up HTTP/1.x",
                 "GE(T /up HTTP/1.1", "/up HTTP/1.1"]:
        add(f"line/{line!r}", f"{line}\r\nHost: t\r\n\r\n" + SMUGGLED.decode())
    # Header names.
    for name in ["X Y", "X@Y", "X(Y", "X\"Y", "", "X\x00", "X\x7f", "X[Y]", "X/Y", "X=Y", "X{Y"]:
        add(f"name/{name!r}", f"GET /up HTTP/1.1\r\nHost: t\r\n{name}: v\r\n\r\n" + SMUGGLED.decode())
    add("name/no-colon", "GET /up HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n" + SMUGGLED.decode())
    # Control characters and non-ASCII in an ordinary value.
    for code in list(range(0, 9)) + list(range(10, 32)) + [127, 128, 255]:
        add(f"value/{code:#04x}", f"GET /up HTTP/1.1\r\nHost: t\r\nX: a{chr(code)}b\r\n\r\n" + SMUGGLED.decode())
    # Chunked bodies (tinyprom answers every chunked body 411; the parsers judge framing).
    for body in ["0\r\n\r\n", "1\r\nZ\r\n0\r\n\r\n", "g\r\n\r\n", "1;x=y\r\nZ\r\n0\r\n\r\n",
                 "0x1\r\nZ\r\n0\r\n\r\n", "1\nZ\n0\n\n", "-1\r\nZ\r\n0\r\n\r\n", "1 \r\nZ\r\n0\r\n\r\n",
                 "ffffffffffffffffff\r\n"]:
        add(f"chunked/{body!r}", f"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{body}" + SMUGGLED.decode())
    # Seeded random mutations of well-formed pipelined streams (the same every run):
    # a byte from the desync characters inserted or substituted, a byte dropped, a
    # header line repeated, the case of a byte flipped; one to three of them each.
    rng = random.Random(27)
    bases = [
        b"GET /up HTTP/1.1\r\nHost: t\r\n\r\n" + SMUGGLED,
        b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" + SMUGGLED,
        b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
        b"GET /up HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + SMUGGLED,
    ]
    alphabet = b" \t\x0b\x0c\r\n\x00\x01\x7f\x80\xff,;:x0"
    for n in range(400):
        data = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            kind = rng.randrange(5)
            if kind == 0:
                data.insert(at, rng.choice(alphabet))
            elif kind == 1:
                data[at] = rng.choice(alphabet)
            elif kind == 2 and len(data) > 1:
                del data[at]
            elif kind == 3:
                start = data.rfind(b"\r\n", 0, at) + 2
                end = data.find(b"\r\n", at)
                if end > start:
                    data[end + 2:end + 2] = data[start:end + 2]
            else:
                data[at] = data[at] ^ 0x20 if chr(data[at]).isalpha() else data[at]
        add(f"mutation/{n}", bytes(data))
    # Well-formed controls, so a run shows the parsers accept what they should.
    add("ok/get", "GET /up HTTP/1.1\r\nHost: t\r\n\r\n" + SMUGGLED.decode())
    add("ok/post", "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" + SMUGGLED.decode())
    return vectors


def h11_refuses(data):
    """Whether h11, as a server, refuses the stream (answering each request it reads)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return True
        if event is h11.NEED_DATA or event is h11.PAUSED:
            return False
        if isinstance(event, h11.ConnectionClosed):
            return False
        if isinstance(event, h11.EndOfMessage):
            conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
            conn.send(h11.EndOfMessage())
            if conn.our_state is h11.MUST_CLOSE:
                return False
            conn.start_next_cycle()


class _Sink:
    def on_message_complete(self):
        pass


def llhttp_refuses(data):
    """Whether llhttp (httptools' request parser) refuses the stream."""
    parser = httptools.HttpRequestParser(_Sink())
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        return False
    except httptools.HttpParserError:
        return True
    return False


STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def tinyprom_answers(addr, data, limit=3.0):
    """The statuses tinyprom answers the stream with (sent, then half-closed)."""
    sock = socket.create_connection(addr, timeout=limit)
    try:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # closed early: what it answered is what counts
        got = b""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            got += chunk
        return [int(s) for s in STATUS.findall(got)]
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("addr", help="HOST:PORT of a running tinyprom")
    ap.add_argument("--limit", type=float, default=90.0, help="seconds for the whole run")
    args = ap.parse_args()
    host, port = args.addr.rsplit(":", 1)
    addr = (host, int(port))
    started = time.monotonic()
    vectors = corpus()
    both = agreed = 0
    failures = []
    for name, data in vectors:
        if time.monotonic() - started > args.limit:
            print(f"differential: FAIL: out of time after {both} vectors both parsers refuse")
            return 1
        if not (h11_refuses(data) and llhttp_refuses(data)):
            continue
        both += 1
        statuses = tinyprom_answers(addr, data)
        if any(s in GATE_REFUSALS for s in statuses):
            agreed += 1
        else:
            failures.append((name, data, statuses))
    print(
        f"differential: {len(vectors)} vectors; {both} refused by both llhttp and h11; "
        f"tinyprom refused {agreed} of them in {time.monotonic() - started:.1f} s"
    )
    for name, data, statuses in failures:
        print(f"differential: NOT REFUSED {name}: {data!r} -> tinyprom {statuses}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
