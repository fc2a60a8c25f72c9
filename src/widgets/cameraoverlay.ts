/**
 * The camera overlay: what the viewer draws and what the server measures.
 */
import type { ICameraStats } from './camera';

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
