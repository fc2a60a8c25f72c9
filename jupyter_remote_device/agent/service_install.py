"""``install-service`` / ``uninstall-service`` / ``status``: the agent as a service on the board.

Three kinds of init, picked by ``--init auto`` (the default):

* **systemd** (Raspberry Pi OS, Jetson, Debian...): a unit in ``/etc/systemd/system`` (as root)
  or ``~/.config/systemd/user`` (``--user``), enabled and started; ``Restart=on-failure``; logs
  in the journal (``journalctl -u NAME``).
* **procd** (OpenWrt, and the Tina Linux of V831/R329 boards): ``/etc/init.d/NAME`` for
  ``/etc/rc.common`` with ``USE_PROCD=1`` and ``respawn``, enabled with the ``/etc/rc.d``
  links ``enable`` makes; logs in ``/var/log/NAME.log``.
* **sysv** (BusyBox init, Buildroot): ``/etc/init.d/S99NAME`` (``rcS`` runs every ``S??*``)
  with start / stop / restart / status, a respawn loop (restart on failure), a pid file and
  ``/var/log/NAME.log``.

The token never appears on a command line (``ps``) or in the unit: the service reads it from
``--token-file`` (a given ``--token`` is written there, mode 0600). ``--dry-run`` prints what
would be written and run; ``--root-dir DIR`` writes everything under DIR and runs nothing (a
test, or preparing an SD card image). Standard library only, Python 3.8 syntax.
"""
import argparse
import os
import shlex
import subprocess
import sys

from . import auth

NAME = "jupyter-remote-device-agent"
INITS = ("auto", "systemd", "procd", "sysv")


def _agent_parser():
    from .__main__ import parse_args
    return parse_args


def parse(argv):
    p = argparse.ArgumentParser(
        prog="jupyter-remote-device-agent {install-service,uninstall-service,status}", allow_abbrev=False,
        description="Run the agent as a service that starts at boot and restarts on failure. Options "
                    "not listed here are the agent's own (--host, --port, --root, --camera, "
                    "--certfile, --log-level, ...) and go into the service's command line.")
    p.add_argument("action", choices=("install-service", "uninstall-service", "status"))
    p.add_argument("--init", choices=INITS, default="auto",
                   help="systemd, procd (OpenWrt/Tina init.d), sysv (BusyBox init.d); default: detect")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--user", dest="user", action="store_true", default=None,
                       help="a systemd user unit (default when not root)")
    scope.add_argument("--system", dest="user", action="store_false", help="a system service (default as root)")
    p.add_argument("--name", default=NAME, help="service name (default %s)" % NAME)
    p.add_argument("--run-as", default=None, help="system systemd unit: run the agent as this user")
    p.add_argument("--python", default=sys.executable, help="the Python that runs the agent (default: this one)")
    p.add_argument("--token", default=None, help="store this token in the token file (never on a command line)")
    p.add_argument("--token-file", default=None,
                   help="the token the service uses (default %s; created when missing)" % auth.token_path())
    p.add_argument("--dry-run", action="store_true", help="print what would be written and run, change nothing")
    p.add_argument("--root-dir", default=None,
                   help="write under this folder instead of / and run nothing (tests, SD card images)")
    p.add_argument("--no-start", action="store_true", help="enable for the next boot, do not start now")
    args, agent_args = p.parse_known_args(argv)
    agent_args = [a for a in agent_args if a != "--"]
    if "--token" in agent_args or any(a.startswith("--token=") for a in agent_args):
        p.error("give --token before the agent's options")
    if args.action == "install-service":
        _agent_parser()(agent_args + ["--token-file", "x"])  # the agent's own check of its options (exits on error)
        agent_args = _absolute_paths(agent_args)
    return args, agent_args


def _absolute_paths(agent_args):
    """A service does not start in the folder install-service ran in: make path options absolute."""
    out, i = [], 0
    paths = ("--root", "--certfile", "--keyfile")
    while i < len(agent_args):
        a = agent_args[i]
        if a in paths and i + 1 < len(agent_args):
            out += [a, os.path.abspath(os.path.expanduser(agent_args[i + 1]))]
            i += 2
            continue
        name, eq, value = a.partition("=")
        if eq and name in paths:
            a = "%s=%s" % (name, os.path.abspath(os.path.expanduser(value)))
        out.append(a)
        i += 1
    return out


