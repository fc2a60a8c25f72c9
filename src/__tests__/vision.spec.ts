/**
 * Vision tools' pure functions: colour conversions (LAB as MaixPy/OpenMV use it,
 * HSV, gray), histograms and statistics, threshold masks and the find_blobs
 * tuple, the focus score.
 */
import { rgbToGray, rgbToHex, rgbToHsv, rgbToLab } from '../vision/color';
import { focusScore } from '../vision/focus';
import {
  CHANNELS,
  clipRect,
  histograms,
  IPixels,
  percentile,
  statistics
} from '../vision/stats';
import {
  findBlobsText,
  fullThreshold,
  parseThreshold,
  passes,
  thresholdFromRegion,
  thresholdMask,
  thresholdTuple
} from '../vision/threshold';

function image(
  width: number,
  height: number,
  fill: (x: number, y: number) => [number, number, number]
): IPixels {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = fill(x, y);
      const i = (y * width + x) * 4;
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
      data[i + 3] = 255;
    }
  }
  return { width, height, data };
}

describe('colour conversions', () => {
  it('gives CIE LAB (D65) rounded and clamped as find_blobs uses it', () => {
    expect(rgbToLab(255, 0, 0)).toEqual([53, 80, 67]);
    expect(rgbToLab(0, 255, 0)).toEqual([88, -86, 83]);
    expect(rgbToLab(0, 0, 255)).toEqual([32, 79, -108]);
    expect(rgbToLab(255, 255, 255)).toEqual([100, 0, 0]);
    expect(rgbToLab(0, 0, 0)).toEqual([0, 0, 0]);
    expect(rgbToLab(128, 128, 128)).toEqual([54, 0, 0]);
    expect(rgbToLab(255, 255, 0)).toEqual([97, -22, 94]);
    for (let i = 0; i < 2000; i++) {
      const [l, a, b] = rgbToLab(
        (i * 37) % 256,
        (i * 91) % 256,
        (i * 53) % 256
      );
      expect(l).toBeGreaterThanOrEqual(0);
      expect(l).toBeLessThanOrEqual(100);
      expect(Math.abs(a)).toBeLessThanOrEqual(128);
      expect(Math.abs(b)).toBeLessThanOrEqual(128);
    }
  });

  it('gives HSV in degrees and percent', () => {
    expect(rgbToHsv(255, 0, 0)).toEqual([0, 100, 100]);
    expect(rgbToHsv(0, 255, 0)).toEqual([120, 100, 100]);
    expect(rgbToHsv(0, 0, 255)).toEqual([240, 100, 100]);
    expect(rgbToHsv(255, 255, 0)).toEqual([60, 100, 100]);
    expect(rgbToHsv(255, 0, 128)).toEqual([330, 100, 100]);
    expect(rgbToHsv(128, 128, 128)).toEqual([0, 0, 50]);
    expect(rgbToHsv(0, 0, 0)).toEqual([0, 0, 0]);
  });

  it('gives OpenMV gray and hex', () => {
    expect(rgbToGray(255, 255, 255)).toBe(255);
    expect(rgbToGray(0, 0, 0)).toBe(0);
    expect(rgbToGray(255, 0, 0)).toBe(75);
    expect(rgbToGray(0, 255, 0)).toBe(149);
    expect(rgbToHex(255, 8, 0)).toBe('#ff0800');
  });
});

describe('histograms and statistics', () => {
  it('computes mean, median, mode, stdev, min, max, quartiles', () => {
    const h = new Uint32Array(11);
    for (const v of [1, 2, 2, 3, 10]) {
      h[v]++;
    }
    const s = statistics(h);
    expect(s.count).toBe(5);
    expect(s.mean).toBeCloseTo(3.6, 10);
    expect(s.median).toBe(2);
    expect(s.mode).toBe(2);
    expect(s.min).toBe(1);
    expect(s.max).toBe(10);
    expect(s.lq).toBe(2);
    expect(s.uq).toBe(3);
    expect(s.stdev).toBeCloseTo(Math.sqrt(10.64), 10);
  });

  it('honours the channel offset (A/B start at -128) and empty histograms', () => {
    const h = new Uint32Array(256);
    h[0] = 3; // -128
    h[255] = 1; // 127
    const s = statistics(h, -128);
    expect([s.min, s.max, s.median, s.mode]).toEqual([-128, 127, -128, -128]);
    expect(statistics(new Uint32Array(4)).count).toBe(0);
    expect(percentile(new Uint32Array(4), 0.5, 7)).toBe(7);
  });

  it('histograms a region of a synthetic frame with a known colour', () => {
    // 20x10 gray (128) frame, an 8x4 red patch at (4, 3)
    const img = image(20, 10, (x, y) =>
      x >= 4 && x < 12 && y >= 3 && y < 7 ? [255, 0, 0] : [128, 128, 128]
    );
    const region = { x: 4, y: 3, w: 8, h: 4 };
    const h = histograms(img, region);
    expect(h.r![255]).toBe(32);
    expect(h.g![0]).toBe(32);
    expect(statistics(h.gray!).mean).toBe(75);
    expect(statistics(h.l!, CHANNELS.l.min).mean).toBe(53);
    expect(statistics(h.a!, CHANNELS.a.min).median).toBe(80);
    expect(statistics(h.bb!, CHANNELS.bb.min).mode).toBe(67);
    expect(statistics(h.h!).max).toBe(0);
    expect(statistics(h.s!).min).toBe(100);
    // half red, half gray
    const half = histograms(img, { x: 0, y: 3, w: 8, h: 4 }, ['rgb']);
    const sr = statistics(half.r!);
    expect(sr.count).toBe(32);
    expect(sr.mean).toBeCloseTo(191.5, 5);
    expect(sr.lq).toBe(128);
    expect(sr.uq).toBe(255);
    expect(sr.stdev).toBeCloseTo(63.5, 5);
    // only the spaces asked for
    expect(Object.keys(histograms(img, null, ['gray']))).toEqual(['gray']);
  });

  it('clips regions drawn backwards or outside the frame', () => {
    expect(clipRect({ x: 10, y: 10, w: -5, h: -5 }, 8, 8)).toEqual({
      x: 5,
      y: 5,
      w: 3,
      h: 3
    });
    expect(clipRect({ x: 20, y: 0, w: 5, h: 5 }, 8, 8)).toBeNull();
    expect(clipRect(null, 8, 6)).toEqual({ x: 0, y: 0, w: 8, h: 6 });
  });
});

