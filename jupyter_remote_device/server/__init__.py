"""The jupyter_server side: DeviceManager, sessions, streams, transfers and the REST/WS handlers."""