# ---------------------------------------------------------------------------- where things go
def is_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


def detect_init(root_dir=None):
    top = root_dir or "/"
    if os.path.isdir(os.path.join(top, "run/systemd/system")):
        return "systemd"
    if os.path.exists(os.path.join(top, "sbin/procd")) or os.path.exists(os.path.join(top, "etc/rc.common")):
        return "procd"
    return "sysv"


class Plan(object):
    """What one action writes, removes and runs."""

    def __init__(self, init, user, name, root_dir):
        self.init = init
        self.user = user
        self.name = name
        self.root_dir = root_dir
        self.files = []      # (path, text, mode)
        self.links = []      # (path, target)
        self.remove = []     # paths
        self.commands = []   # argv lists
        self.notes = []

    def at(self, path):
        """A path on the target system, under --root-dir when given."""
        if self.root_dir:
            return os.path.join(self.root_dir, path.lstrip("/"))
        return path

    def unit_path(self):
        if self.init == "systemd":
            if self.user:
                base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
                return os.path.join(base, "systemd", "user", self.name + ".service")
            return "/etc/systemd/system/%s.service" % self.name
        if self.init == "procd":
            return "/etc/init.d/%s" % self.name
        return "/etc/init.d/S99%s" % self.name

    def log_hint(self):
        if self.init == "systemd":
            return "journalctl %s-u %s -f" % ("--user " if self.user else "", self.name)
        return "tail -f /var/log/%s.log" % self.name


def agent_command(python, agent_args, token_file):
    return [python, "-u", "-m", "jupyter_remote_device.agent"] + list(agent_args) + ["--token-file", token_file]


def package_parent():
    """The folder holding ``jupyter_remote_device`` (the agent may be a copied folder, not installed)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---------------------------------------------------------------------------- file contents
def _systemd_quote(arg):
    if arg and all(c.isalnum() or c in "-_./:=,+@" for c in arg):
        return arg.replace("%", "%%")
    return '"%s"' % arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")


def systemd_unit(cmd, user, run_as=None, env=None):
    lines = ["[Unit]",
             "Description=jupyter-remote-device agent (serves this board to JupyterLab)",
             "After=network-online.target",
             "Wants=network-online.target",
             "",
             "[Service]",
             "Type=simple",
             "ExecStart=" + " ".join(_systemd_quote(a) for a in cmd)]
    for k, v in sorted((env or {}).items()):
        lines.append("Environment=" + _systemd_quote("%s=%s" % (k, v)))
    if run_as and not user:
        lines.append("User=" + run_as)
    lines += ["Restart=on-failure",
              "RestartSec=3",
              "KillSignal=SIGTERM",
              "TimeoutStopSec=15",
              "",
              "[Install]",
              "WantedBy=%s" % ("default.target" if user else "multi-user.target"),
              ""]
    return "\n".join(lines)


def _sh(cmd):
    return " ".join(shlex.quote(a) for a in cmd)


def procd_script(cmd, name, env):
    exports = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(env.items()))
    log = "/var/log/%s.log" % name
    inner = "exec %s >>%s 2>&1 </dev/null" % (_sh(cmd), log)
    return """#!/bin/sh /etc/rc.common
# %(name)s: the jupyter-remote-device agent (written by install-service)
# start / stop / restart / enable / disable; logs in %(log)s
START=99
STOP=10
USE_PROCD=1

start_service() {
    mkdir -p /var/log
    procd_open_instance
    procd_set_param command /bin/sh -c %(inner)s
    procd_set_param env %(exports)s
    procd_set_param respawn 3600 3 0
    procd_set_param term_timeout 15
    procd_close_instance
}
""" % {"name": name, "log": log, "inner": shlex.quote(inner), "exports": exports}


def sysv_script(cmd, name, env):
    exports = "\n".join("export %s=%s" % (k, shlex.quote(v)) for k, v in sorted(env.items()))
    return """#!/bin/sh
