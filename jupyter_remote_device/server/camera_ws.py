"""WS ``devices/{id}/camera``: one camera viewer per socket (the flow control lives in viewer.py).

Query: ``width``, ``height``, ``quality``, ``fps`` (DESIGN.md), ``camera`` (id, default
``0``), ``ack=1`` (the client acknowledges drawn frames), ``window`` (frames
unacknowledged at most, default 2), ``adaptive=1`` (lower quality, then size, to fit the
link).  Text messages from the client: ``ack``, ``settings``, ``pause``, ``resume``.
"""
import asyncio

from jupyter_server.auth.decorator import authorized, ws_authenticated

from .errors import ApiError, bad_request
from .handlers import _int_arg, _SocketBase

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def _bool_arg(handler, name, default=False):
    raw = handler.get_argument(name, None)
    if raw is None:
        return default
    v = raw.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise bad_request("%s must be 1 or 0" % name)


class CameraHandler(_SocketBase):
    viewer = None
    pump = None

    @ws_authenticated
    @authorized
    async def get(self, device_id):
        self.manager.get(device_id)  # unknown ids fail before the upgrade (404)
        res = super().get(device_id)
        if res is not None:
            await res

    async def open(self, device_id):
        try:
            settings = {
                "width": _int_arg(self, "width", 640, 16, 8192),
                "height": _int_arg(self, "height", 480, 16, 8192),
                "quality": _int_arg(self, "quality", 80, 1, 100),
                "fps": _int_arg(self, "fps", 0, 0, 240),
            }
            options = {"ack": _bool_arg(self, "ack"), "adaptive": _bool_arg(self, "adaptive"),
                       "window": _int_arg(self, "window", 2, 1, 32)}
            camera_id = self.get_argument("camera", "0")
            sess = self.manager.require_session(device_id)
            if sess.camera is None:
                raise ApiError(409, "no-camera", "Camera streaming is not available for %s" % sess.name)
            self.viewer = await sess.camera.add_viewer(camera_id, settings, **options)
        except ApiError as e:
            self.send_json({"type": "status", "state": "error", "reason": e.reason, "message": e.message})
            self.close(4000 + (e.status if e.status < 1000 else 0), e.reason)
            return
        if self.ws_connection is None:  # closed while we were opening
            self.viewer.close()
            return
        self.pump = asyncio.ensure_future(self._run_pump())

    async def _run_pump(self):
        try:
            await self.viewer.pump(self)
        except Exception:
            self.log.exception("remote-device: camera pump failed")
        finally:
            if self.ws_connection is not None:
                self.close()

    def on_message(self, message):
        if self.viewer is not None and isinstance(message, str):
            asyncio.ensure_future(self.viewer.on_client_message(message))

    def on_pong(self, data):
        if self.viewer is not None:
            self.viewer.on_pong(data)

    def on_close(self):
        if self.viewer is not None:
            self.viewer.close()
