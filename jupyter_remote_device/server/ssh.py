"""Reach a board over SSH: a tunnel to its agent, deploying and starting the agent if needed.

A board added as ``{"ssh": "user@host[:port]", "key"?: path}`` (source ``"ssh"``)
is reached like this (``SshLinks.prepare``):

1. SSH to the board (asyncssh; a key file, or the default keys and the SSH agent).
   Host keys are checked against ``DeviceManager.ssh_known_hosts`` (default
   ``~/.ssh/known_hosts``); an unknown or changed key fails with reason
   ``host-key``. The SSH host must be inside ``allowed_networks``.
2. Find an agent bound to the board's loopback, in this order: the one we started
   before (port and token remembered in the saved device, or in
   ``~/.cache/jupyter-remote-device/agent-<version>/agent.json`` on the board), an
   agent the user runs on 18861 (its token read from
   ``~/.config/jupyter-remote-device/token`` on the board, or the device's token).
3. If none answers: copy the agent's sources over SFTP into
   ``~/.cache/jupyter-remote-device/agent-<version>/`` (skipped when already there)
   and start ``python3 -m jupyter_remote_device.agent --host 127.0.0.1 --port 0``
   with a fresh token (in a 0600 file, never on the command line), detached
   (``nohup``); its ``LISTENING`` line gives the port. Nothing else is installed:
   the board needs Python 3.8+ only. The copy carries the rpyc the Jupyter side speaks
   (``link/rpyc_bundle.py``), first on the agent's path: the board's own rpyc (MaixPy3
   images have 4.x/5.x, which cannot talk to rpyc 6) or none at all does not matter.
4. A local forward ``127.0.0.1:<ephemeral>`` -> board ``127.0.0.1:<agent port>``
   (direct-tcpip over the SSH connection). ``DeviceManager.dial`` then connects to
   it with the usual token handshake: the agent is never exposed on the board's
   network, and the token still guards the forwarded port on our loopback.

The SSH connection stays open while the device is listed (sessions, camera
streams and transfers each open their own connection through the tunnel).
"""
import asyncio
import json
import os
import posixpath
import re
import secrets
import shlex
import socket
import time

from ..link import LinkError, connect
from ..link.bundle import AGENT_VERSION, agent_files
from ..link.rpyc_bundle import rpyc_version as rpyc_files_version
from .errors import ApiError, api_error, bad_request

DEFAULT_SSH_PORT = 22
VERIFY_TTL = 5.0
AGENT_PORT = 18861
TARGET_RE = re.compile(r"^(?:(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]{0,63})@)?"
                       r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]{1,253})(?::(?P<port>\d{1,5}))?$")


def parse_target(text):
    """``user@host[:port]`` -> (user or None, host, port). Raises ApiError 400."""
    if not isinstance(text, str) or not text.strip() or len(text) > 400:
        raise bad_request('ssh must be a string "user@host[:port]"')
    m = TARGET_RE.match(text.strip())
    if not m:
        raise bad_request('%r is not "user@host[:port]"' % text[:80])
    host = m.group("host")
    if host.startswith("["):
        host = host[1:-1]
    port = int(m.group("port") or DEFAULT_SSH_PORT)
    if not 1 <= port <= 65535:
        raise bad_request("the SSH port must be between 1 and 65535")
    return m.group("user"), host, port


def check_key(path):
    if path is None:
        return None
    if not isinstance(path, str) or not path.strip() or len(path) > 4096:
        raise bad_request("key must be the path of a private key file on the Jupyter server")
    full = os.path.abspath(os.path.expanduser(path.strip()))
    if not os.path.isfile(full):
        raise bad_request("no key file at %s" % full)
    if not os.access(full, os.R_OK):
        raise bad_request("the key file %s is not readable by the Jupyter server" % full)
    return full


