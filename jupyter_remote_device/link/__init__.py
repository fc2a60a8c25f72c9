"""The Jupyter side of the board link, used by ``server/`` and ``kernel/`` alike (never sent to a board).

* ``dial``: the network policy (allowed_networks, connect_timeout, tokens), TCP, the agent's
  greeting and token handshake, TLS, and ``dial()`` for whatever answers (agent or classic);
* ``probe``: what answers on host:port;
* ``classic``: a stock rpyc classic server driven with the agent's own code sent over;
* ``bundle``: the agent's sources as sent to a board (classic, SSH);
* ``saved``: the saved boards file (``devices.json``) and ``device_id_for``;
* ``checks``: what every answer from a board must pass (plain values, sizes, safe unboxing);
* ``errors``: ``LinkError`` (a contract reason + a message) and the classification of board errors.

It imports, of this package, only ``agent/``'s shared wire definitions (``agent/wire.py``,
``agent/auth.py``'s handshake helpers, the agent's version).
"""
from .checks import guard, json_text, plain
from .dial import Policy, connect, dial
from .errors import ConnectError, ConnectionLost, LinkError, RemoteBaseException, board_error
from .probe import probe

__all__ = ["ConnectError", "ConnectionLost", "LinkError", "Policy", "RemoteBaseException", "board_error",
           "connect", "dial", "guard", "json_text", "plain", "probe"]
