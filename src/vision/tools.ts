/**
 * The vision tools panel beside a camera viewer: zoom and pan, a pixel probe,
 * a region with live histograms and statistics, a threshold editor with a live
 * mask that copies MaixPy's `find_blobs` thresholds, and a focus score.
 *
 * Everything is computed here, in the browser, from the frames the viewer
 * already draws (a frame hook reads the canvas); the board does no extra work.
 * While the viewer is paused the last frame stays and every tool keeps working
 * on it.
 */
import { rgbToHex, rgbToHsv, rgbToLab } from './color';
import { focusScore } from './focus';
import { button, rangeRows, section, select } from './dom';
import { drawHistogram, statsTable } from './histview';
import {
  CHANNELS,
  clipRect,
  histograms,
  IPixels,
  IRect,
  IStats,
  Space,
  SPACES,
  statistics
} from './stats';
import {
  findBlobsText,
  fullThreshold,
  IThreshold,
  maskToRgba,
  thresholdFromRegion,
  thresholdMask,
  ThresholdSpace
} from './threshold';
import { IPoint, Viewport } from './viewport';

/** What the tools need of a camera viewer (CameraViewer satisfies it). */
export interface IVisionHost {
  readonly canvas: HTMLCanvasElement;
  readonly node: HTMLElement;
  readonly paused: boolean;
  addFrameHook(
    hook: (ctx: CanvasRenderingContext2D, frame: any, viewer: any) => void
  ): { dispose(): void };
}

export interface IVisionOptions {
  /** Put text on the clipboard (default: navigator.clipboard). */
  copyText?: (text: string) => void | Promise<void>;
  /** Insert text in the active notebook cell; false when there is none. */
  insertText?: (text: string) => boolean;
  /** Say something to the user (copied, no notebook...). */
  notify?: (message: string) => void;
}

const UPDATE_MS = 100; // at most 10 updates a second

export class VisionTools {
  constructor(host: IVisionHost, options: IVisionOptions = {}) {
    this._host = host;
    this._opt = options;
    const stage = host.canvas.parentElement as HTMLElement;
    this.node = document.createElement('div');
    this.node.className = 'jp-RemoteDevice-tools';
    this._build();
    host.node.appendChild(this.node);
    host.node.classList.add('jp-mod-tools');
    this.viewport = new Viewport({
      stage,
      canvas: host.canvas,
      onDrag: (a, b, done) => this._onDrag(a, b, done),
      onHover: p => this._onHover(p),
      onChange: () => this._onViewChange()
    });
    this._hook = host.addFrameHook(ctx => this._onFrame(ctx));
    this._readCanvas();
  }

  readonly node: HTMLDivElement;
  readonly viewport: Viewport;

  /** The region in image pixels (null: the whole frame). */
  get region(): IRect | null {
    return this._region;
  }

  set region(r: IRect | null) {
    this._region =
      r && this._pixels
        ? clipRect(r, this._pixels.width, this._pixels.height)
        : r;
    this._renderRegionLabel();
    this._schedule();
  }

  get threshold(): IThreshold {
    return this._threshold;
  }

  set threshold(t: IThreshold) {
    this._threshold = {
      ...t,
      ranges: t.ranges.map(r => [r[0], r[1]] as [number, number])
    };
    this._thSpace.value = t.space;
    this._buildRanges();
    this._schedule();
  }

  /** The last statistics computed (for tests and the UI). */
  get stats(): Partial<Record<string, IStats>> {
    return this._stats;
  }

  get focus(): number {
    return this._focus;
  }

  /** The `find_blobs` text of the current threshold. */
  get thresholdText(): string {
    return findBlobsText(this._threshold);
  }