# %(name)s: the jupyter-remote-device agent (written by install-service)
# usage: $0 {start|stop|restart|status}; restarts the agent when it fails; logs in $LOG
NAME=%(name)s
LOGDIR=${LOGDIR:-/var/log}
RUNDIR=${RUNDIR:-/var/run}
LOG=$LOGDIR/$NAME.log
PIDFILE=$RUNDIR/$NAME.pid
LOOPFILE=$RUNDIR/$NAME.loop.pid
%(exports)s

running() {
    [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

start() {
    if running; then echo "$NAME is running (pid $(cat "$PIDFILE"))"; return 0; fi
    mkdir -p "$LOGDIR" "$RUNDIR"
    (
        trap '' HUP
        while :; do
            %(cmd)s >>"$LOG" 2>&1 </dev/null &
            echo $! >"$PIDFILE"
            wait $!
            rc=$?
            [ "$rc" = 0 ] && break
            echo "$(date) $NAME exited with status $rc; restarting in 3 s" >>"$LOG"
            sleep 3
        done
        rm -f "$PIDFILE" "$LOOPFILE"
    ) </dev/null >/dev/null 2>&1 &
    echo $! >"$LOOPFILE"
    echo "started $NAME (logs: $LOG)"
}

stop() {
    [ -f "$LOOPFILE" ] && kill "$(cat "$LOOPFILE")" 2>/dev/null
    rm -f "$LOOPFILE"
    if running; then
        pid=$(cat "$PIDFILE")
        kill -TERM "$pid" 2>/dev/null
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 15 ]; do sleep 1; i=$((i + 1)); done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$PIDFILE"
    echo "stopped $NAME"
}

case "$1" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status)
        if running; then echo "$NAME is running (pid $(cat "$PIDFILE"))"; else echo "$NAME is stopped"; exit 3; fi ;;
    *) echo "usage: $0 {start|stop|restart|status}"; exit 1 ;;
