"""The REST and WebSocket API (one handler class per endpoint) and setup_handlers().

Every REST method is ``@tornado.web.authenticated`` then ``@authorized`` (resource
``remote-device``); WebSockets use ``WebSocketMixin`` + ``@ws_authenticated`` +
``@authorized``. Errors are ``{"message", "reason"}`` with the contract's status.
"""
import asyncio
import json
import sys
import traceback

import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import url_path_join
from tornado import websocket

from .. import __version__
from .errors import ApiError, bad_request
from .manager import DeviceManager

AUTH_RESOURCE = "remote-device"
NAMESPACE = "jupyter-remote-device"
ID = r"(?P<device_id>[^/]+)"
PUT_MAX_BODY = 64 << 30


def _int_arg(handler, name, default, lo, hi):
    raw = handler.get_argument(name, None)
    if raw is None or raw == "":
        return default
    try:
        value = int(float(raw))
    except (ValueError, OverflowError):  # "abc", "nan", "inf", "1e999"
        raise bad_request("%s must be a finite number, got %r" % (name, raw[:40]))
    if not lo <= value <= hi:
        raise bad_request("%s must be between %s and %s" % (name, lo, hi))
    return value


class BaseHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def manager(self) -> DeviceManager:
        return self.settings["jrd_manager"]

    @property
    def transfers(self):
        t = self.manager.transfers
        if t is None:
            raise ApiError(501, "not-available", "File transfers are not available on this server")
        return t

    def body_json(self, required=True):
        body = self.request.body or b""
        if len(body) > self.manager.max_body_size:
            raise ApiError(413, "too-large", "The request body is larger than %d bytes" % self.manager.max_body_size)
        if not body.strip():
            if required:
                raise bad_request("A JSON object is required in the request body")
            return {}
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise bad_request("The request body is not valid JSON: %s" % e)
        except RecursionError:
            raise bad_request("The request body is not valid JSON: nested too deeply")
        if not isinstance(data, dict):
            raise bad_request("The request body must be a JSON object")
        return data

    def source_dest(self, body, source_kind, dest_kind):
        """``body["source"]`` and ``body.get("dest", "")`` of a push or pull, both strings (400 otherwise)."""
        source, dest = body.get("source"), body.get("dest", "")
        if not isinstance(source, str) or not isinstance(dest, str):
            raise bad_request('expected {"source": %s, "dest": %s}' % (source_kind, dest_kind))
        return source, dest

    def device_path_arg(self, name="path", default=""):
        # the raw value: get_argument() turns control characters (NUL too) into spaces and strips
        # blanks, which would silently name another file
        values = self.request.arguments.get(name)
        if not values:
            return default
        try:
            raw = values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("%s is not valid UTF-8" % name)
        if "\x00" in raw:
            raise bad_request("%s contains a NUL character: no file name can" % name)
        if len(raw) > 4096:
            raise bad_request("%s is not a valid path (longer than 4096 characters)" % name)
        return raw

    def reply(self, obj, status=200):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(obj))

    def _handle_request_exception(self, e):
        if isinstance(e, ApiError):
            if self._finished:
                return
            self.log.info("remote-device: %s %s -> %d %s: %s", self.request.method, self.request.path,
                          e.status, e.reason, e.message)
            self.send_error(e.status, exc_info=sys.exc_info())
            return
        super()._handle_request_exception(e)

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(exc.to_dict()))
            return
        if exc is not None and not isinstance(exc, tornado.web.HTTPError):
            self.log.error("remote-device: unexpected error\n%s",
                           "".join(traceback.format_exception(*kwargs["exc_info"])))
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": "Internal error: %s: %s" % (type(exc).__name__, exc),
                                    "reason": "internal"}))
            return
        super().write_error(status_code, **kwargs)


class VersionHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    def get(self):
        self.reply({"version": __version__})


class DevicesHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    def get(self):
        self.reply({"devices": self.manager.list()})

    @tornado.web.authenticated
    @authorized
    def post(self):
        body = self.body_json()
        if "ssh" in body:  # {"ssh": "user@host[:port]", "key"?, "name"?}: reached over SSH (ssh.py)
            from .ssh import add_ssh_device
            dev, created = add_ssh_device(self.manager, body)
            self.reply(dev.to_dict(), 201 if created else 200)
            return
        if "host" not in body:
            raise bad_request("host is required")
        dev, created = self.manager.add_device(body.get("host"), body.get("port", 18861), name=body.get("name"),
                                               token=body.get("token"), source="manual",
                                               tls=bool(body.get("tls", False)))
        self.reply(dev.to_dict(), 201 if created else 200)


class DeviceHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    def get(self, device_id):
        self.reply(self.manager.get(device_id).to_dict())

    @tornado.web.authenticated
    @authorized
    async def delete(self, device_id):
        await self.manager.remove_device(device_id)
        self.set_status(204)
        self.finish()


class SessionHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, device_id):
        body = self.body_json(required=False)
        flags = {}
        for flag in ("take_over", "accept_certificate"):
            flags[flag] = body.get(flag, False)
            if not isinstance(flags[flag], bool):
                raise bad_request("%s must be true or false" % flag)
        await self.manager.open_session(device_id, token=body.get("token"), **flags)
        self.reply(self.manager.get(device_id).to_dict())

    @tornado.web.authenticated
    @authorized
    async def delete(self, device_id):
        self.manager.get(device_id)
        await self.manager.close_session(device_id)
        self.set_status(204)
        self.finish()


class ExecHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, device_id):
        body = self.body_json()
        code = body.get("code")
        if not isinstance(code, str):
            raise bad_request("code must be a string")
        timeout = body.get("timeout", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
            raise bad_request("timeout must be a number of seconds between 0 and 3600")
        sess = self.manager.require_session(device_id)
        self.reply(await sess.exec(code, float(timeout)))


class FilesHandler(BaseHandler):
    """List (GET), make a folder (POST {"path", "type": "directory"}), rename (PATCH), delete (DELETE)."""

    @tornado.web.authenticated
    @authorized
    async def get(self, device_id):
        sess = self.manager.require_session(device_id)
        self.reply(await sess.call_json("fs_list", self.device_path_arg()))

    @tornado.web.authenticated
    @authorized
    async def post(self, device_id):
        body = self.body_json()
        path = body.get("path")
        if not isinstance(path, str) or body.get("type", "directory") != "directory":
            raise bad_request('expected {"path": "...", "type": "directory"}')
        sess = self.manager.require_session(device_id)
        self.reply(await sess.call_json("fs_mkdir", path, True), 201)

    @tornado.web.authenticated
    @authorized
    async def patch(self, device_id):
        body = self.body_json()
        src, dst = self.device_path_arg(), body.get("path")
        if not isinstance(dst, str) or not src:
            raise bad_request('rename: PATCH files?path=OLD with {"path": "NEW"}')
        sess = self.manager.require_session(device_id)
        self.reply(await sess.call_json("fs_rename", src, dst))

    @tornado.web.authenticated
    @authorized
    async def delete(self, device_id):
        path = self.device_path_arg()
        if path.strip("/. ") == "":
            raise bad_request("refusing to delete the device root")
        recursive = self.get_argument("recursive", "false").lower() in ("1", "true", "yes")
        sess = self.manager.require_session(device_id)
        await sess.call("fs_delete", path, recursive)
        self.set_status(204)
        self.finish()


@tornado.web.stream_request_body
class FileContentHandler(BaseHandler):
    """GET streams a device file out; PUT streams the request body onto the board."""

    upload = None

    async def prepare(self):
        await ensure_async(super().prepare())
        if self._finished or self.request.method != "PUT":
            return
        # the body streams in before put() runs: check everything now
        if not self.current_user:
            raise tornado.web.HTTPError(403)
        if not await ensure_async(self.authorizer.is_authorized(self, self.current_user, "write", AUTH_RESOURCE)):
            raise tornado.web.HTTPError(403, "User is not authorized to write on resource: %s." % AUTH_RESOURCE)
        self.request.connection.set_max_body_size(PUT_MAX_BODY)
        path = self.device_path_arg()
        if not path.strip("/. "):
            raise bad_request("path must name a file")
        device_id = self.path_kwargs["device_id"]
        sess = self.manager.require_session(device_id)
        from .transfer import Upload
        upload = Upload(sess, path)
        await upload.start()
        self.upload = upload

    async def data_received(self, chunk):
        if self.upload is not None:
            await self.upload.feed(chunk)

    def on_connection_close(self):
        self._abort_upload()
        super().on_connection_close()

    def on_finish(self):
        self._abort_upload()

    def _abort_upload(self):
        upload, self.upload = self.upload, None
        if upload is not None:
            asyncio.ensure_future(upload.abort())

    def _handle_request_exception(self, e):
        self._abort_upload()
        super()._handle_request_exception(e)

    @tornado.web.authenticated
    @authorized
    async def get(self, device_id):
        path = self.device_path_arg()
        sess = self.manager.require_session(device_id)
        st = await sess.call_json("fs_stat", path)
        if st.get("type") != "file":
            raise bad_request("%s is not a file" % path)
        from .transfer import download
        name = path.rstrip("/").rsplit("/", 1)[-1]
        self.set_header("Content-Type", "application/octet-stream")
        from urllib.parse import quote
        self.set_header("Content-Disposition", "attachment; filename*=UTF-8''%s" % quote(name))

        def on_stat(opened):
            # the length of what is streamed, from the stat the read itself is bounded by (the file
            # may have been replaced, e.g. saved by an editor, since the check above)
            self.set_header("Content-Length", str(int(opened.get("size") or 0)))

        await download(sess, path, self.write, self.flush, on_stat=on_stat)
        self.finish()

    @tornado.web.authenticated
    @authorized
    async def put(self, device_id):
        upload, self.upload = self.upload, None
        if upload is None:
            raise bad_request("no upload in progress")
        try:
            result = await upload.finish()
        except BaseException:
            await upload.abort()
            raise
        self.reply(result, 201)


class PushHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, device_id):
        body = self.body_json()
        source, dest = self.source_dest(body, "workspace path", "device path")
        for flag in ("sync", "delete"):
            if not isinstance(body.get(flag, False), bool):
                raise bad_request("%s must be true or false" % flag)
        sess = self.manager.require_session(device_id)
        job = self.transfers.start_push(sess, source, dest, sync=body.get("sync", False),
                                        delete=body.get("delete", False))
        self.reply(job, 202)


class JobsHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    def get(self):
        rec = getattr(self.manager, "recordings", None)
        self.reply({"jobs": self.transfers.jobs() + (rec.jobs() if rec is not None else [])})


class JobHandler(BaseHandler):
    def _recording(self, job_id):
        rec = getattr(self.manager, "recordings", None)
        return rec if rec is not None and rec.has(job_id) else None

    @tornado.web.authenticated
    @authorized
    def get(self, job_id):
        rec = self._recording(job_id)
        self.reply(rec.get(job_id) if rec is not None else self.transfers.get(job_id))

    @tornado.web.authenticated
    @authorized
    async def delete(self, job_id):
        rec = self._recording(job_id)
        if rec is not None:  # a recording ends "done" with a complete file (record.py)
            await rec.stop(job_id)
        else:
            self.transfers.cancel(job_id)
        self.set_status(204)
        self.finish()


class _SocketBase(WebSocketMixin, websocket.WebSocketHandler, JupyterHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def manager(self) -> DeviceManager:
        return self.settings["jrd_manager"]

    def send_json(self, obj):
        try:
            self.write_message(json.dumps(obj))
        except websocket.WebSocketClosedError:
            pass


class EventsHandler(_SocketBase):
    @ws_authenticated
    @authorized
    async def get(self, *args, **kwargs):
        res = super().get(*args, **kwargs)
        if res is not None:
            await res

    def open(self):
        self.manager.add_listener(self.send_json)
        self.send_json({"type": "devices", "devices": self.manager.list()})
        if self.manager.transfers is not None:
            for job in self.manager.transfers.jobs():
                if job.get("state") == "running":
                    self.send_json({"type": "job", "job": job})
        for job in getattr(self.manager, "recordings", None) and self.manager.recordings.jobs() or []:
            if job.get("state") == "running":
                self.send_json({"type": "job", "job": job})

    def on_message(self, message):
        pass  # nothing to say to us (yet)

    def on_close(self):
        self.manager.remove_listener(self.send_json)


def make_manager(server_app):
    """The DeviceManager (configured from the server's config) and its TransferManager."""
    manager = DeviceManager(parent=server_app, log=server_app.log)
    try:
        from .transfer import TransferManager

        manager.transfers = TransferManager(server_app.root_dir, manager.emit, server_app.log)
    except ImportError as e:
        server_app.log.warning("remote-device: file transfers unavailable: %s", e)
    from . import record
    record.setup(manager, server_app.root_dir, server_app.log)
    return manager


def setup_handlers(server_app, manager=None):
    """Register the routes; ``manager`` comes from the extension's initialize_settings (made here
    when absent). Background work starts once the loop runs."""
    from . import record
    from .camera_ws import CameraHandler
    from .pull import PullHandler  # pull.py builds on BaseHandler above

    web_app = server_app.web_app
    if manager is None:
        manager = make_manager(server_app)
    web_app.settings["jrd_manager"] = manager
    base = url_path_join(web_app.settings["base_url"], NAMESPACE)
    routes = [
        (r"/version", VersionHandler),
        (r"/devices", DevicesHandler),
        (r"/devices/%s" % ID, DeviceHandler),
        (r"/devices/%s/session" % ID, SessionHandler),
        (r"/devices/%s/exec" % ID, ExecHandler),
        (r"/devices/%s/files" % ID, FilesHandler),
        (r"/devices/%s/files/content" % ID, FileContentHandler),
        (r"/devices/%s/push" % ID, PushHandler),
        (r"/devices/%s/pull" % ID, PullHandler),
        (r"/devices/%s/camera" % ID, CameraHandler),
        (r"/devices/%s/recordings" % ID, record.recordings_handler()),
        (r"/jobs", JobsHandler),
        (r"/jobs/(?P<job_id>[^/]+)", JobHandler),
        (r"/events", EventsHandler),
    ]
    from . import boardlog, diagnose, packages, terminal
    routes += terminal.routes(ID) + boardlog.routes(ID) + diagnose.routes(ID) + packages.routes(ID)  # board ops
    web_app.add_handlers(".*$", [(base + pattern, handler) for pattern, handler in routes])
    from tornado.ioloop import IOLoop

    IOLoop.current().add_callback(manager.start)
    return manager
