"""The first code sent to a stock rpyc classic server (``jupyter_remote_device.link.classic``).

It is run there with ``conn.execute(source + "install(pkg, sources)")``: it registers a
``sys.meta_path`` finder that serves the agent package's sources from memory (nothing is
written to the board's disk), then imports the package's ``classic_glue``. Standard library
only; it runs before the package exists, so it imports nothing of it.
"""
import sys


def install(pkg, sources):
    """Serve ``sources`` (``{dotted relative name: (source, is_package)}``) as package ``pkg``."""
    if pkg in sys.modules:
        return
    import importlib.abc
    import importlib.util

    class _JrdFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        """Serves the jupyter-remote-device agent sources from memory."""

        def find_spec(self, fullname, path=None, target=None):
            if fullname != pkg and not fullname.startswith(pkg + "."):
                return None
            rel = fullname[len(pkg) + 1:]
            if rel not in sources:
                return None
            return importlib.util.spec_from_loader(fullname, self, origin="<jrd:" + fullname + ">",
                                                   is_package=sources[rel][1])

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            rel = module.__name__[len(pkg) + 1:]
            code = compile(sources[rel][0], "<jrd-agent " + (rel or "__init__") + ">", "exec")
            exec(code, module.__dict__)

    sys.meta_path.append(_JrdFinder())
    __import__(pkg + ".classic_glue")