esac
""" % {"name": name, "exports": exports, "cmd": _sh(cmd)}


# ---------------------------------------------------------------------------- plans
def make_plan(args, agent_args):
    init = args.init if args.init != "auto" else detect_init(args.root_dir)
    user = (not is_root()) if args.user is None else args.user
    if init != "systemd":
        user = False
    plan = Plan(init, user, args.name, args.root_dir)
    unit = plan.unit_path()
    if args.action == "status":
        return plan
    if args.action == "uninstall-service":
        plan.remove.append(unit)
        if init == "systemd":
            sc = ["systemctl"] + (["--user"] if user else [])
            plan.commands += [sc + ["disable", "--now", args.name], sc + ["daemon-reload"]]
        elif init == "procd":
            plan.commands.append([unit, "stop"])
            plan.remove += ["/etc/rc.d/S99" + args.name, "/etc/rc.d/K10" + args.name]
        else:
            plan.commands.append(["/bin/sh", unit, "stop"])
        return plan

    token_file = os.path.abspath(os.path.expanduser(args.token_file or auth.token_path()))
    cmd = agent_command(args.python, agent_args, token_file)
    env = {"PYTHONUNBUFFERED": "1", "PYTHONPATH": package_parent(), "HOME": os.path.expanduser("~")}
    if init == "systemd":
        if user:
            env.pop("HOME")
        plan.files.append((unit, systemd_unit(cmd, user, args.run_as, env), 0o644))
        sc = ["systemctl"] + (["--user"] if user else [])
        plan.commands.append(sc + ["daemon-reload"])
        plan.commands.append(sc + ["enable"] + ([] if args.no_start else ["--now"]) + [args.name])
        if user:
            plan.notes.append("to start it at boot without logging in: loginctl enable-linger %s"
                              % os.environ.get("USER", "$USER"))
    elif init == "procd":
        plan.files.append((unit, procd_script(cmd, args.name, env), 0o755))
        plan.links += [("/etc/rc.d/S99" + args.name, "../init.d/" + args.name),
                       ("/etc/rc.d/K10" + args.name, "../init.d/" + args.name)]
        if not args.no_start:
            plan.commands.append([unit, "start"])
    else:
        if user:
            raise SystemExit("this board has no systemd: run install-service as root for an init script")
        plan.files.append((unit, sysv_script(cmd, args.name, env), 0o755))
        if not args.no_start:
            plan.commands.append(["/bin/sh", unit, "start"])
    plan.token_file = token_file
    plan.agent_args = list(agent_args)
    return plan


def _write(path, text, mode):
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        os.makedirs(d)
    tmp = path + ".jrd-new"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _run(cmd):
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    except OSError as e:
        return 127, str(e)
    return r.returncode, r.stdout.strip()


def apply(plan, args, out):
    say = out.write
    dry = args.dry_run
    if args.action == "install-service":
        token_file = plan.token_file
        if args.token:
            if dry:
                say("# would store the given token in %s (mode 0600)\n" % token_file)
            else:
                auth.save_token(args.token, plan.at(token_file))
        elif not dry:
            token, created = auth.load_or_create_token(plan.at(token_file))
            say("%s token in %s (give it to JupyterLab when adding this board)\n"
                % ("a new" if created else "the", token_file))
        own_cert = not any(a.split("=", 1)[0] in ("--no-tls", "--certfile", "--insecure-no-auth")
                           for a in plan.agent_args)
        if own_cert and not dry:
            # the certificate the service will serve, made now: its fingerprint can be checked on
            # the first connect from JupyterLab
            from . import tlscert
            pem = os.path.join(os.path.dirname(token_file), tlscert.TLS_FILE)
            try:
                if tlscert.make_self_signed(plan.at(pem)):
                    say("TLS certificate %s, fingerprint %s\n" % (pem, tlscert.fingerprint_file(plan.at(pem))))
            except OSError as e:
                say("no TLS certificate yet (%s): the agent makes one on its first start\n" % e)
    for path, text, mode in plan.files:
        if dry:
            say("# --- %s (mode %o) ---\n%s\n" % (path, mode, text))
        else:
            _write(plan.at(path), text, mode)
            say("wrote %s\n" % plan.at(path))
    for path, target in plan.links:
        if dry:
            say("# would link %s -> %s\n" % (path, target))
            continue
        full = plan.at(path)
        if not os.path.isdir(os.path.dirname(full)):
            os.makedirs(os.path.dirname(full))
        if os.path.lexists(full):
            os.remove(full)
        os.symlink(target, full)
    for path in plan.remove:
        if dry:
            say("# would remove %s\n" % path)
    rc = 0
    for cmd in plan.commands:
        if dry or plan.root_dir:
            say("# would run: %s\n" % _sh(cmd))
            continue
        code, text = _run(cmd)
        say("$ %s%s\n" % (_sh(cmd), ("\n" + text) if text else ""))
        if code != 0 and args.action == "install-service":
            rc = 1
    if not dry:
        for path in plan.remove:
            full = plan.at(path)
            if os.path.lexists(full):
                os.remove(full)
                say("removed %s\n" % full)
    if args.action == "install-service":
        say("service %s (%s%s): logs with `%s`\n" % (plan.name, plan.init, ", user" if plan.user else "",
                                                   plan.log_hint()))
        for n in plan.notes:
            say(n + "\n")
    return rc


def status(plan, out):
    unit = plan.at(plan.unit_path())
    installed = os.path.exists(unit)
    out.write("service: %s (%s%s)\n" % (plan.name, plan.init, ", user" if plan.user else ""))
    out.write("file: %s (%s)\n" % (unit, "installed" if installed else "not installed"))
    state = "unknown" if installed else "not installed"
    if not plan.root_dir and (installed or plan.init == "systemd"):
        if plan.init == "systemd":
            code, text = _run(["systemctl"] + (["--user"] if plan.user else []) + ["is-active", plan.name])
            state = text or ("active" if code == 0 else "inactive")
        elif installed:
            code, text = _run(["/bin/sh", unit, "status"] if plan.init == "sysv" else [unit, "running"])
            state = "running" if code == 0 else "stopped"
    out.write("state: %s\n" % state)
    out.write("logs: %s\n" % plan.log_hint())
    return 0 if installed else 3


def main(argv, out=None):
    out = out or sys.stdout
    args, agent_args = parse(argv)
    plan = make_plan(args, agent_args)
    if args.action == "status":
        return status(plan, out)
    return apply(plan, args, out)
