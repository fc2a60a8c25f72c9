"""What one viewer's link carries, and the stream settings that fit it.

``LinkMeter`` turns the viewer's acknowledgements (and WebSocket pongs) into a
delivery rate, a round-trip time and a capture-to-ack latency; ``Ladder`` picks the
JPEG quality and size to send so that the wanted frame rate fits that rate.  Both are
plain logic (no I/O, no clock of their own: every method takes ``now``), so they are
easy to test and to reason about.

Delivery rate: for an acknowledged frame of ``n`` bytes, the link was busy with it
from ``max(sent + rtt_min, previous ack)`` until its ack, so ``n / that`` is one sample
of the link's rate (the "delivery rate" of BBR, with frames as packets).  The estimate
is the median of the last few seconds of samples: robust to acks that arrive in
bursts.  RTT: the minimum over the last ``RTT_WINDOW`` seconds of pong round trips
and of ``ack - sent - n / rate`` for frames sent onto an idle link.  While the link is
saturated neither is clean, so the minimum keeps the last clean one.
"""
import collections
import statistics

RATE_WINDOW = 3.0   # seconds of delivery-rate samples
RTT_WINDOW = 10.0   # seconds of RTT samples
MIN_SAMPLES = 3

# JPEG size relative to quality 80 at the same size (typical of camera scenes).
_QF = ((1, 0.12), (10, 0.25), (20, 0.35), (30, 0.42), (40, 0.5), (50, 0.57), (60, 0.65), (70, 0.78),
       (80, 1.0), (90, 1.5), (95, 2.1), (100, 3.5))
QUALITY_STEPS = (70, 55, 40, 30)
MIN_SIZE = (160, 120)
FILL_DOWN = 0.85    # step down when the stream needs more than this share of the link
FILL_TARGET = 0.75  # ... to the best level that needs at most this share
FILL_UP = 0.6       # step up when the next level needs at most this share
HOLD_UP = 2.0       # seconds at a level before stepping up


def quality_factor(q):
    q = max(1, min(100, int(q)))
    for (q0, f0), (q1, f1) in zip(_QF, _QF[1:]):
        if q0 <= q <= q1:
            return f0 + (f1 - f0) * (q - q0) / float(q1 - q0)
    return 1.0


class LinkMeter(object):
    """Rate, RTT and latency of one viewer's link, from its acks."""

    def __init__(self):
        self.rate_samples = collections.deque()  # (now, bytes per second)
        self.rtt_samples = collections.deque()   # (now, seconds)
        self.latency = collections.deque(maxlen=16)  # capture-to-ack seconds
        self.last_ack = None
        self.acked_bytes = 0

    def _trim(self, now):
        while self.rate_samples and self.rate_samples[0][0] < now - RATE_WINDOW:
            self.rate_samples.popleft()
        while self.rtt_samples and self.rtt_samples[0][0] < now - RTT_WINDOW:
            self.rtt_samples.popleft()

    def rate(self, now):
        """Bytes per second the link delivers (None until there are enough samples)."""
        self._trim(now)
        if len(self.rate_samples) < MIN_SAMPLES:
            return None
        return statistics.median(s for _, s in self.rate_samples)

    def rtt(self, now):
        self._trim(now)
        if not self.rtt_samples:
            return None
        return min(s for _, s in self.rtt_samples)

    def latency_s(self):
        if not self.latency:
            return None
        return statistics.median(self.latency)

    def pong(self, now, rtt):
        if rtt >= 0:
            self.rtt_samples.append((now, rtt))

    def acked(self, now, nbytes, sent_at, idle_before, latency=None):
        """A frame of ``nbytes`` (plus any earlier unacked ones) acknowledged at ``now``."""
        rtt = self.rtt(now) or 0.0
        start = sent_at + rtt
        if self.last_ack is not None and self.last_ack > start:
            start = self.last_ack
        busy = now - start
        if busy > 0.0005:
            self.rate_samples.append((now, nbytes / busy))
        if idle_before:
            r = self.rate(now)
            sample = now - sent_at - (nbytes / r if r else 0.0)
            if sample > 0:
                self.rtt_samples.append((now, sample))
        if latency is not None and 0 <= latency < 600:
            self.latency.append(latency)
        self.last_ack = now
        self.acked_bytes += nbytes

    def reset(self):
        self.__init__()


class Ladder(object):
    """The (width, height, quality) levels a viewer may be sent, best first."""

    def __init__(self, width, height, quality):
        self.requested = (int(width), int(height), int(quality))
        levels = [self.requested]
        qs = [q for q in QUALITY_STEPS if q < quality]
        for q in qs:
            levels.append((width, height, q))
        qmin = levels[-1][2]
        w, h = width, height
        while w // 2 >= MIN_SIZE[0] and h // 2 >= MIN_SIZE[1]:
            w, h = w // 2, h // 2
            levels.append((w, h, qmin))
        self.levels = levels
        self.index = 0
        self.since = None
        self.sizes = {}     # level index -> EMA of the bytes per frame seen there
        self.over = 0       # consecutive checks over FILL_DOWN

    @property
    def level(self):
        return self.levels[self.index]

    def index_of(self, settings):
        """The level of a device stream's settings (None: not one of ours)."""
        try:
            key = (int(settings["width"]), int(settings["height"]), int(settings["quality"]))
        except (KeyError, TypeError, ValueError):
            return None
        for i, lv in enumerate(self.levels):
            if lv == key:
                return i
        return None

    def saw_frame(self, nbytes, i):
        """A frame of level i was sent (EMA of its size there)."""
        old = self.sizes.get(i)
        self.sizes[i] = float(nbytes) if old is None else old * 0.8 + nbytes * 0.2

    def estimate(self, i):
        """Bytes per frame at level i: what was seen there, else scaled from the current level."""
        if i in self.sizes:
            return self.sizes[i]
        ref = self.sizes.get(self.index)
        if ref is None:
            return None
        cw, ch, cq = self.levels[self.index]
        w, h, q = self.levels[i]
        return ref * (w * h * quality_factor(q)) / float(cw * ch * quality_factor(cq))

    def decide(self, now, rate, fps):
        """The new level index when the link calls for one, else None.

        ``rate``: the link's bytes per second; ``fps``: the frame rate to hold."""
        if self.since is None:
            self.since = now
        if not rate or not fps or fps <= 0:
            return None
        need = self.estimate(self.index)
        if need is None:
            return None
        if need * fps > FILL_DOWN * rate and self.index < len(self.levels) - 1:
            self.over += 1
            if self.over < 2:
                return None
            best = len(self.levels) - 1
            for i in range(self.index + 1, len(self.levels)):
                est = self.estimate(i)
                if est is not None and est * fps <= FILL_TARGET * rate:
                    best = i
                    break
            return self._move(best, now)
        self.over = 0
        if self.index > 0 and now - self.since >= HOLD_UP:
            est = self.estimate(self.index - 1)
            if est is not None and est * fps <= FILL_UP * rate:
                return self._move(self.index - 1, now)
        return None

    def _move(self, i, now):
        self.index = i
        self.since = now
        self.over = 0
        return i
