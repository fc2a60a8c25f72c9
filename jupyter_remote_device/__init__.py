"""jupyter-remote-device: small Linux boards as first-class citizens of JupyterLab."""
try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.1.0"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyter-remote-device"}]


def _jupyter_server_extension_points():
    return [{"module": "jupyter_remote_device"}]


def _load_jupyter_server_extension(server_app):
    from .server.handlers import setup_handlers

    setup_handlers(server_app)
    server_app.log.info("jupyter_remote_device %s server extension loaded", __version__)


async def _unload_jupyter_server_extension(server_app):
    manager = server_app.web_app.settings.get("jrd_manager")
    if manager is not None:
        await manager.shutdown()
