"""The agent's own TLS certificate: made on first start, kept beside its token.

``~/.config/jupyter-remote-device/agent-tls.pem`` (mode 0600) holds a self-signed EC P-256
key and certificate in one file (so two agents starting at once can never pair one's key
with the other's certificate: the first complete file wins). Its SHA-256 fingerprint is what
the Jupyter side pins on first connect (trust on first use, as SSH does).

Made with, in this order: the ``openssl`` command, the ``cryptography`` module; with neither,
the agent serves plain and says so (loudly on stderr, and in ``info``). The environment
variable ``JRD_AGENT_CERT_TOOLS`` (e.g. ``cryptography`` or ``none``) narrows the choice.
Standard library only (``cryptography`` is optional and imported only here), Python 3.8 syntax.
"""
import os
import ssl

from .digest import sha256  # not hashlib: OpenSSL's digests cost memory (digest.py)

# datetime, shutil, subprocess and tempfile are imported only when a certificate is made:
# the agent's idle footprint stays that of a bare rpyc server

TLS_FILE = "agent-tls.pem"
SUBJECT = "jupyter-remote-device-agent"
DAYS = 3650
TOOLS_ENV = "JRD_AGENT_CERT_TOOLS"


def fingerprint_der(der):
    """``AB:CD:...``: the SHA-256 of a DER certificate, as ``openssl x509 -fingerprint -sha256`` prints
    it (and the Jupyter side pins it, link/dial.py)."""
    h = sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def cert_der(pem_path):
    """The first certificate of a PEM file, as DER bytes."""
    with open(pem_path) as f:
        text = f.read()
    begin = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----", begin)
    if begin < 0 or end < 0:
        raise ValueError("%s holds no certificate" % pem_path)
    return ssl.PEM_cert_to_DER_cert(text[begin:end + len("-----END CERTIFICATE-----")] + "\n")


def fingerprint_file(pem_path):
    return fingerprint_der(cert_der(pem_path))


def _with_openssl(d):
    import shutil
    import subprocess
    exe = shutil.which("openssl")
    if not exe:
        return None
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "crt.pem")
    base = [exe, "req", "-x509", "-nodes", "-days", str(DAYS), "-subj", "/CN=" + SUBJECT,
            "-keyout", key, "-out", crt]
    for newkey in (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"], ["-newkey", "rsa:2048"]):
        try:
            r = subprocess.run(base + newkey, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        except (OSError, subprocess.SubprocessError):
            return None
        if r.returncode == 0 and os.path.exists(key) and os.path.exists(crt):
            with open(key) as k, open(crt) as c:
                return k.read() + c.read()
    return None


def _with_cryptography(d):
    import datetime
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return None
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SUBJECT)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=DAYS))
            .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)
    return pem.decode("ascii")


MAKERS = (("openssl", _with_openssl), ("cryptography", _with_cryptography))


def make_self_signed(path, tools=None):
    """Create ``path`` (key + certificate, 0600) unless it exists. Returns the tool used, "existing",
    or None when no tool could make one."""
    if os.path.exists(path):
        return "existing"
    import shutil
    import tempfile
    allowed = tools if tools is not None else os.environ.get(TOOLS_ENV, "openssl,cryptography").split(",")
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        os.makedirs(d, mode=0o700)
    work = tempfile.mkdtemp(prefix=".jrd-cert-", dir=d)
    try:
        for name, maker in MAKERS:
            if name not in allowed:
                continue
            pem = maker(work)
            if not pem:
                continue
            tmp = os.path.join(work, "both.pem")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pem)
            try:
                os.link(tmp, path)  # the first complete file wins; never replaced under a running agent
            except FileExistsError:
                return "existing"
            except OSError:  # a filesystem without hard links
                if os.path.exists(path):
                    return "existing"
                os.replace(tmp, path)
            return name
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def load_or_create(config_dir, warn=None):
    """``(ssl_context or None, fingerprint or None, note)`` for the agent's own certificate."""
    path = os.path.join(config_dir, TLS_FILE)
    try:
        made = make_self_signed(path)
    except OSError as e:
        made, note = None, "could not write %s: %s" % (path, e)
    else:
        note = None
    if made is None:
        note = note or ("neither the openssl command nor the Python cryptography module is available "
                        "to make a certificate")
        if warn:
            warn("WARNING: serving WITHOUT TLS (%s): the board link is not encrypted; anyone on this "
                 "network can read it. Install openssl (or pip install cryptography), or pass "
                 "--certfile/--keyfile." % note)
        return None, None, "plain: " + note
    from .auth import make_server_ssl_context
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass
    return make_server_ssl_context(path), fingerprint_file(path), None
