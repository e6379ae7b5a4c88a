"""htpasswd hashes as go-http-auth's CheckSecret reads them (hashes made by openssl and
the bcrypt library; the MD5-crypt ones are openssl's own output)."""

from __future__ import annotations

import base64
import hashlib

import bcrypt
import pytest

from traefikservice_asgi.middlewares._htpasswd import check_secret, is_slow, md5_crypt

BCRYPT_2B = "$2b$04$aRGH4UkboTuDt91kft4K/ubgJQQ9m8sGNJMyppxS/JaHUC1yQZRKS"  # "bcrypt-pw"


def test_md5_crypt_gives_openssls_apr1_and_1_hashes() -> None:
    # openssl passwd -apr1 -salt IlT5hhnV test / openssl passwd -1 -salt abcdefgh secret
    assert md5_crypt(b"test", b"IlT5hhnV", b"$apr1$") == b"$apr1$IlT5hhnV$.42EjFxfoqJ1RQPLBvkRj/"
    assert md5_crypt(b"secret", b"abcdefgh", b"$1$") == b"$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1"


@pytest.mark.parametrize(
    ("secret", "password", "match"),
    [
        ("$apr1$IlT5hhnV$.42EjFxfoqJ1RQPLBvkRj/", b"test", True),
        ("$apr1$IlT5hhnV$.42EjFxfoqJ1RQPLBvkRj/", b"Test", False),
        ("$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1", b"secret", True),
        ("{SHA}" + base64.b64encode(hashlib.sha1(b"pw").digest()).decode(), b"pw", True),
        ("{SHA}" + base64.b64encode(hashlib.sha1(b"pw").digest()).decode(), b"pw2", False),
        (BCRYPT_2B, b"bcrypt-pw", True),
        (BCRYPT_2B.replace("$2b$", "$2y$"), b"bcrypt-pw", True),
        (BCRYPT_2B.replace("$2b$", "$2a$"), b"bcrypt-pw", True),
        (BCRYPT_2B.replace("$2b$", "$2x$"), b"bcrypt-pw", True),
        (BCRYPT_2B, b"other", False),
        ("$2b$04$tooshort", b"bcrypt-pw", False),
        ("plain-pw", b"plain-pw", False),  # go-http-auth has no plain-text comparison
        ("", b"", False),
    ],
)
def test_check_secret_reads_the_prefix_as_go_http_auth(
    secret: str, password: bytes, match: bool
) -> None:
    assert check_secret(password, secret) is match


def test_a_bcrypt_password_past_72_bytes_is_cut_there_as_go_does() -> None:
    long = b"x" * 72
    hashed = bcrypt.hashpw(long, bcrypt.gensalt(4)).decode()
    assert check_secret(long + b"ignored", hashed)


def test_bcrypt_and_md5_crypt_are_slow_sha_and_plain_are_not() -> None:
    assert is_slow(BCRYPT_2B) and is_slow("$apr1$a$b")
    assert not is_slow("{SHA}x") and not is_slow("plain")
