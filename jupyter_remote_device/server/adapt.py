"""What one viewer's link carries, and the stream settings that fit it.

``LinkMeter`` turns the viewer's acknowledgements (and WebSocket pongs) into a
delivery rate, a round-trip time and a capture-to-ack latency; ``Ladder`` picks the
JPEG quality and size to send so that the wanted frame rate fits that rate.  Both are
plain logic (no I/O, no clock of their own: every method takes ``now``), so they are
easy to test and to reason about.

Capacity: a frame of ``n`` bytes sent while the previous one was still on its way
went over the link right after it, so ``n / (its ack - the previous ack)`` is one
sample of the link's capacity (the "delivery rate" of BBR, with frames as packets).
The estimate is the median of the last few seconds of samples (robust to acks that
arrive in bursts); ``None`` while the link is not saturated (then nothing measures its
capacity, and ``throughput`` says what it carries).

RTT: the minimum over the last ``RTT_WINDOW`` seconds of pong round trips (less the
time the ping waited behind our socket's queue) and of ``ack - sent - n / rate`` for
frames sent onto an idle link.  While the link is saturated neither is clean, so the
minimum keeps the last clean one.
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
HOLD_MAX = 30.0     # the longest a failed probe makes us wait before trying that level again
PROBE_WINDOW = 5.0  # a step down this soon after a probe up means the probe failed


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
        self.delivered = collections.deque()     # (now, bytes acknowledged)
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
        prev = self.last_ack
        if prev is not None and prev > sent_at + rtt / 2.0:
            # sent while the previous frame was still on its way: the link went straight
            # from that frame to this one, so the time between their acks is this frame's
            busy = now - prev
            if busy > 0.0005:
                self.rate_samples.append((now, nbytes / busy))
        if idle_before:
            r = self.rate(now)
            sample = now - sent_at - (nbytes / r if r else 0.0)
            if sample > 0:
                self.rtt_samples.append((now, sample))
        if latency is not None and 0 <= latency < 600:
            self.latency.append(latency)
        self.delivered.append((now, nbytes))
        self.last_ack = now
        self.acked_bytes += nbytes

    def throughput(self, now):
        """Bytes per second acknowledged over the last RATE_WINDOW seconds (what the link carries now)."""
        d = self.delivered
        while d and d[0][0] < now - RATE_WINDOW:
            d.popleft()
        if len(d) < 2 or now - d[0][0] < 0.5:
            return None
        return sum(n for _, n in d) / (now - d[0][0])

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
        self.holds = {}     # level -> seconds to wait before stepping up to it
        self.probe = None   # (level, when) of the last step up the rate could not vouch for

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

    def decide(self, now, rate, fps, drop_share):
        """The new level index when the link calls for one, else None.

        ``rate``: the link's bytes per second (None: not measured yet); ``fps``: the frame
        rate to hold; ``drop_share``: the share of the camera's frames this viewer skipped
        since the last call (frames waited for the link: it is saturated).

        Down: the stream needs more than FILL_DOWN of the rate and frames wait (twice in
        a row): to the best level that needs at most FILL_TARGET.  Up: after ``hold``
        seconds without waiting frames, one level, when the rate says it fits or, where
        the rate can't tell (a link carrying small frames is mostly idle, so it is not
        measured at capacity), as a probe; a probe that has to come back down doubles
        the hold of that level (up to HOLD_MAX), as TCP backs off."""
        if self.since is None:
            self.since = now
        if not fps or fps <= 0:
            return None
        need = self.estimate(self.index)
        saturated = drop_share > 0.1
        if (need is not None and rate and saturated and need * fps > FILL_DOWN * rate
                and self.index < len(self.levels) - 1):
            self.over += 1
            if self.over < 2:
                return None
            best = len(self.levels) - 1
            for i in range(self.index + 1, len(self.levels)):
                est = self.estimate(i)
                if est is not None and est * fps <= FILL_TARGET * rate:
                    best = i
                    break
            if self.probe is not None and now - self.probe[1] < PROBE_WINDOW:
                j = self.probe[0]  # the probe up to level j failed: wait longer before trying it again
                self.holds[j] = min(HOLD_MAX, self.holds.get(j, HOLD_UP) * 2)
            self.probe = None
            return self._move(best, now)
        self.over = 0
        if self.index == 0 or drop_share > 0.05:
            return None
        up = self.index - 1
        if now - self.since < self.holds.get(up, HOLD_UP):
            return None
        est = self.estimate(up)
        fits = est is not None and rate and est * fps <= FILL_UP * rate
        self.probe = None if fits else (up, now)
        return self._move(up, now)

    def _move(self, i, now):
        self.index = i
        self.since = now
        self.over = 0
        return i
