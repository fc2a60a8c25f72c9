"""Finding boards: a background port probe of configured hosts, and mDNS / DNS-SD.

* **Probe** (``DeviceManager.probe_hosts`` x ``probe_ports``): every
  ``probe_interval`` seconds each address is asked what answers on each port
  (``link.probe``: the agent's greeting, a stock rpyc classic server's first
  frame, or something else). New agents and classic servers are listed with
  ``source: "probe"``; known devices go offline/online through the manager's own
  status loop. Nothing is probed unless configured; CIDRs larger than
  ``MAX_EXPANSION`` addresses are refused (logged); ``allowed_networks`` filters
  every address; concurrency is bounded by a semaphore.
* **mDNS** (``DeviceManager.mdns`` and zeroconf importable): browses
  ``_jupyter-device._tcp.local.`` (what ``agent/mdns.py`` advertises) and lists
  what it finds with ``source: "mdns"``.

A board the user deleted from the list is not re-added while it keeps answering
(it comes back after it has been unreachable once, or after a server restart).
"""
import asyncio
import ipaddress
import os
import socket

from ..link import LinkError, probe
from ..link.saved import device_id_for
from ..link.wire import NO_MDNS_ENV
from .errors import ApiError

MAX_EXPANSION = 1024
CONCURRENCY = 32
PROBE_TIMEOUT = 1.5
SERVICE_TYPE = "_jupyter-device._tcp.local."


def expand_hosts(entries, log=None, limit=MAX_EXPANSION):
    """``probe_hosts`` entries -> a list of host strings (names kept, CIDRs expanded).

    A CIDR with more than ``limit`` addresses is skipped (and logged); the total is
    capped at ``limit`` too. Duplicates are dropped, order is kept.
    """
    out, seen = [], set()

    def add(h):
        if h not in seen and len(out) < limit:
            seen.add(h)
            out.append(h)

    for raw in entries or ():
        entry = str(raw).strip()
        if not entry:
            continue
        if entry.startswith("[") and entry.endswith("]"):
            entry = entry[1:-1]
        if "/" in entry:
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if log:
                    log.error("remote-device: probe_hosts: %r is not a valid CIDR; skipped", entry)
                continue
            if net.num_addresses > limit:
                if log:
                    log.error("remote-device: probe_hosts: %s has %d addresses (more than %d); skipped. "
                              "Narrow it (e.g. a /22 or smaller).", entry, net.num_addresses, limit)
                continue
            hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
            for ip in hosts:
                add(str(ip))
        else:
            try:
                add(str(ipaddress.ip_address(entry)))
            except ValueError:
                add(entry.lower())
        if len(out) >= limit:
            if log:
                log.error("remote-device: probe_hosts expands to more than %d addresses; the rest is skipped",
                          limit)
            break
    return out


def zeroconf_available():
    try:
        import zeroconf  # noqa: F401
        from zeroconf.asyncio import AsyncZeroconf  # noqa: F401
    except Exception:
        return False
    return True


