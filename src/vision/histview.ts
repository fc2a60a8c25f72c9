/**
 * Small DOM helpers of the vision panel: a histogram drawn on a canvas, and
 * the statistics table (cells carry data-channel / data-stat for tests).
 */
import { CHANNELS, ChannelKey, IStats } from './stats';

export const STAT_KEYS: (keyof IStats)[] = [
  'mean',
  'median',
  'mode',
  'stdev',
  'min',
  'max',
  'lq',
  'uq'
];

/** Draw `hist` (one bin per value) as bars; `range` marks a threshold range. */
export function drawHistogram(
  canvas: HTMLCanvasElement,
  key: ChannelKey,
  hist: ArrayLike<number>,
  range?: [number, number] | null
): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) {
    return;
  }
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const ch = CHANNELS[key];
  let peak = 0;
  for (let i = 0; i < hist.length; i++) {
    peak = Math.max(peak, hist[i]);
  }
  if (range) {
    const span = ch.max - ch.min + 1;
    const [lo, hi] = range;
    ctx.fillStyle = 'rgba(255, 0, 255, 0.15)';
    const x0 = ((Math.min(lo, hi) - ch.min) / span) * w;
    const x1 = ((Math.max(lo, hi) - ch.min + 1) / span) * w;
    ctx.fillRect(x0, 0, x1 - x0, h);
  }
  if (!peak) {
    return;
  }
  ctx.fillStyle = ch.color;
  const bw = w / hist.length;
  for (let i = 0; i < hist.length; i++) {
    const v = hist[i];
    if (!v) {
      continue;
    }
    const bh = Math.max(1, (Math.sqrt(v) / Math.sqrt(peak)) * (h - 1));
    ctx.fillRect(i * bw, h - bh, Math.max(bw, 1), bh);
  }
}

/** Format a statistic for the table. */
export function formatStat(k: keyof IStats, v: number): string {
  return k === 'mean' || k === 'stdev' ? v.toFixed(1) : String(Math.round(v));
}

/** The statistics table for some channels. */
export function statsTable(
  keys: ChannelKey[],
  stats: Partial<Record<ChannelKey, IStats>>
): HTMLTableElement {
  const table = document.createElement('table');
  table.className = 'jp-RemoteDevice-statsTable';
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement('th'));
  for (const k of STAT_KEYS) {
    const th = document.createElement('th');
    th.textContent = k;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const key of keys) {
    const row = body.insertRow();
    const th = document.createElement('th');
    th.textContent = CHANNELS[key].label;
    th.style.color = CHANNELS[key].color;
    row.appendChild(th);
    const s = stats[key];
    for (const k of STAT_KEYS) {
      const td = row.insertCell();
      td.dataset.channel = key;
      td.dataset.stat = k;
      td.textContent = s && s.count ? formatStat(k, s[k]) : '–';
    }
  }
  return table;
}
