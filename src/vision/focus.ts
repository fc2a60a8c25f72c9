/**
 * Focus (sharpness) score: the variance of the Laplacian of the gray image
 * (pure function).  Higher is sharper; compare scores of the same scene.
 */
import { rgbToGray } from './color';
import { IPixels, IRect, clipRect } from './stats';

/** Variance of the 4-neighbour Laplacian over `rect` (the whole image when null). */
export function focusScore(img: IPixels, rect: IRect | null = null): number {
  const r = clipRect(rect, img.width, img.height);
  if (!r || r.w < 3 || r.h < 3) {
    return 0;
  }
  const { data, width } = img;
  const gray = new Float64Array(r.w * r.h);
  for (let y = 0; y < r.h; y++) {
    let i = ((r.y + y) * width + r.x) * 4;
    for (let x = 0; x < r.w; x++, i += 4) {
      gray[y * r.w + x] = rgbToGray(data[i], data[i + 1], data[i + 2]);
    }
  }
  let n = 0;
  let sum = 0;
  let sum2 = 0;
  for (let y = 1; y < r.h - 1; y++) {
    for (let x = 1; x < r.w - 1; x++) {
      const p = y * r.w + x;
      const lap =
        gray[p - 1] + gray[p + 1] + gray[p - r.w] + gray[p + r.w] - 4 * gray[p];
      sum += lap;
      sum2 += lap * lap;
      n++;
    }
  }
  const mean = sum / n;
  return Math.max(0, sum2 / n - mean * mean);
}
