#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_auth (tests/fuzz/corpus/auth/).

Each SCRAM seed is "<mechanism>\\0<client-first>\\0<client-final>", a complete exchange that
succeeds against the fixed verifier, server nonce and certificate hash in tests/fuzz/auth.cc.
The SCRAM arithmetic (RFC 5802 section 3) is done here with hashlib/hmac, independently of
protocol/.
"""
import base64
import hashlib
import hmac
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "auth")

# PostgreSQL 15's verifier for "pencil" (CREATE ROLE ... PASSWORD 'pencil').
VERIFIER = ("SCRAM-SHA-256$4096:g/OEYcqE/kCt3+VFdZtXew==$zpG8yoCV2O3pwYvXp/aS9ejsaVKNesxiPFolncrPwLw=:"
            "QDHR8tqYu982nIcoxzsb/u5IUkCxKD19CVUQ6Q22pGI=")
SALT = base64.b64decode("g/OEYcqE/kCt3+VFdZtXew==")
SERVER_NONCE = "3rfcNHYJY1ZVvWVs7j"
CBIND = hashlib.sha256(b"cutover test certificate").digest()


def b64(data):
    return base64.b64encode(data).decode()


def exchange(mechanism, gs2, client_nonce, password="pencil", extension=""):
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), SALT, 4096)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    bare = "n=,r=" + client_nonce
    server_first = "r=%s%s,s=%s,i=4096" % (client_nonce, SERVER_NONCE, b64(SALT))
    cbind = gs2.encode() + (CBIND if gs2.startswith("p=") else b"")
    without_proof = "c=%s,r=%s%s%s" % (b64(cbind), client_nonce, SERVER_NONCE, extension)
    auth_message = ",".join([bare, server_first, without_proof]).encode()
    signature = hmac.new(stored_key, auth_message, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    client_final = without_proof + ",p=" + b64(proof)
    return b"\0".join([mechanism.encode(), (gs2 + bare).encode(), client_final.encode()])


SEEDS = {
    "scram_plain": exchange("SCRAM-SHA-256", "n,,", "rOprNGfwEbeRWgbNEkqO"),
    "scram_plus": exchange("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,", "fyko+d2lbbFgONRv9qkxdawL"),
    "scram_y_flag": exchange("SCRAM-SHA-256", "y,,", "abcdefghijklmnop"),
    "scram_extension": exchange("SCRAM-SHA-256", "n,,", "xyz", extension=",x=ext"),
    "scram_wrong_password": exchange("SCRAM-SHA-256", "n,,", "rOprNGfwEbeRWgbNEkqO", password="pencil2"),
    "users_file": ('# users\n"alice" "%s"\n"bob" "md5e4f70fb0b8f2745aa7a69557c80cbd0c"\n'
                   '"say ""hi""" "plain password"\n' % VERIFIER).encode(),
    "verifier": VERIFIER.encode(),
}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(SEEDS), OUT))
