"""jupyter-remote-device: small Linux boards as first-class citizens of JupyterLab."""
from .agent import __version__ as __version__  # written once, in package.json (see agent/__init__.py)


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyter-remote-device"}]


def _jupyter_server_extension_points():
    from .server.extension import RemoteDeviceExtension

    return [{"module": "jupyter_remote_device", "app": RemoteDeviceExtension}]
