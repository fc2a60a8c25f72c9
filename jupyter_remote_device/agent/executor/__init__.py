"""The board's exec engine: runs code cells in persistent namespaces.

Standard library only (Pillow optional and imported lazily), Python 3.8 syntax.

Threading contract (for ``agent/__main__.py``)
-------------------------------------------------
* Create one ``Executor`` per agent process and share it with every rpyc
  connection (the service forwards ``exec_*`` calls to it).
* Call ``executor.run_forever(stop_event)`` **on the main thread**, after the rpyc
  server has been started in other threads.  User code runs on that thread.
* ``run_forever`` installs its own SIGINT handler for as long as it runs and
  restores the previous one when it returns:

  - ``interrupt()`` (from an rpyc thread) sends SIGINT to the main thread with
    ``signal.pthread_kill``; the handler raises ``KeyboardInterrupt`` inside the
    running code (this also breaks ``time.sleep``, blocking socket reads and lock
    waits).  If nothing runs any more by the time the signal lands, it is ignored.
  - A SIGINT from a terminal (Ctrl-C) while code runs interrupts that code too;
    a second one within 3 s also sets ``stop_event``.  Ctrl-C while idle sets
    ``stop_event``.
  - ``run_forever`` returns within ~0.2 s once ``stop_event`` is set and no code
    runs; ``__main__`` then closes the rpyc server and exits.

  If ``run_forever`` is called on another thread (e.g. inside a stock rpyc classic
  server, where the main thread is not ours) interrupts fall back to
  ``PyThreadState_SetAsyncExc`` plus an interruptible ``time.sleep`` wrapper:
  pure-Python loops and ``time.sleep`` still stop, other blocking calls only when
  they return.

* ``executor.use_cameras(hub)`` (optional, with the agent's CameraHub) lets
  ``show_camera()`` put a real still from the board's camera in the cell.
* On a stock rpyc classic server (no agent) the whole agent package is served
  from memory there (``link/classic.py``, ``agent/classic_glue.py``) and
  ``ensure_background()`` runs one executor per board process on a daemon thread.

The package, by concern: ``engine`` (the queue, namespaces, running code, errors),
``interrupt``, ``streams`` (stdout/stderr/input), ``display`` (MIME bundles, live
displays), ``images``, ``introspection`` (completion, inspection), ``maix``
(MaixPy's ``display.show`` mirror), ``records`` (one exec's output queue).

Injected in every namespace: ``display``, ``update_display``, ``show(img)`` (a live
image updated in place, <= 10/s), ``show_camera(width, height)`` and ``input``;
``getpass.getpass`` asks the client for a password; ``maix.display.show(img)`` is
mirrored into the running exec (MaixPy compatibility).

Events returned by ``poll()`` (one JSON-able dict each)::

    {"type": "stream", "name": "stdout"|"stderr", "text"}
    {"type": "result", "execution_count", "data": {mime: ...}, "metadata": {}}
    {"type": "display", "data", "metadata", "transient": {"display_id"}?, "update": bool}
    {"type": "input_request", "prompt", "password"}
    {"type": "error", "ename", "evalue", "traceback": [lines]}

Output written to ``sys.stdout``/``sys.stderr`` by the exec thread goes to the
running exec (coalesced); so does output of threads it started, while it runs. With an
``output.Output`` attached (the agent does), fds 1 and 2 (``os.system``, subprocesses, C
libraries) go to the running exec too, and whatever no exec takes goes to the board log.
"""
from ..wire import CAMERA_MIME
from .display import mime_bundle
from .engine import Executor, ensure_background
from .images import MAX_IMAGE_BYTES, encode_image, image_bundle
from .records import MAX_BUFFERED
from .streams import StdinNotImplementedError

__all__ = ["CAMERA_MIME", "Executor", "MAX_BUFFERED", "MAX_IMAGE_BYTES", "StdinNotImplementedError",
           "encode_image", "ensure_background", "image_bundle", "mime_bundle"]
