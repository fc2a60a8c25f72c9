/**
 * Histograms and their statistics (pure functions, no DOM).
 *
 * A channel has an integer range [min, max]; its histogram has one bin per
 * value.  The statistics are those of OpenMV's `get_statistics()`: mean,
 * median, mode, standard deviation, min, max, lower and upper quartile, all
 * computed from the histogram.
 */
import { rgbToGray, rgbToHsv, rgbToLab } from './color';

export interface IChannel {
  /** Short name shown in the UI and used as a key. */
  key: ChannelKey;
  label: string;
  min: number;
  max: number;
  /** A CSS colour for the histogram bars. */
  color: string;
}

export type ChannelKey =
  'r' | 'g' | 'b' | 'gray' | 'l' | 'a' | 'bb' | 'h' | 's' | 'v';

export type Space = 'rgb' | 'gray' | 'lab' | 'hsv';

export const CHANNELS: Record<ChannelKey, IChannel> = {
  r: { key: 'r', label: 'R', min: 0, max: 255, color: '#e04040' },
  g: { key: 'g', label: 'G', min: 0, max: 255, color: '#30a030' },
  b: { key: 'b', label: 'B', min: 0, max: 255, color: '#3060e0' },
  gray: { key: 'gray', label: 'Gray', min: 0, max: 255, color: '#808080' },
  l: { key: 'l', label: 'L', min: 0, max: 100, color: '#909090' },
  a: { key: 'a', label: 'A', min: -128, max: 127, color: '#d04080' },
  bb: { key: 'bb', label: 'B', min: -128, max: 127, color: '#c0a020' },
  h: { key: 'h', label: 'H', min: 0, max: 359, color: '#c050c0' },
  s: { key: 's', label: 'S', min: 0, max: 100, color: '#40a0a0' },
  v: { key: 'v', label: 'V', min: 0, max: 100, color: '#707070' }
};

export const SPACES: Record<Space, ChannelKey[]> = {
  rgb: ['r', 'g', 'b'],
  gray: ['gray'],
  lab: ['l', 'a', 'bb'],
  hsv: ['h', 's', 'v']
};

export interface IStats {
  count: number;
  mean: number;
  median: number;
  mode: number;
  stdev: number;
  min: number;
  max: number;
  lq: number;
  uq: number;
}

export interface IRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Pixels as canvas ImageData has them: RGBA bytes, row by row. */
export interface IPixels {
  width: number;
  height: number;
  data: Uint8ClampedArray | Uint8Array;
}

/** The rectangle clipped to the image (null when nothing is left). */
export function clipRect(
  rect: IRect | null,
  width: number,
  height: number
): IRect | null {
  const r = rect ?? { x: 0, y: 0, w: width, h: height };
  let x0 = Math.floor(Math.min(r.x, r.x + r.w));
  let y0 = Math.floor(Math.min(r.y, r.y + r.h));
  let x1 = Math.ceil(Math.max(r.x, r.x + r.w));
  let y1 = Math.ceil(Math.max(r.y, r.y + r.h));
  x0 = Math.max(0, x0);
  y0 = Math.max(0, y0);
  x1 = Math.min(width, x1);
  y1 = Math.min(height, y1);
  if (x1 <= x0 || y1 <= y0) {
    return null;
  }
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

/** Histograms of the channels of `spaces` over `rect` (the whole image when null). */
export function histograms(
  img: IPixels,
  rect: IRect | null,
  spaces: Space[] = ['rgb', 'gray', 'lab', 'hsv']
): Partial<Record<ChannelKey, Uint32Array>> {
  const out: Partial<Record<ChannelKey, Uint32Array>> = {};
  const keys: ChannelKey[] = [];
  for (const s of spaces) {
    keys.push(...SPACES[s]);
  }
  for (const k of keys) {
    out[k] = new Uint32Array(CHANNELS[k].max - CHANNELS[k].min + 1);
  }
  const r = clipRect(rect, img.width, img.height);
  if (!r) {
    return out;
  }
  const { data, width } = img;
  const want = new Set(spaces);
  const hr = out.r,
    hg = out.g,
    hb = out.b,
    hgray = out.gray;
  const hl = out.l,
    ha = out.a,
    hbb = out.bb,
    hh = out.h,
    hs = out.s,
    hv = out.v;
  // a colour seen before is converted once (cameras repeat colours a lot)
  const labCache = want.has('lab') ? new Map<number, number>() : null;
  for (let y = r.y; y < r.y + r.h; y++) {
    let i = (y * width + r.x) * 4;
    for (let x = 0; x < r.w; x++, i += 4) {
      const R = data[i];
      const G = data[i + 1];
      const B = data[i + 2];
      if (hr) {
        hr[R]++;
        hg![G]++;
        hb![B]++;
      }
      if (hgray) {
        hgray[rgbToGray(R, G, B)]++;
      }
      if (labCache) {
        const key = (R << 16) | (G << 8) | B;
        let packed = labCache.get(key);
        if (packed === undefined) {
          const [L, A, BB] = rgbToLab(R, G, B);
          packed = (L << 16) | ((A + 128) << 8) | (BB + 128);
          if (labCache.size < 1 << 18) {
            labCache.set(key, packed);
          }
        }
        hl![packed >> 16]++;
        ha![(packed >> 8) & 255]++;
        hbb![packed & 255]++;
      }
      if (hh) {
        const [H, S, V] = rgbToHsv(R, G, B);
        hh[H]++;
        hs![S]++;
        hv![V]++;
      }
    }
  }
  return out;
}

/** Statistics of a histogram whose first bin is the value `min`. */
export function statistics(hist: ArrayLike<number>, min = 0): IStats {
  let count = 0;
  let sum = 0;
  let sum2 = 0;
  let lo = -1;
  let hi = -1;
  let mode = 0;
  let modeCount = -1;
  for (let i = 0; i < hist.length; i++) {
    const n = hist[i];
    if (!n) {
      continue;
    }
    const v = i + min;
    count += n;
    sum += n * v;
    sum2 += n * v * v;
    if (lo < 0) {
      lo = i;
    }
    hi = i;
    if (n > modeCount) {
      modeCount = n;
      mode = v;
    }
  }
  if (count === 0) {
    return {
      count: 0,
      mean: 0,
      median: 0,
      mode: 0,
      stdev: 0,
      min: 0,
      max: 0,
      lq: 0,
      uq: 0
    };
  }
  const mean = sum / count;
  const variance = Math.max(0, sum2 / count - mean * mean);
  return {
    count,
    mean,
    median: percentile(hist, 0.5, min),
    mode,
    stdev: Math.sqrt(variance),
    min: lo + min,
    max: hi + min,
    lq: percentile(hist, 0.25, min),
    uq: percentile(hist, 0.75, min)
  };
}

/** The smallest value v such that at least `p` of the samples are ≤ v. */
export function percentile(
  hist: ArrayLike<number>,
  p: number,
  min = 0
): number {
  let count = 0;
  for (let i = 0; i < hist.length; i++) {
    count += hist[i];
  }
  if (!count) {
    return min;
  }
  const target = Math.max(1, Math.ceil(p * count));
  let acc = 0;
  for (let i = 0; i < hist.length; i++) {
    acc += hist[i];
    if (acc >= target) {
      return i + min;
    }
  }
  return hist.length - 1 + min;
}
