"""DeviceManager: the one owner of devices, sessions and their configuration."""
import asyncio
import ipaddress
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

from jupyter_core.paths import jupyter_data_dir
from traitlets import Bool, Float, Int, Unicode, default
from traitlets.config import LoggingConfigurable

from ..link import LinkError, Policy, dial, probe, saved
from ..link.saved import device_id_for  # noqa: F401 (the id of a board: server and kernel agree)
from .config import LooseDict, LooseList
from .errors import ApiError, api_error, bad_request, not_found
from .session import DeviceSession

SOURCES = ("config", "manual", "probe", "mdns", "ssh")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$")


def normalize_host(host):
    """Validate a host name or IP literal (``[::1]`` allowed); raise ApiError 400."""
    if not isinstance(host, str):
        raise bad_request("host must be a string")
    h = host.strip()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if not h or len(h) > 253:
        raise bad_request("host must be a name or an IP address (1–253 characters)")
    try:
        return str(ipaddress.ip_address(h))
    except ValueError:
        pass
    if not HOSTNAME_RE.match(h):
        raise bad_request("%r is not a valid host name or IP address" % host[:80])
    if re.match(r"^(0x[0-9a-f]+|[0-9.]+)$", h, re.I):
        # numbers that are no IP literal (999.1.1.1, 1.2.3.4.5, 2130706433, 0x7f000001): resolvers
        # read some as addresses, others fail; refuse them all rather than guess
        raise bad_request("%r is not a valid IP address" % host[:80])
    return h.lower()


def validate_port(port):
    if isinstance(port, bool) or not isinstance(port, int):
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        else:
            raise bad_request("port must be an integer between 1 and 65535")
    if not 1 <= port <= 65535:
        raise bad_request("port must be between 1 and 65535")
    return port


class Device:
    """A board the server knows. ``to_dict`` is the contract's Device."""

    def __init__(self, host, port, name=None, token=None, source="manual", tls=False, ssh=None, fingerprint=None):
        self.host = host
        self.fingerprint = fingerprint  # the board's TLS certificate, pinned on first use
        self.ssh = ssh  # {"user", "host", "port", "key", "agent_port"?} for boards reached over SSH (ssh.py)
        self.port = port
        self.id = device_id_for(host, port)
        self.name = name or "%s:%d" % (host, port)
        self.token = token
        self.source = source
        self.tls = tls
        self.status = "offline"
        self.kind = None
        self.info = None
        self.error = None
        self.last_seen = None
        self.camera_parked = []  # camera viewers waiting for this board's session to come back (stream.py)

    def to_dict(self):
        return {"id": self.id, "name": self.name, "host": self.host, "port": self.port,
                "source": self.source, "status": self.status, "kind": self.kind, "info": self.info,
                "error": self.error, "tls": self.tls, "has_token": bool(self.token),
                "fingerprint": self.fingerprint,
                "last_seen": self.last_seen,
                "ssh": {k: self.ssh.get(k) for k in ("user", "host", "port", "key")} if self.ssh else None}

    def to_saved(self):
        return {"id": self.id, "name": self.name, "host": self.host, "port": self.port,
                "token": self.token, "source": self.source, "tls": self.tls, "ssh": self.ssh,
                "fingerprint": self.fingerprint}


