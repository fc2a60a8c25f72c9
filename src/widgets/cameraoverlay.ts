/**
 * The camera overlay: what the viewer draws and what the server measures, and
 * the viewer's stats behind it (counted per frame, taken from the server's
 * status, turned into rates twice a second).
 */
import type { IStreamFrame, IStreamStatus } from '../camerastream';

export interface ICameraStats {
  /** Frames drawn per second here. */
  fps: number;
  /** kB/s received here. */
  kbps: number;
  /** Capture to ack as the server measured it, else now − captured_at here. */
  latencyMs: number | null;
  width: number;
  height: number;
  seq: number | null;
  frames: number;
  /** The link rate the server measures (kbit/s), its RTT, the quality in use. */
  linkKbps: number | null;
  rttMs: number | null;
  quality: number | null;
  adaptive: boolean;
}

/**
 * A viewer's stats: `frameReceived`, `frameDrawn` and `status` update them;
 * while started, rates are recomputed every 500 ms (over at least 0.9 s) and
 * `onTick` is called after each recomputation.
 */
export class CameraStatsMeter {
  constructor(onTick: () => void) {
    this._onTick = onTick;
  }

  /** The stats, updated in place. */
  readonly stats: ICameraStats = {
    fps: 0,
    kbps: 0,
    latencyMs: null,
    width: 0,
    height: 0,
    seq: null,
    frames: 0,
    linkKbps: null,
    rttMs: null,
    quality: null,
    adaptive: false
  };

  start(): void {
    if (this._timer) {
      return;
    }
    this._windowStart = performance.now();
    this._framesWindow = 0;
    this._bytesWindow = 0;
    this._timer = setInterval(() => this._tick(), 500);
  }

  /** Stop the rate timer and zero the rates. */
  stop(): void {
    if (this._timer) {
      clearInterval(this._timer);
      this._timer = null;
    }
    this.stats.fps = 0;
    this.stats.kbps = 0;
  }

  frameReceived(frame: IStreamFrame): void {
    this._bytesWindow += frame.bytes;
  }

  /** A frame was drawn; `width` and `height` are the bitmap's (0: use the header's). */
  frameDrawn(frame: IStreamFrame, width: number, height: number): void {
    this._framesWindow += 1;
    const s = this.stats;
    s.frames += 1;
    s.width = width || frame.header.width;
    s.height = height || frame.header.height;
    s.seq = frame.header.seq ?? null;
    if (typeof frame.header.captured_at === 'number') {
      this._localLatency = Date.now() - frame.header.captured_at * 1000;
    }
  }

  /** Take the link rate, RTT, quality and latency the server reports. */
  status(msg: IStreamStatus): void {
    const s = this.stats;
    s.linkKbps = typeof msg.link_kbps === 'number' ? msg.link_kbps : null;
    s.rttMs = typeof msg.rtt_ms === 'number' ? msg.rtt_ms : null;
    s.quality = typeof msg.quality === 'number' ? msg.quality : null;
    s.adaptive = !!msg.adaptive;
    if (typeof msg.latency_ms === 'number') {
      this._serverLatency = msg.latency_ms;
    }
  }

  private _tick(): void {
    const now = performance.now();
    const dt = (now - this._windowStart) / 1000;
    if (dt < 0.9) {
      return;
    }
    this.stats.fps = this._framesWindow / dt;
    this.stats.kbps = this._bytesWindow / 1024 / dt;
    this.stats.latencyMs = this._serverLatency ?? this._localLatency;
    this._framesWindow = 0;
    this._bytesWindow = 0;
    this._windowStart = now;
    this._onTick();
  }

  private _onTick: () => void;
  private _serverLatency: number | null = null;
  private _localLatency: number | null = null;
  private _timer: ReturnType<typeof setInterval> | null = null;
  private _windowStart = 0;
  private _framesWindow = 0;
  private _bytesWindow = 0;
}

/** Fill `overlay` with one item per stat (`data-stat` names them; tests rely on them). */
export function renderOverlay(overlay: HTMLElement, stats: ICameraStats): void {
  const s = stats;
  const lat = s.latencyMs;
  const latency =
    lat === null
      ? '–'
      : Math.abs(lat) > 60000
        ? `${(lat / 1000).toFixed(0)} s (board clock differs)`
        : `${Math.round(lat)} ms`;
  const size = s.width ? `${s.width}×${s.height}` : '';
  const q =
    s.quality === null ? '' : `Q${s.quality}${s.adaptive ? ' auto' : ''}`;
  const link =
    s.linkKbps === null
      ? ''
      : `${(s.linkKbps / 1000).toFixed(1)} Mbit/s${s.rttMs === null ? '' : ` · ${Math.round(s.rttMs)} ms RTT`}`;
  const items: [string, string, string][] = [
    ['fps', `${s.fps.toFixed(1)} fps`, 'frames drawn per second'],
    [
      'latency',
      `latency ${latency}`,
      'capture to acknowledgement, as the server measures it'
    ],
    ['kbps', s.kbps ? `${s.kbps.toFixed(0)} kB/s` : '', 'received here'],
    ['link', link, 'the link rate and round trip the server measures'],
    ['size', size, 'the size in use'],
    ['quality', q, 'the JPEG quality in use (auto: adapted to the link)']
  ];
  overlay.textContent = '';
  for (const [k, text, title] of items) {
    if (!text) {
      continue;
    }
    const item = document.createElement('span');
    item.className = 'jp-RemoteDevice-overlayItem';
    item.dataset.stat = k;
    item.textContent = text;
    item.title = title;
    overlay.appendChild(item);
  }
}
