"""``python -m jupyter_remote_device.kernel -f {connection_file}``"""
from ipykernel.kernelapp import IPKernelApp

from .kernel import RemoteDeviceKernel

if __name__ == "__main__":
    IPKernelApp.launch_instance(kernel_class=RemoteDeviceKernel)
