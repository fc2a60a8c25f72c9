/**
 * Colour conversions as camera-board tools use them (pure functions, no DOM).
 *
 * - LAB: CIE L*a*b* from sRGB with the D65 white point, rounded to integers,
 *   L 0–100 and A/B clamped to −128–127: the space of MaixPy's and OpenMV's
 *   `find_blobs` thresholds.
 * - HSV: H 0–359 (degrees), S and V 0–100 (percent).
 * - Gray: OpenMV's integer luma, (38 R + 75 G + 15 B) >> 7.
 */

/** sRGB byte → linear light 0–1, as a lookup table. */
const LINEAR = new Float64Array(256);
for (let i = 0; i < 256; i++) {
  const c = i / 255;
  LINEAR[i] = c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
}

const WHITE_X = 0.95047;
const WHITE_Z = 1.08883;
const EPSILON = 216 / 24389; // 0.008856
const KAPPA = 24389 / 27; // 903.3

function labF(t: number): number {
  return t > EPSILON ? Math.cbrt(t) : (KAPPA * t + 16) / 116;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

export type Triple = [number, number, number];

/** [L 0–100, A −128–127, B −128–127] of an sRGB colour (bytes 0–255). */
export function rgbToLab(r: number, g: number, b: number): Triple {
  const rl = LINEAR[r & 255];
  const gl = LINEAR[g & 255];
  const bl = LINEAR[b & 255];
  const x = (0.4124564 * rl + 0.3575761 * gl + 0.1804375 * bl) / WHITE_X;
  const y = 0.2126729 * rl + 0.7151522 * gl + 0.072175 * bl;
  const z = (0.0193339 * rl + 0.119192 * gl + 0.9503041 * bl) / WHITE_Z;
  const fx = labF(x);
  const fy = labF(y);
  const fz = labF(z);
  return [
    clamp(Math.round(116 * fy - 16), 0, 100),
    clamp(Math.round(500 * (fx - fy)), -128, 127) + 0, // + 0: no −0
    clamp(Math.round(200 * (fy - fz)), -128, 127) + 0
  ];
}

/** [H 0–359, S 0–100, V 0–100] of an RGB colour (bytes 0–255). */
export function rgbToHsv(r: number, g: number, b: number): Triple {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const d = max - min;
  let h = 0;
  if (d > 0) {
    if (max === r) {
      h = ((g - b) / d) % 6;
    } else if (max === g) {
      h = (b - r) / d + 2;
    } else {
      h = (r - g) / d + 4;
    }
    h *= 60;
    if (h < 0) {
      h += 360;
    }
  }
  const s = max === 0 ? 0 : d / max;
  return [
    Math.round(h) % 360,
    Math.round(s * 100),
    Math.round((max / 255) * 100)
  ];
}

/** Gray 0–255 as OpenMV computes it. */
export function rgbToGray(r: number, g: number, b: number): number {
  return (r * 38 + g * 75 + b * 15) >> 7;
}

/** `#rrggbb` of an RGB colour. */
export function rgbToHex(r: number, g: number, b: number): string {
  return (
    '#' + [r, g, b].map(v => (v & 255).toString(16).padStart(2, '0')).join('')
  );
}
