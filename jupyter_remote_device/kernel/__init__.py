"""The ``remote-device`` Jupyter kernel: Python that runs on a board."""


def __getattr__(name):  # lazy: importing the package must not pull in ipykernel
    if name == "RemoteDeviceKernel":
        from .kernel import RemoteDeviceKernel
        return RemoteDeviceKernel
    raise AttributeError(name)
