"""The bridge's pipe format: length-prefixed messages of JSON plus raw byte strings. Stdlib only.

Both ends import this module: the Jupyter side (``link/bridge/__init__.py``) and the bridge
process (``child.py``, which runs with nothing but the standard library and the rpyc wheel on its
path). Only plain values cross the pipes; nothing is ever unpickled or evaluated.

A message is ``!I`` total length, then ``!II`` (JSON length, number of byte strings), the JSON
text, and each byte string as ``!I`` length + bytes. In the JSON, a value is a JSON scalar, a
list, an object whose keys do not start with ``$`` (a dict), or one of the tagged objects
``{"$b": i}`` (the i-th byte string), ``{"$t": [...]}`` (a tuple), ``{"$fs": [...]}`` (a
frozenset), ``{"$r": "text"}`` (anything else, as its repr: it becomes a str).
"""
import json
import struct

LENGTH = struct.Struct("!I")
HEAD = struct.Struct("!II")
MAX_MESSAGE = (64 << 20) + (1 << 20)   # a frame's worth of data (agent.wire.MAX_FRAME) plus room
MAX_JSON = 16 << 20
MAX_DEPTH = 32


class FramingError(ValueError):
    """The other end sent something that is not a well-formed message."""


def _enc(value, blobs, depth):
    if depth > MAX_DEPTH:
        raise FramingError("value nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        blobs.append(bytes(value))
        return {"$b": len(blobs) - 1}
    if isinstance(value, tuple):
        return {"$t": [_enc(v, blobs, depth + 1) for v in value]}
    if isinstance(value, list):
        return [_enc(v, blobs, depth + 1) for v in value]
    if isinstance(value, frozenset):
        return {"$fs": [_enc(v, blobs, depth + 1) for v in value]}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or k.startswith("$"):
                raise FramingError("dict keys must be str not starting with $")
            out[k] = _enc(v, blobs, depth + 1)
        return out
    return {"$r": repr(value)[:1000]}


def encode(message):
    """``message`` (plain values) -> the bytes of one message."""
    blobs = []
    text = json.dumps(_enc(message, blobs, 0), separators=(",", ":"), allow_nan=True).encode("utf-8")
    parts = [HEAD.pack(len(text), len(blobs)), text]
    for b in blobs:
        parts.append(LENGTH.pack(len(b)))
        parts.append(b)
    body = b"".join(parts)
    if len(body) > MAX_MESSAGE:
        raise FramingError("message of %d bytes is over the limit (%d)" % (len(body), MAX_MESSAGE))
    return LENGTH.pack(len(body)) + body


def _dec(value, blobs, depth):
    if depth > MAX_DEPTH:
        raise FramingError("value nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_dec(v, blobs, depth + 1) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (k, v), = value.items()
            if k == "$b":
                if type(v) is not int or not 0 <= v < len(blobs):
                    raise FramingError("bad byte-string reference")
                return blobs[v]
            if k == "$t" and isinstance(v, list):
                return tuple(_dec(x, blobs, depth + 1) for x in v)
            if k == "$fs" and isinstance(v, list):
                try:
                    return frozenset(_dec(x, blobs, depth + 1) for x in v)
                except TypeError:
                    raise FramingError("unhashable frozenset member")
            if k == "$r" and isinstance(v, str):
                return v
        out = {}
        for k, v in value.items():
            if k.startswith("$"):
                raise FramingError("unknown tag %r" % k[:20])
            out[k] = _dec(v, blobs, depth + 1)
        return out
    raise FramingError("unexpected JSON value")


def decode(body):
    """The bytes of one message (without its length prefix) -> plain values."""
    if len(body) < HEAD.size:
        raise FramingError("short message")
    jlen, nblobs = HEAD.unpack_from(body, 0)
    if jlen > MAX_JSON or nblobs > 4096:
        raise FramingError("message header out of bounds")
    pos = HEAD.size
    text = body[pos:pos + jlen]
    if len(text) != jlen:
        raise FramingError("truncated message")
    pos += jlen
    blobs = []
    for _ in range(nblobs):
        if pos + LENGTH.size > len(body):
            raise FramingError("truncated message")
        n, = LENGTH.unpack_from(body, pos)
        pos += LENGTH.size
        if pos + n > len(body):
            raise FramingError("truncated message")
        blobs.append(bytes(body[pos:pos + n]))
        pos += n
    if pos != len(body):
        raise FramingError("trailing bytes in message")
    try:
        value = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError):
        raise FramingError("message JSON is malformed")
    return _dec(value, blobs, 0)


def _read_exact(f, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            raise EOFError("the pipe closed")
        buf += chunk
    return bytes(buf)


def read_message(f):
    """Read one message from a binary file object; EOFError at end of stream."""
    n, = LENGTH.unpack(_read_exact(f, LENGTH.size))
    if n > MAX_MESSAGE:
        raise FramingError("message of %d bytes announced (limit %d)" % (n, MAX_MESSAGE))
    return decode(_read_exact(f, n))
