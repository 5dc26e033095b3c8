#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_decoder (tests/fuzz/corpus/decoder/).

The wire format is built here by hand from the PostgreSQL 15 docs ("Message Formats"),
independently of protocol/, so the replay test also cross-checks the C++ codecs.
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "decoder")


def msg(type_byte, body=b""):
    return type_byte + struct.pack("!I", len(body) + 4) + body


def startup(body):
    return struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def nullable(v):
    return struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v


SEEDS = {
    "startup": startup(struct.pack("!I", 196608) + cstr("user") + cstr("app") + cstr("database")
                       + cstr("shop") + b"\0"),
    "ssl_request": startup(struct.pack("!I", 80877103)),
    "cancel_request": startup(struct.pack("!Iii", 80877102, 4242, -17)),
    "query": msg(b"Q", cstr("SELECT 1")),
    "extended_batch": msg(b"P", cstr("s1") + cstr("SELECT $1::int") + struct.pack("!HI", 1, 23))
    + msg(b"B", cstr("") + cstr("s1") + struct.pack("!HhH", 1, 0, 1) + nullable(b"7")
          + struct.pack("!Hh", 1, 0))
    + msg(b"D", b"P" + cstr("")) + msg(b"E", cstr("") + struct.pack("!i", 0)) + msg(b"S"),
    "startup_then_query": startup(struct.pack("!I", 196608) + cstr("user") + cstr("u") + b"\0")
    + msg(b"Q", cstr("BEGIN")) + msg(b"X"),
    "scram_exchange_client": msg(b"p", cstr("SCRAM-SHA-256") + nullable(b"n,,n=,r=abc"))
    + msg(b"p", b"c=biws,r=abcdef,p=cHJvb2Y="),
    "auth_server": msg(b"R", struct.pack("!i", 10) + cstr("SCRAM-SHA-256") + b"\0")
    + msg(b"R", struct.pack("!i", 11) + b"r=abcdef,s=c2FsdA==,i=4096")
    + msg(b"R", struct.pack("!i", 12) + b"v=c2ln") + msg(b"R", struct.pack("!i", 0))
    + msg(b"S", cstr("server_version") + cstr("15.4")) + msg(b"K", struct.pack("!ii", 1, 2))
    + msg(b"Z", b"I"),
    "data_rows": msg(b"T", struct.pack("!H", 2) + cstr("id") + struct.pack("!IhIhih", 16384, 1, 23, 4, -1, 0)
                     + cstr("name") + struct.pack("!IhIhih", 0, 0, 25, -1, -1, 0))
    + msg(b"D", struct.pack("!H", 2) + nullable(b"1") + nullable(None))
    + msg(b"D", struct.pack("!H", 2) + nullable(b"2") + nullable(b"two"))
    + msg(b"C", cstr("SELECT 2")) + msg(b"Z", b"T"),
    "error_response": msg(b"E", b"S" + cstr("ERROR") + b"V" + cstr("ERROR") + b"C" + cstr("42P01")
                          + b"M" + cstr('relation "x" does not exist') + b"\0") + msg(b"Z", b"E"),
    "copy_out": msg(b"H", struct.pack("!bHhh", 0, 2, 0, 0)) + msg(b"d", b"1\tone\n") + msg(b"c")
    + msg(b"C", cstr("COPY 1")),
    "misc_backend": msg(b"1") + msg(b"2") + msg(b"3") + msg(b"n") + msg(b"s") + msg(b"I")
    + msg(b"t", struct.pack("!HII", 2, 23, 25)) + msg(b"A", struct.pack("!i", 9) + cstr("ch") + cstr("hi"))
    + msg(b"V", nullable(b"42")) + msg(b"v", struct.pack("!ii", 0, 1) + cstr("_pq_.x"))
    + msg(b"N", b"S" + cstr("NOTICE") + b"M" + cstr("note") + b"\0")
    + msg(b"G", struct.pack("!bH", 0, 0)) + msg(b"W", struct.pack("!bHh", 1, 1, 1))
    + msg(b"R", struct.pack("!i", 5) + b"\x01\x02\x03\x04"),
    "function_call": msg(b"F", struct.pack("!IHhH", 1598, 1, 0, 1) + nullable(b"x") + struct.pack("!h", 0))
    + msg(b"f", cstr("stop")) + msg(b"H"),
    "bad_length": b"Q\x00\x00\x00\x02",
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"wrote {len(SEEDS)} seeds to {OUT}")
