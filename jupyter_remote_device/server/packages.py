"""Packages on a board: ``POST devices/{id}/packages`` -> 202 Job (kind "pip", plus ``log``).

The job runs in its own thread with its own board connection: it checks that pip exists
on the board and that there is room (and says plainly what is missing), pushes the
workspace wheels it was given (the push machinery of transfer.py, sha256-checked) into a
folder under the board's root, runs pip there (``--find-links`` that folder, so a board
without network installs wheels and their pushed dependencies), streams pip's log into
the job, and removes the pushed wheels afterwards. ``DELETE jobs/{id}`` stops pip.
"""
import os
import re
import threading
import time

import tornado.web
from jupyter_server.auth.decorator import authorized

from ..link.wire import REQUIREMENT_RE
from .errors import ApiError, bad_request
from .transfer import (
    CHUNK_TIMEOUT,
    Cancelled,
    Job,
    _Board,
    board_error,
    check_device_path,
    resolve_workspace,
    send_file,
)

MAX_PACKAGES = 50
MAX_LOG = 256 * 1024        # characters of pip's log kept in the job (the end)
WHEEL_DIR = ".jrd-wheels"
CHECK_TIMEOUT = 150.0
WHEEL_NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+\.whl$")


class PipJob(Job):
    def __init__(self, device_id, names, wheels, upgrade, no_index, target):
        Job.__init__(self, "pip", " ".join(names + [w[1] for w in wheels]), target or "", device_id)
        self.names = names
        self.wheels = wheels            # [(local path, workspace path)]
        self.upgrade = upgrade
        self.no_index = no_index
        self.target = target
        self.log = ""
        self.exit_code = None
        self.check = None
        self.step = "checking"
        self.run_id = None
        self.files_total = len(wheels)
        self.bytes_total = sum(os.path.getsize(w[0]) for w in wheels)

    def add_log(self, text):
        with self.lock:
            self.log = (self.log + text)[-MAX_LOG:]

    def to_dict(self):
        d = Job.to_dict(self)
        d.update({"log": self.log, "packages": self.names + [w[1] for w in self.wheels],
                  "exit_code": self.exit_code, "step": self.step, "target": self.target,
                  "check": self.check})
        return d


def parse_body(body, root_dir):
    packages = body.get("packages")
    if not isinstance(packages, list) or not packages or not all(isinstance(p, str) for p in packages):
        raise bad_request('expected {"packages": [names like "numpy==1.24", or workspace paths of .whl files]}')
    if len(packages) > MAX_PACKAGES:
        raise bad_request("at most %d packages at once" % MAX_PACKAGES)
    names, wheels = [], []
    for p in packages:
        p = p.strip()
        if p.lower().endswith(".whl"):
            local, display = resolve_workspace(root_dir, p)
            if not os.path.isfile(local):
                raise bad_request("%r is not a file" % p[:200])
            if not WHEEL_NAME_RE.match(os.path.basename(local)):
                raise bad_request("%r is not a wheel's file name (name-version-...-platform.whl)" % p[:200])
            wheels.append((local, display))
        elif REQUIREMENT_RE.match(p):
            names.append(p)
        else:
            raise bad_request("%r is neither a package name (like numpy or numpy==1.24) nor a workspace "
                              ".whl file" % p[:200])
    for flag in ("upgrade", "no_index"):
        if not isinstance(body.get(flag, False), bool):
            raise bad_request("%s must be true or false" % flag)
    target = body.get("target")
    if target is not None:
        target = check_device_path(target, "target")
        if not target.strip("/. "):
            raise bad_request("target must name a folder under the board's root")
    return names, wheels, body.get("upgrade", False), body.get("no_index", False), target


