"""SHA-256 and HMAC-SHA256 without loading OpenSSL's hashlib at start (the agent's idle footprint).

``hashlib`` initialises OpenSSL's digests (about 0.6 MB of a board's memory); CPython's
own ``_sha256`` (``_sha2`` from 3.12) computes the same digests, and serves the handshake and
certificate fingerprints.  Files are hashed with ``bulk_sha256()``: hashlib's, loaded on the
first file hash (the builtin one is about six times slower and would cap a push).  Falls back to
hashlib where neither builtin exists.  Python 3.8 syntax; standard library only.
"""
import importlib


def _sha256():
    for name in ("_sha256", "_sha2"):  # CPython 3.8-3.11, 3.12+
        try:
            return importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            pass
    from hashlib import sha256  # pragma: no cover
    return sha256


sha256 = _sha256()
_bulk = []


def bulk_sha256():
    """A new sha256 for bulk data (files pushed, pulled, synced): OpenSSL's, several times faster
    than the builtin one (1.5 GB/s against 0.26 GB/s here: the builtin one would cap a push),
    loaded on the first file hash rather than at start, so an idle agent does not pay for it."""
    if not _bulk:
        try:
            from hashlib import sha256 as fast
        except ImportError:  # pragma: no cover - a Python without OpenSSL's hashlib
            fast = sha256
        _bulk.append(fast)
    return _bulk[0]()


try:
    from _operator import _compare_digest as compare_digest
except ImportError:  # pragma: no cover
    from hmac import compare_digest

__all__ = ["sha256", "bulk_sha256", "hmac_sha256", "compare_digest"]

_BLOCK = 64
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def hmac_sha256(key, msg):
    """HMAC-SHA256 (RFC 2104) of bytes ``msg`` under bytes ``key``, as hex."""
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = sha256(key.translate(_IPAD) + msg).digest()
    return sha256(key.translate(_OPAD) + inner).hexdigest()