def add_ssh_device(manager, body):
    """POST devices with ``{"ssh": "user@host[:port]", "key"?, "name"?, "token"?}``."""
    try:
        import asyncssh  # noqa: F401
    except ImportError:
        raise ApiError(501, "not-supported", "Reaching boards over SSH needs asyncssh on the Jupyter server "
                       "(pip install asyncssh)")
    user, host, port = parse_target(body.get("ssh"))
    key = check_key(body.get("key"))
    if user is None:
        import getpass
        user = getpass.getuser()
    name = body.get("name")
    if name is None:
        name = "%s@%s" % (user, host)
    ssh = {"user": user, "host": host, "port": port, "key": key}
    return manager.add_device(host, port, name=name, token=body.get("token"), source="ssh", ssh=ssh)


def links(manager):
    """The manager's SshLinks (made on first use)."""
    lk = getattr(manager, "_ssh_links", None)
    if lk is None:
        lk = manager._ssh_links = SshLinks(manager)
    return lk


def _map_ssh_error(e, target):
    import asyncssh

    if isinstance(e, ApiError):
        return e
    if isinstance(e, asyncssh.HostKeyNotVerifiable):
        return ApiError(502, "host-key", "The SSH host key of %s is unknown or has changed (%s). If the board "
                        "was reinstalled, remove its old entry (ssh-keygen -R HOST); then connect once with "
                        "ssh to accept the new key, or point DeviceManager.ssh_known_hosts at a file that "
                        "has it." % (target, e.reason if hasattr(e, "reason") else e))
    if isinstance(e, asyncssh.PermissionDenied):
        return ApiError(502, "auth-failed", "%s refused the SSH login (%s): check the user name and the key "
                        "(or that your SSH agent holds it)" % (target, getattr(e, "reason", e)))
    if isinstance(e, (asyncssh.KeyImportError, asyncssh.KeyEncryptionError)):
        return ApiError(400, "bad-request", "Cannot use the SSH key: %s" % e)
    if isinstance(e, asyncssh.DisconnectError):
        return ApiError(502, "protocol", "SSH to %s failed: %s" % (target, getattr(e, "reason", e)))
    if isinstance(e, asyncssh.ChannelOpenError):
        return ApiError(502, "refused", "%s would not open a tunnel: %s" % (target, getattr(e, "reason", e)))
    if isinstance(e, LinkError):
        return api_error(e)
    if isinstance(e, asyncio.TimeoutError):
        return ApiError(504, "timeout", "SSH to %s did not finish in time" % target)
    if isinstance(e, ConnectionRefusedError):
        return ApiError(502, "refused", "Nothing listens for SSH on %s (connection refused)" % target)
    if isinstance(e, OSError):
        return ApiError(502, "unreachable", "Cannot reach %s: %s" % (target, e.strerror or e))
    return ApiError(502, "protocol", "SSH to %s failed: %s: %s" % (target, type(e).__name__, e))


class _Link:
    def __init__(self):
        self.conn = None
        self.listener = None
        self.listen_port = None
        self.agent_port = None
        self.home = None
        self.verified = None  # (agent_port, token, monotonic time) of the last good check
        self.lock = asyncio.Lock()