  /** Recompute now (also while paused). */
  update(): void {
    this._timer = null;
    const img = this._pixels;
    if (!img) {
      return;
    }
    const hist = histograms(img, this._region, [this._space]);
    const stats: Partial<Record<string, IStats>> = {};
    const keys = SPACES[this._space];
    for (const k of keys) {
      stats[k] = statistics(hist[k]!, CHANNELS[k].min);
    }
    this._stats = stats;
    const thKeys = SPACES[this._threshold.space];
    keys.forEach((k, i) => {
      const range =
        this._threshold.space === this._space
          ? this._threshold.ranges[thKeys.indexOf(k)]
          : null;
      drawHistogram(
        this._histCanvases[i],
        k,
        hist[k]!,
        this._showMask ? range : null
      );
    });
    const table = statsTable(keys, stats);
    this._statsHost.replaceChildren(table);
    this._focus = focusScore(img, this._region);
    this._focusLabel.textContent = this._focus.toFixed(1);
    this._focusLabel.dataset.value = String(this._focus);
    this._renderMask(img);
    this.node.dataset.updates = String(++this._updates);
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._hook.dispose();
    if (this._timer !== null) {
      clearTimeout(this._timer);
    }
    this.viewport.dispose();
    this.node.remove();
    this._host.node.classList.remove('jp-mod-tools');
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  // -- frames -----------------------------------------------------------------
  private _onFrame(ctx: CanvasRenderingContext2D): void {
    const c = ctx.canvas;
    this._pixels = ctx.getImageData(0, 0, c.width, c.height);
    if (
      this.viewport.mask.width !== c.width ||
      this.viewport.mask.height !== c.height
    ) {
      this.viewport.layout();
    } else if (!this._placed) {
      this.viewport.layout();
    }
    this._placed = true;
    this._schedule();
  }

  private _readCanvas(): void {
    const c = this._host.canvas;
    const ctx = c.getContext('2d', {
      willReadFrequently: true
    } as any) as CanvasRenderingContext2D | null;
    if (ctx && c.width && c.height) {
      try {
        this._pixels = ctx.getImageData(0, 0, c.width, c.height);
        this._schedule();
      } catch {
        // nothing drawn yet
      }
    }
  }

  private _schedule(): void {
    if (this._timer === null && !this._disposed) {
      this._timer = setTimeout(() => this.update(), UPDATE_MS);
    }
  }

  // -- pointer ----------------------------------------------------------------
  private _onDrag(a: IPoint, b: IPoint | null, done: boolean): void {
    if (!b) {
      return;
    }
    const r = { x: a.x, y: a.y, w: b.x - a.x, h: b.y - a.y };
    if (done && Math.abs(r.w) < 1 && Math.abs(r.h) < 1) {
      return; // a click, not a drag
    }
    const img = this._pixels;
    this._region = img ? clipRect(r, img.width, img.height) : null;
    this._renderRegionLabel();
    this._drawUi();
    this._schedule();
  }

  private _onHover(p: IPoint | null): void {
    this._probe = p;
    const img = this._pixels;
    const out = this._probeOut;
    if (
      !p ||
      !img ||
      p.x < 0 ||
      p.y < 0 ||
      p.x >= img.width ||
      p.y >= img.height
    ) {
      this._probe = null;
      out.dataset.active = 'false';
      this._drawUi();
      return;
    }
    const x = Math.floor(p.x);
    const y = Math.floor(p.y);
    const i = (y * img.width + x) * 4;
    const r = img.data[i];
    const g = img.data[i + 1];
    const b = img.data[i + 2];
    const lab = rgbToLab(r, g, b);
    const hsv = rgbToHsv(r, g, b);
    out.dataset.active = 'true';
    out.dataset.x = String(x);
    out.dataset.y = String(y);
    out.dataset.rgb = `${r},${g},${b}`;
    out.dataset.lab = lab.join(',');
    out.dataset.hsv = hsv.join(',');
    this._swatch.style.background = rgbToHex(r, g, b);
    this._probeText.textContent =
      `(${x}, ${y})  RGB ${r} ${g} ${b}\n` +
      `LAB ${lab[0]} ${lab[1]} ${lab[2]}  HSV ${hsv[0]}° ${hsv[1]}% ${hsv[2]}%`;
    this._drawUi();
  }

  private _onViewChange(): void {
    const vp = this.viewport; // undefined while the viewport is being made
    if (vp) {
      this._zoomLabel.textContent = `×${vp.zoom.toFixed(vp.zoom < 10 ? 1 : 0)}`;
      this._drawUi();
    }
  }

  private _drawUi(): void {
    this.viewport?.drawUi(this._region, this._probe);
  }

  // -- mask -------------------------------------------------------------------
  private _renderMask(img: IPixels): void {
    const mask = this.viewport.mask;
    const ctx = mask.getContext('2d');
    if (!ctx) {
      return;
    }
    if (!this._showMask) {
      ctx.clearRect(0, 0, mask.width, mask.height);
      this._maskInfo.textContent = '';
      delete this._maskInfo.dataset.count;
      return;
    }
    const { mask: bits, count } = thresholdMask(img, this._threshold);
    const rgba = maskToRgba(bits);
    ctx.putImageData(
      new ImageData(
        rgba as Uint8ClampedArray<ArrayBuffer>,
        img.width,
        img.height
      ),
      0,
      0
    );
    const pct = (100 * count) / Math.max(1, img.width * img.height);
    this._maskInfo.textContent = `${count} px (${pct.toFixed(1)} %) pass`;
    this._maskInfo.dataset.count = String(count);
  }

  // -- the panel --------------------------------------------------------------
  private _build(): void {
    // zoom
    const zoom = section(this.node, 'Zoom', 'jp-RemoteDevice-toolsZoom');
    const row = document.createElement('div');
    row.className = 'jp-RemoteDevice-toolsRow';
    zoom.appendChild(row);
    button(row, '−', 'jp-RemoteDevice-zoomOut', 'Zoom out (−)', () =>
      this.viewport.setZoom(this.viewport.zoom / 2)
    );
    button(row, 'Fit', 'jp-RemoteDevice-zoomFit', 'Fit the frame (0)', () =>
      this.viewport.fit()
    );
    button(
      row,
      '+',
      'jp-RemoteDevice-zoomIn',
      'Zoom in (+); the pixel grid shows from ×8 on screen',
      () => this.viewport.setZoom(this.viewport.zoom * 2)
    );
    this._zoomLabel = document.createElement('span');
    this._zoomLabel.className = 'jp-RemoteDevice-zoomLabel';
    this._zoomLabel.textContent = '×1.0';
    row.appendChild(this._zoomLabel);
    const hint = document.createElement('div');
    hint.className = 'jp-RemoteDevice-toolsHint';
    hint.textContent = 'Wheel: zoom · Shift/right drag: pan · drag: region';
    zoom.appendChild(hint);

    // probe
    const probe = section(this.node, 'Pixel', 'jp-RemoteDevice-toolsProbe');
    this._probeOut = document.createElement('div');
    this._probeOut.className = 'jp-RemoteDevice-probe';
    this._probeOut.dataset.active = 'false';
    this._swatch = document.createElement('span');
    this._swatch.className = 'jp-RemoteDevice-swatch';
    this._probeText = document.createElement('pre');
    this._probeText.className = 'jp-RemoteDevice-probeText';
    this._probeText.textContent = 'Point at the image';
    this._probeOut.append(this._swatch, this._probeText);
    probe.appendChild(this._probeOut);

    // region + histogram
    const hist = section(
      this.node,
      'Histogram',
      'jp-RemoteDevice-toolsHistogram'
    );
    const hrow = document.createElement('div');
    hrow.className = 'jp-RemoteDevice-toolsRow';
    hist.appendChild(hrow);
    this._regionLabel = document.createElement('span');
    this._regionLabel.className = 'jp-RemoteDevice-regionLabel';
    hrow.appendChild(this._regionLabel);
    button(
      hrow,
      'Whole frame',
      'jp-RemoteDevice-regionClear',
      'Forget the region: use the whole frame',
      () => {
        this.region = null;
        this._drawUi();
      }
    );
    select(
      hrow,
      'jp-RemoteDevice-histSpace',
      'Colour space of the histogram',
      [
        ['rgb', 'RGB'],
        ['gray', 'Gray'],
        ['lab', 'LAB'],
        ['hsv', 'HSV']
      ],
      this._space,
      v => {
        this._space = v as Space;
        this._buildHistCanvases();
        this._schedule();
      }
    );
    this._histHost = document.createElement('div');
    this._histHost.className = 'jp-RemoteDevice-histograms';
    hist.appendChild(this._histHost);
    this._statsHost = document.createElement('div');
    this._statsHost.className = 'jp-RemoteDevice-stats';
    hist.appendChild(this._statsHost);
    this._buildHistCanvases();
    this._renderRegionLabel();

    // focus
    const focus = section(this.node, 'Focus', 'jp-RemoteDevice-toolsFocus');
    const frow = document.createElement('div');
    frow.className = 'jp-RemoteDevice-toolsRow';
    frow.title =
      'Variance of the Laplacian over the region (or frame): higher is sharper; compare the same scene';
    frow.append('Sharpness ');
    this._focusLabel = document.createElement('span');
    this._focusLabel.className = 'jp-RemoteDevice-focusScore';
    this._focusLabel.textContent = '–';
    frow.appendChild(this._focusLabel);
    focus.appendChild(frow);

    // threshold
    const th = section(
      this.node,
      'Threshold',
      'jp-RemoteDevice-toolsThreshold'
    );
    const trow = document.createElement('div');
    trow.className = 'jp-RemoteDevice-toolsRow';
    th.appendChild(trow);
    this._thSpace = select(
      trow,
      'jp-RemoteDevice-thresholdSpace',
      'Colour space of the threshold',
      [
        ['lab', 'LAB'],
        ['hsv', 'HSV'],
        ['gray', 'Gray']
      ],
      this._threshold.space,
      v => {
        this.threshold = fullThreshold(v as ThresholdSpace);
      }
    );
    const maskLabel = document.createElement('label');
    maskLabel.className = 'jp-RemoteDevice-maskToggle';
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = this._showMask;
    box.addEventListener('change', () => {
      this._showMask = box.checked;
      this._schedule();
    });
    maskLabel.append(box, ' mask');
    trow.appendChild(maskLabel);
    const invLabel = document.createElement('label');
    invLabel.className = 'jp-RemoteDevice-invertToggle';
    const inv = document.createElement('input');
    inv.type = 'checkbox';
    inv.addEventListener('change', () => {
      this._threshold = { ...this._threshold, invert: inv.checked };
      this._renderTuple();
      this._schedule();
    });
    invLabel.append(inv, ' invert');
    trow.appendChild(invLabel);
    this._rangesHost = document.createElement('div');
    this._rangesHost.className = 'jp-RemoteDevice-ranges';
    th.appendChild(this._rangesHost);
    const arow = document.createElement('div');
    arow.className = 'jp-RemoteDevice-toolsRow';
    th.appendChild(arow);
    button(
      arow,
      'From region',
      'jp-RemoteDevice-thresholdFromRegion',
      'Take the ranges from the colours in the region (2nd to 98th percentile)',
      () => {
        if (!this._pixels) {
          return;
        }
        const t = thresholdFromRegion(
          this._pixels,
          this._region,
          this._threshold.space
        );
        if (t) {
          this.threshold = { ...t, invert: this._threshold.invert };
        }
      }
    );
    button(
      arow,
      'Reset',
      'jp-RemoteDevice-thresholdReset',
      'Let everything through',
      () => {
        this.threshold = fullThreshold(this._threshold.space);
      }
    );
    this._tuple = document.createElement('code');
    this._tuple.className = 'jp-RemoteDevice-thresholdTuple';
    th.appendChild(this._tuple);
    const crow = document.createElement('div');
    crow.className = 'jp-RemoteDevice-toolsRow';
    th.appendChild(crow);
    button(
      crow,
      'Copy',
      'jp-RemoteDevice-thresholdCopy',
      'Copy the thresholds for find_blobs to the clipboard',
      () => void this._copy()
    );
    button(
      crow,
      'Insert in cell',
      'jp-RemoteDevice-thresholdInsert',
      'Insert the thresholds at the cursor of the active notebook cell',
      () => {
        const ok = this._opt.insertText?.(this.thresholdText) ?? false;
        this._opt.notify?.(
          ok
            ? 'Inserted the thresholds in the active cell'
            : 'Open a notebook and select a cell first'
        );
      }
    );
    this._maskInfo = document.createElement('div');
    this._maskInfo.className = 'jp-RemoteDevice-maskInfo';
    th.appendChild(this._maskInfo);
    this._buildRanges();
  }

  private async _copy(): Promise<void> {
    const text = this.thresholdText;
    this.node.dataset.copied = text;
    try {
      if (this._opt.copyText) {
        await this._opt.copyText(text);
      } else {
        await navigator.clipboard.writeText(text);
      }
      this._opt.notify?.(`Copied ${text}`);
    } catch (e) {
      this._opt.notify?.(`Could not copy: ${e}`);
    }
  }

  private _buildHistCanvases(): void {
    this._histCanvases = SPACES[this._space].map(k => {
      const c = document.createElement('canvas');
      c.className = 'jp-RemoteDevice-histogram';
      c.dataset.channel = k;
      c.width = 256;
      c.height = 48;
      c.title = `${CHANNELS[k].label}: ${CHANNELS[k].min}–${CHANNELS[k].max}`;
      return c;
    });
    this._histHost.replaceChildren(...this._histCanvases);
  }

  private _buildRanges(): void {
    this._rangesHost.replaceChildren(
      ...rangeRows(this._threshold, () => {
        this._renderTuple();
        this._schedule();
      })
    );
    this._renderTuple();
  }

  private _renderTuple(): void {
    this._tuple.textContent = this.thresholdText;
    this._tuple.title = 'img.find_blobs(thresholds) — LAB for MaixPy / OpenMV';
  }

  private _renderRegionLabel(): void {
    const r = this._region;
    this._regionLabel.textContent = r
      ? `Region ${r.x}, ${r.y} ${r.w}×${r.h}`
      : 'Whole frame';
    this._regionLabel.dataset.region = r ? `${r.x},${r.y},${r.w},${r.h}` : '';
  }

  private _host: IVisionHost;
  private _opt: IVisionOptions;
  private _hook: { dispose(): void };
  private _pixels: ImageData | null = null;
  private _placed = false;
  private _region: IRect | null = null;
  private _probe: IPoint | null = null;
  private _space: Space = 'rgb';
  private _threshold: IThreshold = fullThreshold('lab');
  private _showMask = true;
  private _stats: Partial<Record<string, IStats>> = {};
  private _focus = 0;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _updates = 0;
  private _disposed = false;
  private _zoomLabel!: HTMLSpanElement;
  private _probeOut!: HTMLDivElement;
  private _swatch!: HTMLSpanElement;
  private _probeText!: HTMLPreElement;
  private _regionLabel!: HTMLSpanElement;
  private _histHost!: HTMLDivElement;
  private _histCanvases: HTMLCanvasElement[] = [];
  private _statsHost!: HTMLDivElement;
  private _focusLabel!: HTMLSpanElement;
  private _thSpace!: HTMLSelectElement;
  private _rangesHost!: HTMLDivElement;
  private _tuple!: HTMLElement;
  private _maskInfo!: HTMLDivElement;
}
