#!/usr/bin/env python3
"""Decompress one gzip member from stdin with Python's zlib and write it to stdout.

Usage: gunzip.py < data.gz > data
Strict: the input must be exactly one complete gzip member (zlib checks the header,
the deflate stream, the CRC-32 and the size in the trailer); trailing bytes, a
truncated stream or a second member are errors. Exits non-zero with the reason on
stderr.
"""
import sys
import zlib


def main():
    data = sys.stdin.buffer.read()
    decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing only
    out = decoder.decompress(data)
    out += decoder.flush()
    if not decoder.eof:
        raise ValueError("truncated gzip stream")
    if decoder.unused_data:
        raise ValueError(f"{len(decoder.unused_data)} bytes after the gzip member")
    sys.stdout.buffer.write(out)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the message is what the test reports
        print(f"gunzip error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
