/**
 * Zoom and pan over the camera canvas, with a pixel grid at high zoom.
 *
 * The viewer's canvas keeps the frame at its own size; the viewport places it
 * inside the stage at `fit × zoom` (CSS pixels) with a pan offset, and keeps a
 * mask canvas (same size as the frame) exactly over it, plus a screen-sized
 * canvas for the region, the probe cross-hair and the pixel grid.
 *
 * Mouse: wheel zooms around the cursor; drag with the middle button, the right
 * button, or Shift/Alt + left button pans; a plain left drag is given to
 * `onDrag` (the tools draw a region with it).  Keys (when the stage has focus):
 * + / − zoom, 0 fits.
 */
import { IRect } from './stats';

export interface IPoint {
  x: number;
  y: number;
}

export const MIN_ZOOM = 1;
export const MAX_ZOOM = 64;
/** From this many screen pixels per image pixel on, the grid is drawn. */
export const GRID_FROM = 8;

export interface IViewportOptions {
  stage: HTMLElement;
  canvas: HTMLCanvasElement;
  /** Region drags in image coordinates (end === null: the drag started). */
  onDrag?: (start: IPoint, end: IPoint | null, done: boolean) => void;
  /** The pointer moved over the image (null: it left). */
  onHover?: (p: IPoint | null) => void;
  /** Anything changed (zoom, pan, size): redraw the screen-space layer. */
  onChange?: () => void;
}

export class Viewport {
  constructor(options: IViewportOptions) {
    this._opt = options;
    const { stage, canvas } = options;
    this.mask = document.createElement('canvas');
    this.mask.className = 'jp-RemoteDevice-visionMask';
    this.ui = document.createElement('canvas');
    this.ui.className = 'jp-RemoteDevice-visionUi';
    stage.appendChild(this.mask);
    stage.appendChild(this.ui);
    stage.classList.add('jp-mod-vision');
    canvas.classList.add('jp-mod-vision');
    if (!stage.hasAttribute('tabindex')) {
      stage.tabIndex = 0;
    }
    this._listen(stage, 'wheel', this._onWheel, { passive: false });
    this._listen(stage, 'pointerdown', this._onDown);
    this._listen(stage, 'pointermove', this._onMove);
    this._listen(stage, 'pointerup', this._onUp);
    this._listen(stage, 'pointercancel', this._onUp);
    this._listen(stage, 'pointerleave', () => options.onHover?.(null));
    this._listen(stage, 'contextmenu', (e: Event) => e.preventDefault());
    this._listen(stage, 'keydown', this._onKey);
    if (typeof ResizeObserver !== 'undefined') {
      this._resize = new ResizeObserver(() => this.layout());
      this._resize.observe(stage);
    }
    this.layout();
  }

  /** A frame-sized canvas over the image (the threshold mask). */
  readonly mask: HTMLCanvasElement;
  /** A stage-sized canvas for the region, cross-hair and grid. */
  readonly ui: HTMLCanvasElement;

  get zoom(): number {
    return this._zoom;
  }

  /** Screen (CSS) pixels per image pixel. */
  get scale(): number {
    return this._fit * this._zoom;
  }