describe('thresholds', () => {
  const img = image(10, 10, (x, y) =>
    x < 5 ? [255, 0, 0] : y < 5 ? [0, 0, 255] : [255, 255, 255]
  );

  it('masks LAB, HSV and gray ranges', () => {
    const red = {
      space: 'lab' as const,
      ranges: [
        [40, 60],
        [60, 100],
        [50, 80]
      ] as [number, number][]
    };
    const { mask, count } = thresholdMask(img, red);
    expect(count).toBe(50);
    expect(mask[0]).toBe(1);
    expect(mask[9]).toBe(0);
    expect(thresholdMask(img, { ...red, invert: true }).count).toBe(50);
    // a backwards LAB range is used swapped
    expect(
      passes(
        {
          space: 'lab',
          ranges: [
            [60, 40],
            [100, 60],
            [80, 50]
          ]
        },
        255,
        0,
        0
      )
    ).toBe(true);
    // hue wraps through red when min > max
    const wrap = {
      space: 'hsv' as const,
      ranges: [
        [340, 20],
        [50, 100],
        [50, 100]
      ] as [number, number][]
    };
    expect(passes(wrap, 255, 0, 0)).toBe(true);
    expect(passes(wrap, 255, 0, 40)).toBe(true);
    expect(passes(wrap, 0, 0, 255)).toBe(false);
    expect(
      thresholdMask(img, { space: 'gray', ranges: [[250, 255]] }).count
    ).toBe(25);
    expect(thresholdMask(img, fullThreshold('lab')).count).toBe(100);
  });

  it('takes a threshold from a region and writes it in find_blobs form', () => {
    const t = thresholdFromRegion(img, { x: 0, y: 0, w: 5, h: 10 }, 'lab', 0)!;
    expect(t.ranges).toEqual([
      [53, 53],
      [80, 80],
      [67, 67]
    ]);
    expect(thresholdTuple(t)).toBe('(53, 53, 80, 80, 67, 67)');
    expect(findBlobsText(t)).toBe('[(53, 53, 80, 80, 67, 67)]');
    expect(findBlobsText({ space: 'gray', ranges: [[10, 200]] })).toBe(
      '[(10, 200)]'
    );
    expect(
      findBlobsText({
        space: 'hsv',
        ranges: [
          [0, 10],
          [50, 100],
          [20, 100]
        ]
      })
    ).toContain('[(0, 10, 50, 100, 20, 100)]');
    expect(
      thresholdFromRegion(img, { x: 50, y: 50, w: 2, h: 2 }, 'lab')
    ).toBeNull();
  });

  it('parses a pasted tuple and clamps it to the channels', () => {
    expect(
      parseThreshold('[(30, 100, -64, -8, -32, 32)]', 'lab')!.ranges
    ).toEqual([
      [30, 100],
      [-64, -8],
      [-32, 32]
    ]);
    expect(parseThreshold('(0, 300)', 'gray')!.ranges).toEqual([[0, 255]]);
    expect(parseThreshold('(1, 2, 3)', 'lab')).toBeNull();
  });
});

describe('focus score', () => {
  it('is higher for a sharp edge than a blurred one, zero for a flat frame', () => {
    const sharp = image(32, 32, x => (x < 16 ? [0, 0, 0] : [255, 255, 255]));
    const soft = image(32, 32, x => {
      const v = Math.max(0, Math.min(255, (x - 8) * 16));
      return [v, v, v];
    });
    const flat = image(32, 32, () => [90, 90, 90]);
    expect(focusScore(flat)).toBe(0);
    expect(focusScore(sharp)).toBeGreaterThan(10 * focusScore(soft));
    expect(focusScore(sharp, { x: 0, y: 0, w: 8, h: 8 })).toBe(0);
    expect(focusScore(sharp, { x: 0, y: 0, w: 2, h: 2 })).toBe(0);
  });
});
