/**
 * Threshold masks and their MaixPy / OpenMV `find_blobs` form (pure functions).
 *
 * A threshold is one range per channel of its space, as `find_blobs` takes it:
 * LAB `(l_min, l_max, a_min, a_max, b_min, b_max)`, gray `(min, max)`, HSV
 * `(h_min, h_max, s_min, s_max, v_min, v_max)` (H 0–359, S/V 0–100; a hue range
 * with min > max wraps through red).  A LAB or gray range given backwards is
 * used swapped, as OpenMV does.
 */
import { rgbToGray, rgbToHsv, rgbToLab } from './color';
import {
  CHANNELS,
  IPixels,
  IRect,
  SPACES,
  clipRect,
  histograms,
  percentile
} from './stats';

export type ThresholdSpace = 'lab' | 'hsv' | 'gray';

export interface IThreshold {
  space: ThresholdSpace;
  /** [min, max] per channel of the space, in its order. */
  ranges: [number, number][];
  /** Pixels outside the ranges pass instead (find_blobs' invert=True). */
  invert?: boolean;
}

/** A threshold that lets everything through. */
export function fullThreshold(space: ThresholdSpace): IThreshold {
  return {
    space,
    ranges: SPACES[space].map(
      k => [CHANNELS[k].min, CHANNELS[k].max] as [number, number]
    )
  };
}

function inRange(v: number, lo: number, hi: number): boolean {
  return lo <= hi ? v >= lo && v <= hi : v >= hi && v <= lo;
}

function inHue(v: number, lo: number, hi: number): boolean {
  return lo <= hi ? v >= lo && v <= hi : v >= lo || v <= hi;
}

/** Whether one RGB pixel passes the threshold. */
export function passes(
  t: IThreshold,
  r: number,
  g: number,
  b: number
): boolean {
  let ok: boolean;
  const q = t.ranges;
  if (t.space === 'gray') {
    ok = inRange(rgbToGray(r, g, b), q[0][0], q[0][1]);
  } else if (t.space === 'lab') {
    const [L, A, B] = rgbToLab(r, g, b);
    ok =
      inRange(L, q[0][0], q[0][1]) &&
      inRange(A, q[1][0], q[1][1]) &&
      inRange(B, q[2][0], q[2][1]);
  } else {
    const [H, S, V] = rgbToHsv(r, g, b);
    ok =
      inHue(H, q[0][0], q[0][1]) &&
      inRange(S, q[1][0], q[1][1]) &&
      inRange(V, q[2][0], q[2][1]);
  }
  return t.invert ? !ok : ok;
}

/**
 * The mask of `img` under `t`: one byte per pixel, 1 where it passes.
 * `count` is the number of pixels that pass.
 */
export function thresholdMask(
  img: IPixels,
  t: IThreshold
): { mask: Uint8Array; count: number } {
  const n = img.width * img.height;
  const mask = new Uint8Array(n);
  const data = img.data;
  const cache = new Map<number, number>();
  let count = 0;
  for (let p = 0, i = 0; p < n; p++, i += 4) {
    const key = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    let m = cache.get(key);
    if (m === undefined) {
      m = passes(t, data[i], data[i + 1], data[i + 2]) ? 1 : 0;
      if (cache.size < 1 << 18) {
        cache.set(key, m);
      }
    }
    mask[p] = m;
    count += m;
  }
  return { mask, count };
}

/** RGBA pixels showing the mask: `color` where it passes, transparent elsewhere. */
export function maskToRgba(
  mask: Uint8Array,
  color: [number, number, number, number] = [255, 0, 255, 160]
): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(mask.length * 4);
  for (let p = 0, i = 0; p < mask.length; p++, i += 4) {
    if (mask[p]) {
      out[i] = color[0];
      out[i + 1] = color[1];
      out[i + 2] = color[2];
      out[i + 3] = color[3];
    }
  }
  return out;
}

/**
 * A threshold that takes in the region's colours: per channel, from the
 * `tail` to the 1 − `tail` percentile (0 = its min and max).
 */
export function thresholdFromRegion(
  img: IPixels,
  rect: IRect | null,
  space: ThresholdSpace,
  tail = 0.02
): IThreshold | null {
  if (!clipRect(rect, img.width, img.height)) {
    return null;
  }
  const hist = histograms(img, rect, [space]);
  const ranges = SPACES[space].map(k => {
    const h = hist[k]!;
    const lo = percentile(h, tail, CHANNELS[k].min);
    const hi = percentile(h, 1 - tail, CHANNELS[k].min);
    return [lo, hi] as [number, number];
  });
  return { space, ranges };
}

/** The threshold as one `find_blobs` tuple: `(l_min, l_max, a_min, a_max, b_min, b_max)`. */
export function thresholdTuple(t: IThreshold): string {
  return (
    '(' +
    t.ranges
      .map(([lo, hi]) => `${Math.round(lo)}, ${Math.round(hi)}`)
      .join(', ') +
    ')'
  );
}

/** What to paste into a notebook: the thresholds list for `img.find_blobs(...)`. */
export function findBlobsText(t: IThreshold): string {
  const list = `[${thresholdTuple(t)}]`;
  if (t.space === 'hsv') {
    return `${list}  # HSV (H 0-359, S/V 0-100)${t.invert ? ', invert=True' : ''}`;
  }
  return t.invert ? `${list}  # invert=True` : list;
}

/** Parse a tuple (or a list of one) typed or pasted by a person; null when it doesn't fit. */
export function parseThreshold(
  text: string,
  space: ThresholdSpace
): IThreshold | null {
  const nums = (text.match(/-?\d+(\.\d+)?/g) ?? []).map(Number);
  const need = SPACES[space].length * 2;
  if (nums.length !== need) {
    return null;
  }
  const ranges: [number, number][] = [];
  SPACES[space].forEach((k, i) => {
    const c = CHANNELS[k];
    const clamp = (v: number) =>
      Math.max(c.min, Math.min(c.max, Math.round(v)));
    ranges.push([clamp(nums[2 * i]), clamp(nums[2 * i + 1])]);
  });
  return { space, ranges };
}
