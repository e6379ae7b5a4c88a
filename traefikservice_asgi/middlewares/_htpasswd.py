"""htpasswd hashes as Traefik checks them: ``abbot/go-http-auth``'s ``CheckSecret``
(Traefik pins the ``containous/go-http-auth`` fork, commit a37a7636d23e).

The hash's prefix picks the comparison, as there:

* ``$2a$``, ``$2b$``, ``$2x$``, ``$2y$``: bcrypt (Go's ``x/crypto/bcrypt``), checked with
  the ``bcrypt`` library; Go reads all four alike and so does this module;
* ``{SHA}``: base64 of the password's SHA-1;
* anything else: MD5-crypt with the hash's own magic, ``$apr1$`` (Apache) and ``$1$``
  alike, written here after go-http-auth's ``MD5Crypt`` (``passlib`` knows only those
  two magics and is no longer maintained; Go takes any ``$magic$salt$...``). A hash of
  another shape, a plain-text password included, never matches: go-http-auth has no
  plain-text comparison, so neither has Traefik.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import bcrypt

__all__ = ["check_secret", "is_slow", "md5_crypt"]

_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2x$", "$2y$")
_ITOA64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SWAPS = (12, 6, 0, 13, 7, 1, 14, 8, 2, 15, 9, 3, 5, 10, 4, 11)
_BCRYPT_MAX_PASSWORD = 72  # Go's bcrypt keys Blowfish with at most 72 bytes


def is_slow(secret: str) -> bool:
    """Whether checking against ``secret`` is costly, worth a thread: bcrypt and
    MD5-crypt (1000 MD5 rounds in Python; timings in the guide "Middlewares"); ``{SHA}``
    and hashes of no known shape are checked at once."""
    return secret.startswith("$")


def check_secret(password: bytes, secret: str) -> bool:
    """go-http-auth's ``CheckSecret(password, secret)`` (the password as the client's
    bytes: Go's strings are bytes)."""
    pw, hashed = password, secret.encode()
    if secret.startswith("{SHA}"):
        digest = base64.b64encode(hashlib.sha1(pw).digest())
        return hmac.compare_digest(hashed[5:], digest)
    if secret.startswith(_BCRYPT_PREFIXES):
        return _bcrypt(pw, hashed)
    parts = hashed.split(b"$", 3)
    if len(parts) != 4:
        return False
    magic, salt = b"$" + parts[1] + b"$", parts[2]
    return hmac.compare_digest(hashed, md5_crypt(pw, salt, magic))


def _bcrypt(password: bytes, hashed: bytes) -> bool:
    # The library reads $2a$, $2b$ and $2y$; Go's bcrypt ignores the minor version, so
    # $2x$ is checked as $2a$. Past 72 bytes Go ignores the rest; the library refuses.
    if hashed.startswith(b"$2x$"):
        hashed = b"$2a$" + hashed[4:]
    try:
        return bcrypt.checkpw(password[:_BCRYPT_MAX_PASSWORD], hashed)
    except ValueError:  # a malformed hash: Go's CompareHashAndPassword errs, no match
        return False


def md5_crypt(password: bytes, salt: bytes, magic: bytes) -> bytes:
    """go-http-auth's ``MD5Crypt``: ``magic + salt + "$" + the 22-character digest``."""
    d = hashlib.md5(password + magic + salt)
    mixin = hashlib.md5(password + salt + password).digest()
    d.update(bytes(mixin[i % 16] for i in range(len(password))))
    i = len(password)
    while i:
        d.update(password[:1] if i & 1 == 0 else b"\0")
        i >>= 1
    final = d.digest()
    for i in range(1000):
        d2 = hashlib.md5(final if i & 1 == 0 else password)
        if i % 3:
            d2.update(salt)
        if i % 7:
            d2.update(password)
        d2.update(password if i & 1 == 0 else final)
        final = d2.digest()
    out = bytearray()
    v = bits = 0
    for index in _SWAPS:
        v |= final[index] << bits
        bits += 8
        while bits > 6:
            out.append(_ITOA64[v & 0x3F])
            v >>= 6
            bits -= 6
    out.append(_ITOA64[v & 0x3F])
    return magic + salt + b"$" + bytes(out)