  /** Zoom to `zoom` (1 = fit) keeping the image point under `at` (stage coordinates) still. */
  setZoom(zoom: number, at?: IPoint): void {
    const z = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, zoom));
    const stage = this._opt.stage;
    const c = at ?? { x: stage.clientWidth / 2, y: stage.clientHeight / 2 };
    const before = this.toImage(c);
    this._zoom = z;
    this._place();
    const after = this.toScreen(before);
    this._pan.x += c.x - after.x;
    this._pan.y += c.y - after.y;
    if (z === 1) {
      this._pan = { x: 0, y: 0 };
    }
    this.layout();
  }

  fit(): void {
    this._zoom = 1;
    this._pan = { x: 0, y: 0 };
    this.layout();
  }

  /** Stage coordinates (CSS px) → image pixel coordinates (fractional). */
  toImage(p: IPoint): IPoint {
    return {
      x: (p.x - this._origin.x) / this.scale,
      y: (p.y - this._origin.y) / this.scale
    };
  }

  /** Image coordinates → stage coordinates. */
  toScreen(p: IPoint): IPoint {
    return {
      x: this._origin.x + p.x * this.scale,
      y: this._origin.y + p.y * this.scale
    };
  }

  /** Recompute the placement (call when the frame size or the stage changes). */
  layout(): void {
    const { stage, canvas } = this._opt;
    const dpr = window.devicePixelRatio || 1;
    const sw = stage.clientWidth;
    const sh = stage.clientHeight;
    if (
      this.ui.width !== Math.round(sw * dpr) ||
      this.ui.height !== Math.round(sh * dpr)
    ) {
      this.ui.width = Math.max(1, Math.round(sw * dpr));
      this.ui.height = Math.max(1, Math.round(sh * dpr));
      this.ui.style.width = `${sw}px`;
      this.ui.style.height = `${sh}px`;
    }
    if (
      this.mask.width !== canvas.width ||
      this.mask.height !== canvas.height
    ) {
      this.mask.width = canvas.width;
      this.mask.height = canvas.height;
    }
    this._place();
    this._opt.onChange?.();
  }

  /** The pixel grid and a rectangle outline, drawn on the screen-space layer. */
  drawUi(region: IRect | null, probe: IPoint | null): void {
    const ui = this.ui;
    const ctx = ui.getContext('2d');
    if (!ctx) {
      return;
    }
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, ui.width, ui.height);
    const s = this.scale;
    const canvas = this._opt.canvas;
    if (s >= GRID_FROM) {
      const tl = this.toImage({ x: 0, y: 0 });
      const br = this.toImage({ x: ui.width / dpr, y: ui.height / dpr });
      const x0 = Math.max(0, Math.floor(tl.x));
      const y0 = Math.max(0, Math.floor(tl.y));
      const x1 = Math.min(canvas.width, Math.ceil(br.x));
      const y1 = Math.min(canvas.height, Math.ceil(br.y));
      ctx.beginPath();
      for (let x = x0; x <= x1; x++) {
        const p = this.toScreen({ x, y: 0 }).x;
        ctx.moveTo(Math.round(p) + 0.5, this.toScreen({ x: 0, y: y0 }).y);
        ctx.lineTo(Math.round(p) + 0.5, this.toScreen({ x: 0, y: y1 }).y);
      }
      for (let y = y0; y <= y1; y++) {
        const p = this.toScreen({ x: 0, y }).y;
        ctx.moveTo(this.toScreen({ x: x0, y: 0 }).x, Math.round(p) + 0.5);
        ctx.lineTo(this.toScreen({ x: x1, y: 0 }).x, Math.round(p) + 0.5);
      }
      ctx.strokeStyle = 'rgba(128,128,128,0.55)';
      ctx.lineWidth = 1;
      ctx.stroke();
    }
    if (region) {
      const a = this.toScreen({ x: region.x, y: region.y });
      const b = this.toScreen({
        x: region.x + region.w,
        y: region.y + region.h
      });
      ctx.lineWidth = 2;
      ctx.strokeStyle = '#ffeb3b';
      ctx.setLineDash([6, 4]);
      ctx.strokeRect(a.x, a.y, b.x - a.x, b.y - a.y);
      ctx.setLineDash([]);
    }
    if (probe) {
      const px = Math.floor(probe.x);
      const py = Math.floor(probe.y);
      const a = this.toScreen({ x: px, y: py });
      const size = Math.max(s, 6);
      ctx.lineWidth = 1;
      ctx.strokeStyle = '#00e5ff';
      ctx.strokeRect(
        a.x - 0.5,
        a.y - 0.5,
        Math.max(size, 1) + 1,
        Math.max(size, 1) + 1
      );
    }
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    for (const [el, type, fn] of this._listeners) {
      el.removeEventListener(type, fn);
    }
    this._resize?.disconnect();
    const { stage, canvas } = this._opt;
    this.mask.remove();
    this.ui.remove();
    stage.classList.remove('jp-mod-vision');
    canvas.classList.remove('jp-mod-vision', 'jp-mod-pixelated');
    for (const k of ['left', 'top', 'width', 'height'] as const) {
      canvas.style[k] = '';
    }
  }

  // -- internals --------------------------------------------------------------
  private _place(): void {
    const { stage, canvas } = this._opt;
    const sw = stage.clientWidth;
    const sh = stage.clientHeight;
    const iw = canvas.width || 1;
    const ih = canvas.height || 1;
    this._fit = sw > 0 && sh > 0 ? Math.min(sw / iw, sh / ih) : 1;
    const s = this.scale;
    const w = iw * s;
    const h = ih * s;
    this._origin = {
      x: (sw - w) / 2 + this._pan.x,
      y: (sh - h) / 2 + this._pan.y
    };
    for (const el of [canvas, this.mask]) {
      el.style.left = `${this._origin.x}px`;
      el.style.top = `${this._origin.y}px`;
      el.style.width = `${w}px`;
      el.style.height = `${h}px`;
    }
    canvas.classList.toggle('jp-mod-pixelated', s >= 3);
    stage.dataset.zoom = String(Math.round(this._zoom * 100) / 100);
  }

  private _listen(
    el: HTMLElement,
    type: string,
    fn: any,
    opts?: AddEventListenerOptions
  ): void {
    const bound = fn.bind(this);
    el.addEventListener(type, bound, opts);
    this._listeners.push([el, type, bound]);
  }

  private _local(e: MouseEvent): IPoint {
    const r = this._opt.stage.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  private _onWheel(e: WheelEvent): void {
    e.preventDefault();
    const factor = Math.exp(-e.deltaY * 0.0015);
    this.setZoom(this._zoom * factor, this._local(e));
  }

  private _onDown(e: PointerEvent): void {
    const p = this._local(e);
    this._opt.stage.focus({ preventScroll: true });
    const pan =
      e.button === 1 ||
      e.button === 2 ||
      (e.button === 0 && (e.shiftKey || e.altKey));
    if (pan) {
      this._drag = { mode: 'pan', start: p, pan: { ...this._pan } };
    } else if (e.button === 0) {
      const start = this.toImage(p);
      this._drag = { mode: 'region', start: p, image: start };
      this._opt.onDrag?.(start, null, false);
    } else {
      return;
    }
    try {
      this._opt.stage.setPointerCapture(e.pointerId);
    } catch {
      // not every environment can capture
    }
    e.preventDefault();
  }

  private _onMove(e: PointerEvent): void {
    const p = this._local(e);
    const d = this._drag;
    if (d?.mode === 'pan') {
      this._pan = {
        x: d.pan!.x + p.x - d.start.x,
        y: d.pan!.y + p.y - d.start.y
      };
      this.layout();
    } else if (d?.mode === 'region') {
      this._opt.onDrag?.(d.image!, this.toImage(p), false);
    }
    this._opt.onHover?.(this.toImage(p));
  }

  private _onUp(e: PointerEvent): void {
    const d = this._drag;
    this._drag = null;
    if (d?.mode === 'region') {
      this._opt.onDrag?.(d.image!, this.toImage(this._local(e)), true);
    }
  }

  private _onKey(e: KeyboardEvent): void {
    if (e.key === '+' || e.key === '=') {
      this.setZoom(this._zoom * 2);
    } else if (e.key === '-' || e.key === '_') {
      this.setZoom(this._zoom / 2);
    } else if (e.key === '0') {
      this.fit();
    } else {
      return;
    }
    e.preventDefault();
    e.stopPropagation();
  }

  private _opt: IViewportOptions;
  private _zoom = 1;
  private _fit = 1;
  private _pan: IPoint = { x: 0, y: 0 };
  private _origin: IPoint = { x: 0, y: 0 };
  private _drag: {
    mode: 'pan' | 'region';
    start: IPoint;
    pan?: IPoint;
    image?: IPoint;
  } | null = null;
  private _listeners: [HTMLElement, string, any][] = [];
  private _resize: ResizeObserver | null = null;
  private _disposed = false;
}