class PipRunner(object):
    def __init__(self, transfers, log):
        self.tm = transfers
        self.log = log

    def start(self, session, names, wheels, upgrade, no_index, target):
        import asyncio
        try:
            self.tm._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        job = PipJob(session.device_id, names, wheels, upgrade, no_index, target)
        with self.tm._lock:
            self.tm._jobs[job.id] = job
            self.tm._trim()
        job.thread = threading.Thread(target=self._run, args=(job, session), name="jrd-pip-%s" % job.id,
                                      daemon=True)
        job.thread.start()
        return job.to_dict()

    def _stop_if_cancelled(self, job):
        if job.cancel_event.is_set():
            raise Cancelled()

    def _fail(self, job, message, reason):
        with job.lock:
            if job.state == "running":
                job.state, job.error, job.reason, job.finished = "failed", message, reason, time.time()

    def _run(self, job, session):
        board = None
        pushed_dir = None
        try:
            board = job.board = _Board(session.connect_new())
            try:
                # `python -m pip --version` takes a while on a slow board: longer than a call
                res = board.start("pip_check", job.target, job.bytes_total)
                res.set_expiry(CHECK_TIMEOUT)
                from .session import json_text
                check = json_text(res.value, "its pip check")
            except AttributeError:
                raise ApiError(501, "not-available", "The agent on %s cannot run pip (update it)" % session.name)
            job.check = {k: check.get(k) for k in ("python", "python_version", "pip", "site", "free_bytes",
                                                   "need_bytes") if isinstance(check.get(k), (str, int, float))}
            problems = [str(p)[:500] for p in (check.get("problems") or []) if isinstance(p, str)][:5]
            self._stop_if_cancelled(job)
            if problems or not check.get("ok"):
                reason = "no-pip" if not check.get("pip") else "no-room"
                self._fail(job, " ".join(problems) or "pip cannot run on the board", reason)
                return
            job.add_log("pip %s for %s on the board; %.0f MB free.\n" % (
                check.get("pip"), check.get("python"), (check.get("free_bytes") or 0) / 1e6))
            self.tm._emit(job, force=True)
            device_wheels = []
            if job.wheels:
                job.step = "pushing"
                pushed_dir = "%s/%s" % (WHEEL_DIR, job.id)
                board.call("fs_mkdir", pushed_dir, True)
                job.started_sending = time.time()
                for local, display in job.wheels:
                    remote = "%s/%s" % (pushed_dir, os.path.basename(local))
                    st = os.stat(local)

                    def on_bytes(n):
                        job.bytes_done += n
                        self.tm._emit(job)

                    send_file(board, local, remote, st.st_size, st.st_mtime, on_bytes=on_bytes,
                              should_stop=lambda: self._stop_if_cancelled(job), handles=job.handles)
                    job.files_done += 1
                    device_wheels.append(remote)
                    job.add_log("pushed %s\n" % display)
                job.verified = True
                self.tm._emit(job, force=True)
            job.step = "installing"
            job.run_id = board.call("pip_start", tuple(job.names), tuple(device_wheels), job.upgrade,
                                    job.no_index, (pushed_dir,) if pushed_dir else (), job.target)
            if not isinstance(job.run_id, str):
                raise ApiError(502, "protocol", "The board answered pip_start with something that is not an id")
            while True:
                if job.cancel_event.is_set():
                    board.call("pip_cancel", job.run_id)
                    raise Cancelled()
                r = board.json("pip_read", job.run_id, 1.0)
                out = r.get("output")
                if isinstance(out, str) and out:
                    job.add_log(out[:MAX_LOG])
                    self.tm._emit(job)
                if r.get("done"):
                    code = r.get("exit_code")
                    job.exit_code = code if isinstance(code, int) and not isinstance(code, bool) else None
                    break
            job.step = "done"
            if job.exit_code == 0:
                with job.lock:
                    if job.state == "running":
                        job.state, job.finished = "done", time.time()
            else:
                last = [ln for ln in job.log.strip().splitlines() if ln.strip()][-1:] or [""]
                self._fail(job, "pip failed on the board (exit code %s): %s" % (job.exit_code, last[0][:300]),
                           "pip-failed")
        except Cancelled:
            pass
        except ApiError as e:
            self._fail(job, e.message, e.reason)
        except Exception as e:
            api = board_error(e, "the board")
            self._fail(job, api.message, api.reason)
            if self.log:
                self.log.warning("pip on %s failed: %s", session.name, job.error)
        finally:
            if board is not None:
                if pushed_dir is not None:
                    try:
                        res = board.start("fs_delete", pushed_dir, True)
                        res.set_expiry(CHUNK_TIMEOUT)
                        res.wait()
                    except Exception:
                        pass
                board.close()
            job.board = None
            self.tm._emit(job, force=True)


def routes(ID):
    from .handlers import BaseHandler

    class PackagesHandler(BaseHandler):
        @tornado.web.authenticated
        @authorized
        async def post(self, device_id):
            self.manager.get(device_id)
            body = self.body_json()
            names, wheels, upgrade, no_index, target = parse_body(body, self.transfers.root_dir)
            sess = self.manager.require_session(device_id)
            runner = PipRunner(self.transfers, self.log)
            self.reply(runner.start(sess, names, wheels, upgrade, no_index, target), 202)

    return [(r"/devices/%s/packages" % ID, PackagesHandler)]