class DeviceManager(LoggingConfigurable):
    configured_devices = LooseList(
        help="""Boards always listed: a list of {"host", "port", "name"?, "token"?, "tls"?} objects
        or "host:port" strings.""").tag(config=True)
    probe_hosts = LooseList(help="Hosts or small CIDR ranges (at most /22) probed in the background "
                            "for agents and rpyc classic servers. Nothing is probed unless listed.").tag(config=True)
    probe_ports = LooseList(Int(), default_value=[18861, 18812],
                            help="Ports probed on probe_hosts.").tag(config=True)
    probe_interval = Float(15.0, help="Seconds between background reachability probes.").tag(config=True)
    tokens = LooseDict(help='Tokens by "host:port" (or "host" for any port).').tag(config=True)
    mdns = Bool(True, help="Browse mDNS/DNS-SD for _jupyter-device._tcp boards (needs zeroconf).").tag(config=True)
    allowed_networks = LooseList(
        default_value=["0.0.0.0/0", "::/0"],
        help="""CIDRs this server may dial. On a shared deployment narrow it (e.g. to the boards'
        subnet): a server that dials any address a user names is a door into the internal network."""
    ).tag(config=True)
    connect_timeout = Float(5.0, help="Seconds to wait when opening a board connection.").tag(config=True)
    heartbeat_interval = Float(3.0, help="Seconds between heartbeats (which also refresh info).").tag(config=True)
    heartbeat_timeout = Float(4.0, help="A heartbeat unanswered this long marks the connection lost.").tag(config=True)
    max_calls_per_device = Int(8, help="Calls one board may have running at once in the server's worker pool "
                               "(the heartbeat apart): a slow board cannot starve the others.").tag(config=True)
    reconnect_max_delay = Float(10.0, help="Cap of the reconnect backoff, in seconds.").tag(config=True)
    max_body_size = Int(1 << 20, help="Largest JSON request body, in bytes.").tag(config=True)
    devices_file = Unicode(help="Where manually added boards are saved (mode 0600).").tag(config=True)
    ssh_known_hosts = Unicode("", help="known_hosts file for boards reached over SSH (default: ~/.ssh/known_hosts). "
                              "Host keys are always checked.").tag(config=True)
    ssh_python = Unicode("python3", help="Python command that runs the agent on boards reached over SSH."
                         ).tag(config=True)
    ssh_timeout = Float(60.0, help="Seconds allowed to SSH in and, if needed, copy and start the agent."
                        ).tag(config=True)
    user_name = Unicode(help="Who this server is, as shown to other users of a shared board "
                        "(default: $JUPYTERHUB_USER or $USER).").tag(config=True)

    @default("user_name")
    def _user_name_default(self):
        import getpass

        try:
            fallback = getpass.getuser()
        except Exception:
            fallback = "unknown"
        return os.environ.get("JUPYTERHUB_USER") or os.environ.get("USER") or fallback

    @default("devices_file")
    def _devices_file_default(self):
        return os.path.join(jupyter_data_dir(), "remote_device", "devices.json")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.devices = {}
        self.sessions = {}
        self._listeners = set()
        self._tasks = []
        self.pool = ThreadPoolExecutor(max_workers=48, thread_name_prefix="jrd")
        self._policy = (None, None)
        self.transfers = None
        self._load()
        for entry in self.configured_devices:
            try:
                self._add_config_entry(entry)
            except ApiError as e:
                self.log.error("remote-device: ignoring configured device %r: %s", entry, e.message)
        if self.configured_devices:
            try:
                self.save()
            except OSError as e:
                self.log.error("remote-device: cannot write %s: %s", self.devices_file, e)

    # -- configuration -------------------------------------------------------
    @property
    def policy(self):
        """The link's Policy from this manager's settings (rebuilt when they change)."""
        key = (tuple(self.allowed_networks), self.connect_timeout, tuple(sorted(self.tokens.items())),
               self.user_name)
        if self._policy[0] != key:
            self._policy = (key, Policy(self.allowed_networks, self.connect_timeout, self.tokens,
                                        user=self.user_name, log=self.log))
        return self._policy[1]

    def _add_config_entry(self, entry):
        if isinstance(entry, str):
            host, _, port = entry.rpartition(":")
            entry = {"host": host or entry, "port": int(port) if port.isdigit() else 18861}
        if not isinstance(entry, dict):
            raise bad_request("a configured device is a {host, port} object or a host:port string")
        self.add_device(entry.get("host"), entry.get("port", 18861), name=entry.get("name"),
                        token=entry.get("token"), source="config", tls=bool(entry.get("tls", False)),
                        persist=False)

    def token_for(self, host, port):
        return self.policy.token_for(host, port)

    def is_allowed(self, ip):
        return self.policy.is_allowed(ip)

    # -- persistence ---------------------------------------------------------
    def _load(self):
        try:
            found = saved.load(self.devices_file, strict=True)
        except (OSError, ValueError) as e:
            self.log.error("remote-device: cannot read %s: %s", self.devices_file, e)
            return
        for d in found:
            if d.get("source") == "config":
                continue  # the configuration says which of these still exist
            try:
                dev, _ = self.add_device(d["host"], d["port"], name=d.get("name"), token=d.get("token"),
                                         source=d.get("source", "manual"), tls=bool(d.get("tls")), persist=False,
                                         ssh=d.get("ssh") if isinstance(d.get("ssh"), dict) else None)
                if isinstance(d.get("fingerprint"), str):
                    dev.fingerprint = d["fingerprint"]
            except (KeyError, ApiError) as e:
                self.log.error("remote-device: skipping a saved device: %s", e)

    def save(self):
        """Write the boards a kernel's ``%connect NAME`` can find: manual and SSH boards (restored at
        the next start) and configured ones (listed for kernels; the configuration restores them)."""
        saved.save([d.to_saved() for d in self.devices.values() if d.source in ("manual", "ssh", "config")],
                   self.devices_file)

    # -- events --------------------------------------------------------------
    def add_listener(self, fn):
        self._listeners.add(fn)

    def remove_listener(self, fn):
        self._listeners.discard(fn)

    def emit(self, message):
        for fn in list(self._listeners):
            try:
                fn(message)
            except Exception:
                self.log.exception("remote-device: event listener failed")

    def changed(self, device):
        self.emit({"type": "device", "device": device.to_dict()})

    # -- devices -------------------------------------------------------------
    def list(self):
        return [d.to_dict() for d in self.devices.values()]

    def get(self, device_id):
        if not isinstance(device_id, str) or device_id not in self.devices:
            raise not_found("No device with id %r" % str(device_id)[:80])
        return self.devices[device_id]

    def add_device(self, host, port, name=None, token=None, source="manual", tls=False, persist=True, ssh=None):
        """Returns (device, created). Known host:port: update name/token, keep the id."""
        host = normalize_host(host)
        port = validate_port(port)
        if name is not None and (not isinstance(name, str) or len(name) > 100):
            raise bad_request("name must be a string of at most 100 characters")
        if token is not None and (not isinstance(token, str) or len(token) > 1024):
            raise bad_request("token must be a string")
        if source not in SOURCES:
            raise bad_request("unknown source")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None and not self.is_allowed(ip):
            raise ApiError(403, "not-allowed", "%s is outside the networks this server may dial "
                           "(DeviceManager.allowed_networks)" % host)
        did = device_id_for(host, port)
        token = token or None
        if did in self.devices:
            dev = self.devices[did]
            if name:
                dev.name = name.strip() or dev.name
            token_changed = token is not None and token != dev.token
            if token is not None:
                dev.token = token
            if source == "manual" and dev.source not in ("config",):
                dev.source = "manual"
            if ssh is not None:
                dev.ssh, dev.source = dict(dev.ssh or {}, **ssh), "ssh"
            if token_changed and did in self.sessions:
                self._spawn(self.close_session(did))
            if persist:
                self.save()
            self.changed(dev)
            return dev, False
        dev = Device(host, port, name=(name or "").strip() or None,
                     token=token or self.token_for(host, port), source=source, tls=tls, ssh=ssh)
        self.devices[did] = dev
        if persist and source in ("manual", "ssh"):
            self.save()
        self.changed(dev)
        self._spawn(self.refresh_status(dev))
        return dev, True

    def found(self, host, port, kind, source, name=None):
        """Discovery found a board (``kind`` "agent" | "classic"): list it as ``source``, not saved.
        Returns (device, created); a device already listed is left as it is."""
        dev, created = self.add_device(host, port, name=name, source=source, persist=False)
        if created:
            dev.kind = kind
            if dev.id not in self.sessions:
                dev.status = "online"
            self.changed(dev)
        return dev, created

    def lost(self, device_id, why):
        """Discovery lost sight of a board (mDNS goodbye): offline unless a session holds it."""
        dev = self.devices.get(device_id)
        if dev is not None and dev.id not in self.sessions and dev.status != "offline":
            dev.status, dev.error = "offline", why
            self.changed(dev)

    async def remove_device(self, device_id):
        dev = self.get(device_id)
        if self.transfers is not None:
            self.transfers.cancel_device(device_id)
        await self.close_session(device_id)
        self.devices.pop(device_id, None)
        if dev.ssh:
            from .ssh import links
            await links(self).close(device_id)
        if dev.source in ("manual", "ssh"):
            self.save()
        self.emit({"type": "removed", "id": device_id})

    # -- dialing -------------------------------------------------------------
    def resolve_allowed(self, host, port):
        """BLOCKING: the first address of host that allowed_networks permits (or ApiError)."""
        try:
            return self.policy.resolve(host, port)
        except LinkError as e:
            raise api_error(e)

    def dial(self, device, timeout=None):
        """BLOCKING: a new authenticated connection to the device's agent (or classic board)."""
        if device.ssh:  # through the SSH tunnel to the board's loopback (ssh.py)
            from .ssh import links
            conn = links(self).connect_blocking(device, timeout or self.connect_timeout)
            self._pin(device, conn)
            return conn

        def found(kind):
            device.kind = kind

        try:
            conn = dial(device.host, device.port, self.policy, kind=device.kind, token=device.token,
                        tls=device.tls, timeout=timeout, on_kind=found, fingerprint=device.fingerprint)
        except LinkError as e:
            raise api_error(e)
        self._pin(device, conn)
        return conn

    def _pin(self, device, conn):
        """Trust on first use: remember the certificate a board showed the first time (saved)."""
        seen = (getattr(conn, "_jrd_hello", None) or {}).get("fingerprint")
        if seen and not device.fingerprint:
            device.fingerprint = seen
            self.log.info("remote-device %s: pinned its TLS certificate %s", device.name, seen)
            if device.source in ("manual", "ssh", "config"):
                try:
                    self.save()
                except OSError as e:
                    self.log.error("remote-device: cannot write %s: %s", self.devices_file, e)

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def run_with_timeout(self, fn, *args, timeout=None):
        """run() bounded by connect_timeout (+ slack): name lookups cannot hang a request."""
        limit = (timeout or self.connect_timeout) + 1.0
        try:
            return await asyncio.wait_for(self.run(fn, *args), limit)
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", "No answer within %g s" % limit)

    async def refresh_status(self, dev):
        """Probe a device without a session: online / offline and what it is."""
        if dev.id in self.sessions:
            return
        t = min(2.0, self.connect_timeout)
        if dev.ssh:
            from .ssh import ssh_status
            status, error = await ssh_status(self, dev)
            if dev.id not in self.sessions and (status, error) != (dev.status, dev.error) and dev.status != "error":
                dev.status, dev.error = status, error
                self.changed(dev)
            return

        def look():
            return probe(self.resolve_allowed(dev.host, dev.port), dev.port, timeout=t)

        try:
            found = await self.run_with_timeout(look, timeout=t)
            status, kind, error = "online", found.get("kind"), None
            if kind is None:
                error = "something answers on this port, but it is not an agent"
        except LinkError as e:
            status, kind, error = "offline", dev.kind, e.message
        except ApiError as e:
            status, kind, error = "offline", dev.kind, e.message
        if dev.id in self.sessions or dev.id not in self.devices:
            return
        if status == "online":
            dev.last_seen = time.time()
        if (status, kind) != (dev.status, dev.kind) or (dev.status == "error") or error != dev.error:
            if dev.status == "error" and status == "online":
                error = dev.error  # keep the last connect error visible until the next attempt
                status = "error"
            dev.status, dev.kind, dev.error = status, kind, error
            self.changed(dev)

    async def _status_loop(self):
        while True:
            await asyncio.sleep(self.probe_interval)
            for dev in list(self.devices.values()):
                if dev.id not in self.sessions:
                    await self.refresh_status(dev)

    # -- sessions ------------------------------------------------------------
    async def open_session(self, device_id, token=None, take_over=False, accept_certificate=False):
        """Open (or return) the device's session. ``accept_certificate`` forgets the pinned TLS
        certificate first, so the one the board shows now is pinned (after a cert-changed)."""
        dev = self.get(device_id)
        if accept_certificate and dev.fingerprint:
            self.log.warning("remote-device %s: forgetting its pinned certificate %s (accepted by the user)",
                             dev.name, dev.fingerprint)
            dev.fingerprint = None
            await self.close_session(device_id)
        if token is not None:
            if not isinstance(token, str) or len(token) > 1024:
                raise bad_request("token must be a string")
            if token != dev.token:
                dev.token = token or None
                await self.close_session(device_id)
                if dev.source in ("manual", "ssh"):
                    self.save()
        sess = self.sessions.get(device_id)
        if sess is not None and not sess.closed:
            return sess
        sess = DeviceSession(self, dev)
        self.sessions[device_id] = sess
        dev.status, dev.error = "connecting", None
        self.changed(dev)
        try:
            if dev.ssh:  # SSH in, find or start the agent, open the tunnel (its own, longer timeout)
                from .ssh import links
                await links(self).prepare(dev)
            await sess.open(take_over=take_over)
        except ApiError as e:
            if self.sessions.get(device_id) is sess:
                del self.sessions[device_id]
            sess.closed = True
            dev.status, dev.error = "error", e.message
            self.changed(dev)
            raise
        return sess

    async def close_session(self, device_id):
        sess = self.sessions.pop(device_id, None)
        if sess is None:
            return
        await sess.close()
        dev = self.devices.get(device_id)
        if dev is not None:
            dev.status, dev.error = "online", None
            self.changed(dev)
            self._spawn(self.refresh_status(dev))

    async def session_ended(self, sess, why, status="error"):
        """A session ended on the board's side (taken over, agent stopped): drop it, show why,
        keep the device."""
        if self.sessions.get(sess.device_id) is sess:
            del self.sessions[sess.device_id]
        await sess.close()
        dev = self.devices.get(sess.device_id)
        if dev is not None:
            dev.status, dev.error = status, why
            self.changed(dev)

    def require_session(self, device_id):
        dev = self.get(device_id)
        sess = self.sessions.get(device_id)
        if sess is None or sess.closed:
            raise ApiError(409, "not-connected", "%s is not connected: open a session first "
                           "(POST devices/%s/session)" % (dev.name, dev.id))
        if sess.conn is None:
            raise ApiError(409, "not-connected", "%s is reconnecting: %s" % (dev.name, dev.error or ""))
        return sess

    # -- lifecycle -----------------------------------------------------------
    def _spawn(self, coro):
        if getattr(self, "_closing", False):
            coro.close()
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()
            return None
        task = loop.create_task(coro)
        self._tasks.append(task)
        self._tasks = [t for t in self._tasks if not t.done()]
        return task

    def start(self):
        """Background work (status probes, discovery); call once the loop runs."""
        for dev in list(self.devices.values()):
            self._spawn(self.refresh_status(dev))
        self._spawn(self._status_loop())
        try:
            from .discovery import Discovery
        except ImportError:
            return
        self.discovery = Discovery(self)
        self._spawn(self.discovery.run())

    async def shutdown(self):
        self._closing = True  # no new background work from here on (see _spawn)
        if getattr(self, "recordings", None) is not None:
            await self.recordings.shutdown()  # complete their files before the sessions go
        for did in list(self.sessions):
            try:
                await self.close_session(did)
            except Exception:
                pass
        if getattr(self, "_ssh_links", None) is not None:
            await self._ssh_links.shutdown()
        if self.transfers is not None:
            await self.run(self.transfers.shutdown)
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        self.pool.shutdown(wait=False)
