"""One exec's record (its queued output and events) and one namespace on the board."""
import threading
import time
import types

MAX_BUFFERED = 4 * 1024 * 1024      # undelivered output kept per exec
EXPIRE_AFTER = 60.0                 # finished execs are forgotten after this
TERMINAL_STATES = ("ok", "error", "aborted")


class _Exec(object):
    def __init__(self, exec_id, code, ns, mode, silent, allow_stdin):
        self.id = exec_id
        self.code = code
        self.ns = ns
        self.mode = mode
        self.silent = silent
        self.allow_stdin = allow_stdin
        self.status = "queued"
        self.cond = threading.Condition()
        self.pending = []          # [kind, ...] items, see _drain
        self.buffered = 0
        self.dropped = None        # [bytes] while dropping
        self.created = time.time()
        self.finished_at = None
        self.input_value = None
        self.awaiting_input = False
        self.interrupted = False
        # live display (show / maix display.show)
        self.live = {}             # display_id -> {"last": t, "first": bool, "pending": obj}
        self.owner = None

    # producers -------------------------------------------------------
    def add_stream(self, name, text):
        if not text:
            return
        n = len(text)
        with self.cond:
            if self.buffered + n > MAX_BUFFERED:
                if self.dropped is None:
                    self.dropped = [0]
                    self.pending.append(["dropped", name, self.dropped])
                self.dropped[0] += n
                return
            p = self.pending
            if p and p[-1][0] == "stream" and p[-1][1] == name:
                p[-1][2].append(text)
            else:
                p.append(["stream", name, [text]])
            self.buffered += n
            self.cond.notify_all()

    def add_event(self, event, size=0, replace_display_id=None):
        with self.cond:
            if replace_display_id is not None:
                # latest wins: replace an undelivered update of the same display
                for item in self.pending:
                    if item[0] == "event" and item[1].get("update") and \
                            (item[1].get("transient") or {}).get("display_id") == replace_display_id:
                        self.buffered += size - item[2]
                        item[1] = event
                        item[2] = size
                        self.cond.notify_all()
                        return
            if size and self.buffered + size > MAX_BUFFERED:
                if self.dropped is None:
                    self.dropped = [0]
                    self.pending.append(["dropped", "stderr", self.dropped])
                self.dropped[0] += size
                return
            self.pending.append(["event", event, size])
            self.buffered += size
            self.cond.notify_all()

    def finish(self, status):
        with self.cond:
            self.status = status
            self.finished_at = time.time()
            self.cond.notify_all()

    # consumer --------------------------------------------------------
    def drain(self):
        events = []
        for item in self.pending:
            if item[0] == "stream":
                events.append({"type": "stream", "name": item[1], "text": "".join(item[2])})
            elif item[0] == "dropped":
                events.append({"type": "stream", "name": "stderr",
                               "text": "\n[jupyter-remote-device: %d characters of output dropped "
                                       "(client reading too slowly)]\n" % item[2][0]})
            else:
                events.append(item[1])
        self.pending = []
        self.buffered = 0
        self.dropped = None
        return events


class _Namespace(object):
    def __init__(self, name, builtins_dict):
        self.name = name
        self.module = types.ModuleType("__main__")
        self.globals = self.module.__dict__
        self.globals["__builtins__"] = builtins_dict
        self.execution_count = 0
