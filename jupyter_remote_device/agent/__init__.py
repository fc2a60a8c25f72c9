"""The board agent: ``python -m jupyter_remote_device.agent``.

Standard library + rpyc only (Pillow optional); Python 3.8 syntax. This package
must not import anything from the Jupyter side.
"""

__version__ = "0.1.0"
