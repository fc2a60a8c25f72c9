"""jupyter-remote-device: small Linux boards as first-class citizens of JupyterLab."""
try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.1.0"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyter-remote-device"}]


def _jupyter_server_extension_points():
    from .server.extension import RemoteDeviceExtension

    return [{"module": "jupyter_remote_device", "app": RemoteDeviceExtension}]
