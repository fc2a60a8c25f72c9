"""The agent's shared wire definitions, as the Jupyter side sees them (``agent/wire.py``)."""
from ..agent.wire import (  # noqa: F401
    CAMERA_MIME,
    IO_CHUNK,
    MAGIC,
    MAX_FRAME,
    NO_MDNS_ENV,
    PROTOCOL,
    REQUIREMENT_RE,
    RPYC_CONFIG,
    STOP_PREFIX,
    BoundedChannel,
    TunedSocketStream,
    looks_like_rpyc_frame,
    tune_socket,
)
