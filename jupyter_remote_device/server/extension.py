"""The jupyter_server extension application: builds the managers, wires the handlers, and closes
boards on shutdown."""
from jupyter_server.extension.application import ExtensionApp


class RemoteDeviceExtension(ExtensionApp):
    name = "jupyter_remote_device"
    load_other_extensions = True

    manager = None

    def initialize_settings(self):
        """The DeviceManager (traitlets config from the server's config files and command line)
        and its TransferManager, before any handler exists."""
        from .handlers import make_manager

        self.manager = make_manager(self.serverapp)
        self.settings["jrd_manager"] = self.manager

    def initialize_handlers(self):
        from .handlers import setup_handlers

        self.manager = setup_handlers(self.serverapp, self.manager)

    async def stop_extension(self):
        """Server shutdown: close board sessions and SSH links, stop transfers and background tasks."""
        if self.manager is not None:
            await self.manager.shutdown()
