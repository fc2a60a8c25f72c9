/**
 * Human-readable numbers for the widgets: bytes, memory, percent, temperature,
 * durations and rates.
 */
export namespace Format {
  export function bytes(n: number | null | undefined): string {
    if (n === null || n === undefined || !isFinite(n)) {
      return '?';
    }
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
  }

  export function memory(
    total: number | null | undefined,
    available: number | null | undefined
  ): string | null {
    if (!total) {
      return null;
    }
    if (available === null || available === undefined) {
      return bytes(total);
    }
    const used = total - available;
    const pct = Math.round((used / total) * 100);
    return `${bytes(used)} / ${bytes(total)} (${pct}%)`;
  }

  export function percent(p: number | null | undefined): string | null {
    if (p === null || p === undefined || !isFinite(p)) {
      return null;
    }
    return `${Math.round(p)}%`;
  }

  export function temperature(t: number | null | undefined): string | null {
    if (t === null || t === undefined || !isFinite(t)) {
      return null;
    }
    return `${t.toFixed(1)} °C`;
  }

  export function duration(s: number | null | undefined): string | null {
    if (s === null || s === undefined || !isFinite(s)) {
      return null;
    }
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) {
      return `${d}d ${h}h`;
    }
    if (h > 0) {
      return `${h}h ${m}m`;
    }
    return `${m}m ${Math.floor(s % 60)}s`;
  }

  export function rate(bytesPerSecond: number | null | undefined): string {
    if (!bytesPerSecond) {
      return '';
    }
    return `${bytes(bytesPerSecond)}/s`;
  }
}