class SshLinks:
    def __init__(self, manager):
        self.manager = manager
        self.log = manager.log
        self.links = {}
        self.loop = None

    # -- entry points ------------------------------------------------------
    async def prepare(self, dev):
        """SSH in, find or start the agent, forward a local port to it. Returns the local port."""
        self.loop = asyncio.get_running_loop()
        link = self.links.setdefault(dev.id, _Link())
        ssh = dev.ssh
        target = "%s@%s:%d" % (ssh["user"], ssh["host"], ssh["port"])
        async with link.lock:
            try:
                return await asyncio.wait_for(self._prepare(dev, link, target), self.manager.ssh_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                err = _map_ssh_error(e, target)
                if err.reason in ("host-key", "auth-failed", "unreachable", "refused", "timeout"):
                    await self._drop(link)
                raise err

    def tunnel_port_blocking(self, dev, timeout):
        """From a worker thread (``dial``): prepare() on the server loop; the local port."""
        if self.loop is None or self.loop.is_closed():
            raise ApiError(409, "not-connected", "%s: the SSH tunnel is not open yet" % dev.name)
        fut = asyncio.run_coroutine_threadsafe(self.prepare(dev), self.loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise ApiError(504, "timeout", "SSH to %s did not finish within %g s" % (dev.host, timeout))
        except Exception as e:
            if isinstance(e, ApiError):
                raise
            if type(e).__name__ == "TimeoutError":
                fut.cancel()
                raise ApiError(504, "timeout", "SSH to %s did not finish within %g s" % (dev.host, timeout))
            raise

    def connect_blocking(self, dev, timeout):
        """BLOCKING (``DeviceManager.dial``): a new agent connection through the tunnel.

        When the agent checked a moment ago has gone, check again (restarting it if
        needed) and retry once.
        """
        m = self.manager
        for attempt in (0, 1):
            port = self.tunnel_port_blocking(dev, m.ssh_timeout)
            try:
                return connect("127.0.0.1", port, token=dev.token, timeout=timeout, user=m.user_name,
                               fingerprint=dev.fingerprint)
            except LinkError as e:
                link = self.links.get(dev.id)
                if attempt == 0 and link is not None and link.verified is not None:
                    link.verified = None
                    continue
                raise api_error(e)

    async def close(self, device_id):
        link = self.links.pop(device_id, None)
        if link is not None:
            await self._drop(link)

    async def shutdown(self):
        for did in list(self.links):
            await self.close(did)

    # -- the work ----------------------------------------------------------
    async def _drop(self, link):
        link.verified = None
        listener, link.listener, link.listen_port = link.listener, None, None
        conn, link.conn = link.conn, None
        if listener is not None:
            listener.close()
        if conn is not None:
            conn.close()
            try:
                await asyncio.wait_for(conn.wait_closed(), 2)
            except Exception:
                pass

    async def _connect(self, dev, link, target):
        import asyncssh

        m = self.manager
        ssh = dev.ssh
        ip = await m.run_with_timeout(m.resolve_allowed, ssh["host"], ssh["port"])

        def dial():
            return socket.create_connection((ip, ssh["port"]), timeout=m.connect_timeout)

        sock = await m.run_with_timeout(dial)
        sock.settimeout(None)
        known = m.ssh_known_hosts
        if known and not os.path.isfile(os.path.expanduser(known)):
            sock.close()
            raise ApiError(502, "host-key", "DeviceManager.ssh_known_hosts names %s, which does not exist: host "
                           "keys cannot be checked" % known)
        kwargs = {"username": ssh["user"], "known_hosts": os.path.expanduser(known) if known else (), "sock": sock,
                  "connect_timeout": m.connect_timeout}
        if ssh.get("key"):
            kwargs["client_keys"] = [ssh["key"]]
            kwargs["agent_path"] = None
        try:
            link.conn = await asyncssh.connect(ssh["host"], ssh["port"], **kwargs)
        except BaseException:
            sock.close()
            raise
        link.home = None

    async def _run(self, link, command, timeout=20.0, check=True):
        res = await asyncio.wait_for(link.conn.run(command, check=False), timeout)
        if check and res.exit_status != 0:
            raise ApiError(502, "protocol", "on the board, `%s` failed (exit %s): %s" % (
                command[:120], res.exit_status, (res.stderr or res.stdout or "").strip()[:500]))
        return res

    async def _home(self, link):
        if link.home is None:
            res = await self._run(link, 'printf "%s" "$HOME"')
            home = (res.stdout or "").strip()
            if not home.startswith("/"):
                raise ApiError(502, "protocol", "cannot tell the home folder of the SSH user on the board")
            link.home = home
        return link.home

    async def _forward(self, link, agent_port):
        if link.listener is not None and link.agent_port == agent_port:
            return link.listen_port
        if link.listener is not None:
            link.listener.close()
            link.listener = None
        link.listener = await link.conn.forward_local_port("127.0.0.1", 0, "127.0.0.1", int(agent_port))
        link.listen_port = link.listener.get_port()
        link.agent_port = agent_port
        return link.listen_port

    async def _try_agent(self, dev, link, agent_port, token):
        """Does an agent with this token answer on the board's 127.0.0.1:agent_port? (the tunnel port)"""
        if not agent_port or not token:
            return None
        port = await self._forward(link, agent_port)
        v = link.verified
        if v is not None and v[:2] == (agent_port, token) and time.monotonic() - v[2] < VERIFY_TTL:
            return port  # checked a moment ago (several connections open at once: camera, transfers)
        m = self.manager

        def check():
            conn = connect("127.0.0.1", port, token=token, timeout=min(5.0, m.connect_timeout))
            conn.close()

        try:
            await m.run_with_timeout(check, timeout=min(5.0, m.connect_timeout))
        except (LinkError, ApiError) as e:
            self.log.info("remote-device %s: no usable agent on the board's port %s (%s)", dev.name, agent_port,
                          getattr(e, "message", e))
            link.verified = None
            return None
        link.verified = (agent_port, token, time.monotonic())
        return port

    async def _prepare(self, dev, link, target):
        if link.conn is not None and link.conn.is_closed():
            await self._drop(link)
        if link.conn is None:
            await self._connect(dev, link, target)
        ssh = dev.ssh
        # 1. the agent we know about
        port = await self._try_agent(dev, link, ssh.get("agent_port"), dev.token)
        if port:
            return port
        home = await self._home(link)
        state_dir = posixpath.join(home, ".cache", "jupyter-remote-device", "agent-%s" % AGENT_VERSION)
        # 2. the one we started earlier (this server restarted, or forgot)
        res = await self._run(link, "cat %s 2>/dev/null" % shlex.quote(posixpath.join(state_dir, "agent.json")),
                              check=False)
        try:
            state = json.loads(res.stdout or "")
        except ValueError:
            state = None
        if isinstance(state, dict):
            port = await self._try_agent(dev, link, state.get("port"), state.get("token"))
            if port:
                return self._remember(dev, state.get("port"), state.get("token"), port)
        # 3. an agent the user runs on the default port
        res = await self._run(link, "cat %s 2>/dev/null" % shlex.quote(
            posixpath.join(home, ".config", "jupyter-remote-device", "token")), check=False)
        for tok in ((res.stdout or "").strip(), dev.token):
            if tok:
                port = await self._try_agent(dev, link, AGENT_PORT, tok)
                if port:
                    return self._remember(dev, AGENT_PORT, tok, port)
        # 4. deploy and start our own
        agent_port, token = await self._deploy_and_start(dev, link, home, state_dir)
        port = await self._try_agent(dev, link, agent_port, token)
        if not port:
            raise ApiError(502, "protocol", "the agent started on %s but does not answer through the tunnel"
                           % target)
        return self._remember(dev, agent_port, token, port)

    def _remember(self, dev, agent_port, token, local_port):
        changed = dev.ssh.get("agent_port") != agent_port or dev.token != token
        dev.ssh["agent_port"] = int(agent_port)
        dev.token = token
        if changed and dev.source == "ssh" and dev.id in self.manager.devices:
            try:
                self.manager.save()
            except OSError as e:
                self.log.error("remote-device: cannot save devices: %s", e)
        return local_port

    async def _board_python(self, link, py):
        """The board's Python version (a tuple) or None; ApiError ``too-old`` below 3.8."""
        from ..link import rpyc_family
        res = await self._run(link, "%s -c %s" % (py, shlex.quote(
            "import sys; print('%d.%d.%d' % tuple(sys.version_info[:3]))")), check=False)
        version = rpyc_family.version_tuple((res.stdout or "").strip())
        if not version:
            raise ApiError(502, "protocol", "there is no working %s on the board (DeviceManager.ssh_python): %s"
                           % (py, (res.stderr or res.stdout or "no output").strip()[-300:]))
        if version < rpyc_family.MIN_PYTHON:
            raise ApiError(502, "too-old", "The board runs Python %s; the agent (with the rpyc %s it brings) "
                           "needs Python 3.8 or newer. Install a newer Python on the board and point "
                           "DeviceManager.ssh_python at it." % (rpyc_family.version_text(version),
                                                                 rpyc_files_version()))
        return version

    async def _deploy_and_start(self, dev, link, home, state_dir):
        m = self.manager
        await self._board_python(link, m.ssh_python or "python3")
        files, digest = agent_files()
        marker = posixpath.join(state_dir, ".complete")
        res = await self._run(link, "cat %s 2>/dev/null" % shlex.quote(marker), check=False)
        if (res.stdout or "").strip() != digest:
            self.log.info("remote-device %s: copying the agent to %s", dev.name, state_dir)
            async with link.conn.start_sftp_client() as sftp:
                await sftp.makedirs(state_dir, exist_ok=True)
                dirs = sorted({posixpath.dirname(rel) for rel, _ in files})
                for d in dirs:
                    await sftp.makedirs(posixpath.join(state_dir, d), exist_ok=True)
                for rel, data in files:
                    tmp = posixpath.join(state_dir, rel + ".tmp")
                    async with sftp.open(tmp, "wb") as f:
                        await f.write(data)
                    await sftp.posix_rename(tmp, posixpath.join(state_dir, rel))
                async with sftp.open(marker, "w") as f:
                    await f.write(digest)
        token = secrets.token_hex(24)
        token_file = posixpath.join(state_dir, "token")
        log_file = posixpath.join(state_dir, "agent.log")
        q = shlex.quote
        py = m.ssh_python or "python3"
        root = posixpath.join(home, "jrd-root")
        cmd = ("umask 077 && cd {d} && printf '%s\\n' {tok} > {tf} && : > {log} && "
               "PYTHONPATH={d} nohup {py} -m jupyter_remote_device.agent --host 127.0.0.1 --port 0 "
               "--token-file {tf} --root {root} --camera auto --no-mdns > {log} 2>&1 < /dev/null & echo $!").format(
            d=q(state_dir), tok=q(token), tf=q(token_file), log=q(log_file), py=py, root=q(root))
        res = await self._run(link, "sh -c %s" % q(cmd))
        try:
            pid = int((res.stdout or "").strip().splitlines()[-1])
        except (ValueError, IndexError):
            pid = None
        deadline = time.monotonic() + 30.0
        port = None
        out = ""
        while time.monotonic() < deadline:
            res = await self._run(link, "cat %s 2>/dev/null" % q(log_file), check=False)
            out = res.stdout or ""
            mt = re.search(r"JRD-AGENT LISTENING \S+:(\d+)", out)
            if mt:
                port = int(mt.group(1))
                break
            if pid is not None:
                alive = await self._run(link, "kill -0 %d 2>/dev/null" % pid, check=False)
                if alive.exit_status != 0:
                    # one more look: it may have printed and exited? (no: LISTENING means it runs)
                    res = await self._run(link, "cat %s 2>/dev/null" % q(log_file), check=False)
                    out = res.stdout or out
                    if "LISTENING" not in out:
                        break
            await asyncio.sleep(0.2)
        if port is None:
            tail = "\n".join(out.strip().splitlines()[-8:])
            raise ApiError(502, "protocol", "the agent copied to the board did not start (it needs Python 3.8+; "
                           "it brings its own rpyc). Its output:\n%s" % (tail or "(nothing)"))
        state = json.dumps({"port": port, "token": token, "pid": pid, "version": AGENT_VERSION})
        state_file = posixpath.join(state_dir, "agent.json")
        await self._run(link, "umask 077 && printf '%%s' %s > %s" % (q(state), q(state_file)))
        self.log.info("remote-device %s: started the agent on the board (pid %s, port %d)", dev.name, pid, port)
        return port, token


async def ssh_status(manager, dev):
    """Reachability of an SSH board without logging in: does an SSH server answer?"""
    ssh = dev.ssh

    def probe():
        ip = manager.resolve_allowed(ssh["host"], ssh["port"])
        s = socket.create_connection((ip, ssh["port"]), timeout=min(2.0, manager.connect_timeout))
        try:
            s.settimeout(min(2.0, manager.connect_timeout))
            banner = s.recv(64)
        finally:
            s.close()
        return banner

    try:
        banner = await manager.run_with_timeout(probe, timeout=min(2.0, manager.connect_timeout))
    except ApiError as e:
        return "offline", e.message
    except OSError as e:
        return "offline", "no SSH server answers on %s:%d (%s)" % (ssh["host"], ssh["port"], e.strerror or e)
    if not banner.startswith(b"SSH-"):
        return "offline", "%s:%d answers, but not with SSH" % (ssh["host"], ssh["port"])
    return "online", None
