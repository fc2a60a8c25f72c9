"""The jupyter_server extension application: wires the handlers and closes boards on shutdown."""
from jupyter_server.extension.application import ExtensionApp


class RemoteDeviceExtension(ExtensionApp):
    name = "jupyter_remote_device"
    load_other_extensions = True

    manager = None

    def initialize_handlers(self):
        from .handlers import setup_handlers

        self.manager = setup_handlers(self.serverapp)

    async def stop_extension(self):
        """Server shutdown: close board sessions and SSH links, stop transfers and background tasks."""
        if self.manager is not None:
            await self.manager.shutdown()
