"""Optional mDNS / DNS-SD advertisement of the agent (needs ``zeroconf`` on the board).

Advertises ``_jupyter-device._tcp.local.`` with TXT records ``name``, ``model``,
``arch``, ``version`` (agent version) and ``auth=1`` (a token is required; ``0``
with ``--insecure-no-auth``). The token itself is never advertised.

Standard library + optional zeroconf; Python 3.8 syntax. ``start()`` returns an
object with ``close()``, or None when zeroconf is missing or nothing could be
advertised (the agent runs on without it).
"""
import ipaddress
import os
import socket

from .wire import NO_MDNS_ENV

SERVICE_TYPE = "_jupyter-device._tcp.local."


# NO_MDNS_ENV set to "1" keeps mDNS off whatever the options say: the test suite sets it so that no
# test can multicast on the machine's real interfaces (tests inside a network namespace unset it).


def available():
    try:
        import zeroconf  # noqa: F401
    except Exception:
        return False
    return True


def _addresses(host):
    """The IPv4/IPv6 addresses to advertise for a listening host."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and not ip.is_unspecified:
        return [str(ip)]
    out = []
    try:
        import warnings

        from zeroconf import get_all_addresses
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = get_all_addresses()
        for addr in found:
            try:
                parsed = ipaddress.ip_address(addr)
            except ValueError:
                continue
            if not (parsed.is_loopback or parsed.is_link_local):
                out.append(str(parsed))
    except Exception:
        pass
    return out


class Advertisement(object):
    """Registers in a background thread (mDNS probing takes ~2 s); ``close()`` withdraws it."""

    def __init__(self, info, interfaces, log=None):
        import threading
        self.info = info
        self.interfaces = interfaces
        self.log = log
        self.zc = None
        self._lock = threading.Lock()
        self._closed = False
        self.registered = threading.Event()
        t = threading.Thread(target=self._register, name="jrd-mdns")
        t.daemon = True
        t.start()

    def _register(self):
        try:
            from zeroconf import Zeroconf
            zc = Zeroconf(interfaces=self.interfaces) if self.interfaces else Zeroconf()
        except Exception as e:
            if self.log:
                self.log.warning("mDNS: cannot start zeroconf: %s", e)
            return
        with self._lock:
            if self._closed:
                zc.close()
                return
            self.zc = zc
        try:
            zc.register_service(self.info, allow_name_change=True)
            self.registered.set()
            if self.log:
                self.log.info("mDNS: advertising %s", self.info.name)
        except Exception as e:
            if self.log:
                self.log.warning("mDNS: cannot advertise: %s", e)

    def close(self):
        with self._lock:
            self._closed = True
            zc, self.zc = self.zc, None
        if zc is None:
            return
        try:
            if self.registered.is_set():
                zc.unregister_service(self.info)
        except Exception:
            pass
        try:
            zc.close()
        except Exception:
            pass


def start(host, port, version, auth=True, name=None, model=None, log=None):
    if os.environ.get(NO_MDNS_ENV) == "1":
        if log:
            log.info("mDNS: off (%s=1)", NO_MDNS_ENV)
        return None
    try:
        from zeroconf import ServiceInfo
    except Exception as e:
        if log:
            log.info("mDNS: zeroconf is not installed (%s); not advertising", e)
        return None
    addrs = _addresses(host)
    if not addrs:
        if log:
            log.warning("mDNS: no address to advertise for %s", host)
        return None
    try:
        specific = not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        specific = False
    hostname = socket.gethostname() or "board"
    short = hostname.split(".")[0][:40] or "board"
    label = (name or hostname)[:50]
    if model is None:
        try:
            from . import sysinfo
            model = sysinfo.model()
        except Exception:
            model = None
    props = {"name": label, "model": (model or "")[:100], "arch": os.uname().machine,
             "version": version, "auth": "1" if auth else "0"}
    try:
        info = ServiceInfo(SERVICE_TYPE, "%s-%d.%s" % (short, port, SERVICE_TYPE), port=int(port),
                           properties=props, server="%s.local." % short, parsed_addresses=addrs)
    except Exception as e:
        if log:
            log.warning("mDNS: cannot advertise: %s", e)
        return None
    # bound to the listening address when there is one: never announce on other interfaces
    return Advertisement(info, [addrs[0]] if specific else None, log=log)