class Discovery:
    def __init__(self, manager):
        self.manager = manager
        self.log = manager.log
        self._sem = None
        self._added = {}      # (host, port) -> device id we added
        self._dismissed = set()  # (host, port) the user deleted while it answered
        self.rounds = 0
        self.mdns = None

    # -- lifecycle ---------------------------------------------------------
    async def run(self):
        tasks = []
        if self.manager.probe_hosts:
            tasks.append(asyncio.ensure_future(self._probe_loop()))
        if self.manager.mdns and os.environ.get(NO_MDNS_ENV) == "1":
            self.log.info("remote-device: mDNS discovery is off: %s=1", NO_MDNS_ENV)
        elif self.manager.mdns:
            if zeroconf_available():
                self.mdns = MdnsBrowser(self.manager)
                tasks.append(asyncio.ensure_future(self.mdns.run()))
            else:
                self.log.info("remote-device: mDNS discovery is on but zeroconf is not installed "
                              "(pip install zeroconf); skipped")
        if not tasks:
            return
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:  # manager.shutdown()
            for t in tasks:
                t.cancel()
            if self.mdns is not None:
                await self.mdns.close()
            raise

    async def _probe_loop(self):
        hosts = expand_hosts(self.manager.probe_hosts, self.log)
        ports = [int(p) for p in self.manager.probe_ports]
        self.log.info("remote-device: probing %d host(s) on port(s) %s every %gs", len(hosts),
                      ",".join(str(p) for p in ports), self.manager.probe_interval)
        while True:
            try:
                await self.probe_round(hosts, ports)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("remote-device: probe round failed")
            self.rounds += 1
            await asyncio.sleep(max(0.5, float(self.manager.probe_interval)))

    # -- probing -----------------------------------------------------------
    async def probe_round(self, hosts, ports):
        if self._sem is None:
            self._sem = asyncio.Semaphore(CONCURRENCY)
        jobs = [self._probe_one(h, p) for h in hosts for p in ports]
        await asyncio.gather(*jobs, return_exceptions=True)

    async def _probe_one(self, host, port):
        m = self.manager
        key = (host, port)
        did = self._added.get(key)
        if did is not None and did not in m.devices:
            # the user deleted it: do not bring it back while it keeps answering
            self._dismissed.add(key)
            del self._added[key]
        async with self._sem:
            timeout = min(PROBE_TIMEOUT, float(m.connect_timeout))

            def look():
                ip = m.resolve_allowed(host, port)   # name lookup + allowed_networks
                return ip, probe(ip, port, timeout=timeout)

            try:
                ip, found = await m.run_with_timeout(look, timeout=timeout)
            except (LinkError, ApiError, OSError, socket.error):
                self._dismissed.discard(key)
                return
        kind = found.get("kind")
        if kind not in ("agent", "classic"):
            return
        if key in self._dismissed:
            return
        if device_id_for(host, port) in m.devices or device_id_for(ip, port) in m.devices:
            return  # already listed (config, manual, an earlier round): the status loop keeps it fresh
        try:
            dev, created = m.found(host, port, kind, "probe")
        except ApiError as e:
            self.log.info("remote-device: probe found %s:%d but cannot list it: %s", host, port, e.message)
            return
        if created:
            self._added[key] = dev.id
            self.log.info("remote-device: found %s on %s:%d", "an agent" if kind == "agent" else
                          "an rpyc classic server", host, port)


class MdnsBrowser:
    """Browse ``_jupyter-device._tcp.local.`` with zeroconf's asyncio API."""

    def __init__(self, manager):
        self.manager = manager
        self.log = manager.log
        self.azc = None
        self.browser = None
        self.names = {}  # service name -> device id
        self._tasks = set()

    async def run(self):
        from zeroconf import ServiceStateChange
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

        self.azc = AsyncZeroconf()

        def on_change(zeroconf, service_type, name, state_change):
            if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
                t = asyncio.ensure_future(self._resolve(service_type, name))
                self._tasks.add(t)
                t.add_done_callback(self._tasks.discard)
            elif state_change is ServiceStateChange.Removed:
                self._removed(name)

        self.browser = AsyncServiceBrowser(self.azc.zeroconf, [SERVICE_TYPE], handlers=[on_change])
        self.log.info("remote-device: browsing mDNS for %s", SERVICE_TYPE)
        try:
            while True:
                await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await self.close()
            raise

    async def close(self):
        browser, self.browser = self.browser, None
        azc, self.azc = self.azc, None
        if browser is not None:
            try:
                await browser.async_cancel()
            except Exception:
                pass
        if azc is not None:
            try:
                await azc.async_close()
            except Exception:
                pass

    async def _resolve(self, service_type, name):
        from zeroconf.asyncio import AsyncServiceInfo

        if self.azc is None:
            return
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self.azc.zeroconf, 3000):
            return
        props = {}
        for k, v in (info.properties or {}).items():
            try:
                props[k.decode("utf-8")] = v.decode("utf-8") if isinstance(v, bytes) else v
            except (AttributeError, UnicodeDecodeError):
                continue
        addrs = info.parsed_scoped_addresses() if hasattr(info, "parsed_scoped_addresses") \
            else info.parsed_addresses()
        m = self.manager
        for addr in sorted(addrs, key=lambda a: ":" in a):  # IPv4 first
            ip = addr.split("%")[0]
            try:
                if not m.is_allowed(ip):
                    continue
            except ValueError:
                continue
            label = props.get("name") or name.split("." + SERVICE_TYPE)[0]
            try:
                dev, created = m.found(ip, int(info.port), "agent", "mdns", name=label[:100])
            except ApiError as e:
                self.log.info("remote-device: mDNS found %s but cannot list it: %s", name, e.message)
                continue
            if created:
                self.log.info("remote-device: mDNS found %s at %s:%d", label, ip, info.port)
            self.names[name] = dev.id
            return

    def _removed(self, name):
        did = self.names.pop(name, None)
        if did:
            self.manager.lost(did, "the board stopped announcing itself (mDNS)")
