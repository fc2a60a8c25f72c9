/**
 * Live camera viewer: one WebSocket per tab, frames drawn on a <canvas> in
 * requestAnimationFrame, latest frame wins.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import {
  addIcon,
  pauseIcon,
  runIcon,
  Toolbar,
  ToolbarButton
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import {
  defaultSocketFactory,
  ISocketLike,
  SocketFactory,
  wsUrl
} from '../api';
import { IFrame, parseFrame, parseResolution } from '../frame';
import { cameraIcon, snapshotIcon } from '../icons';
import { DevicesModel } from '../model';

export interface IStreamSettings {
  width: number;
  height: number;
  quality: number;
  fps: number;
}

export interface ICameraStats {
  fps: number;
  kbps: number;
  latencyMs: number | null;
  width: number;
  height: number;
  seq: number | null;
  frames: number;
}

export type StreamState =
  | 'idle'
  | 'connecting'
  | 'streaming'
  | 'paused'
  | 'hidden'
  | 'waiting'
  | 'closed';

export namespace CameraViewer {
  export interface IOptions {
    deviceId: string;
    deviceName: string;
    model: DevicesModel;
    settings: IStreamSettings;
    showOverlay: boolean;
    socketFactory?: SocketFactory;
    /** Save a snapshot (JPEG bytes); returns the saved path. */
    saveSnapshot?: (jpeg: Uint8Array, viewer: CameraViewer) => Promise<string>;
  }
}

export const RESOLUTIONS = [
  '160x120',
  '320x240',
  '640x480',
  '800x600',
  '1280x720',
  '1920x1080'
];
export const QUALITIES = [30, 50, 70, 80, 90, 95];
export const FPS_CAPS = [0, 1, 5, 10, 15, 30];

export class CameraViewer extends Widget {
  constructor(options: CameraViewer.IOptions) {
    super();
    this.addClass('jp-RemoteDevice-camera');
    this.deviceId = options.deviceId;
    this._deviceName = options.deviceName;
    this._model = options.model;
    this._settings = { ...options.settings };
    this._socketFactory = options.socketFactory ?? defaultSocketFactory;
    this._saveSnapshot = options.saveSnapshot;
    this.node.dataset.deviceId = options.deviceId;
    this.node.tabIndex = -1;

    this._stage = document.createElement('div');
    this._stage.className = 'jp-RemoteDevice-stage';
    this._canvas = document.createElement('canvas');
    this._canvas.className = 'jp-RemoteDevice-canvas';
    this._canvas.width = this._settings.width;
    this._canvas.height = this._settings.height;
    this._overlay = document.createElement('div');
    this._overlay.className = 'jp-RemoteDevice-overlay';
    this._message = document.createElement('div');
    this._message.className = 'jp-RemoteDevice-streamMessage';
    this._stage.appendChild(this._canvas);
    this._stage.appendChild(this._overlay);
    this._stage.appendChild(this._message);
    this.node.appendChild(this._stage);
    this.showOverlay = options.showOverlay;
    this._model.deviceChanged.connect(this._onDeviceChanged, this);
    this._setState('idle');
  }

  readonly deviceId: string;

  get deviceName(): string {
    return this._deviceName;
  }

  get canvas(): HTMLCanvasElement {
    return this._canvas;
  }

  get settings(): IStreamSettings {
    return { ...this._settings };
  }

  get paused(): boolean {
    return this._paused;
  }

  get state(): StreamState {
    return this._state;
  }

  get stats(): ICameraStats {
    return { ...this._stats };
  }

  /** Emitted about twice a second while streaming, and on state changes. */
  get statsChanged(): ISignal<this, ICameraStats> {
    return this._statsChanged;
  }

  get stateChanged(): ISignal<this, StreamState> {
    return this._stateChanged;
  }

  /** The JPEG bytes of the frame on screen, if any. */
  get currentJpeg(): Uint8Array | null {
    return this._current ? this._current.image : null;
  }

  get showOverlay(): boolean {
    return this._showOverlay;
  }

  set showOverlay(value: boolean) {
    this._showOverlay = value;
    this._overlay.style.display = value ? '' : 'none';
    this.node.classList.toggle('jp-mod-overlay', value);
  }

  /** Change stream settings; sent on the open socket (no reconnect). */
  updateSettings(partial: Partial<IStreamSettings>): void {
    const next = { ...this._settings, ...partial };
    if (JSON.stringify(next) === JSON.stringify(this._settings)) {
      return;
    }
    this._settings = next;
    const socket = this._socket;
    if (socket && socket.readyState === 1) {
      socket.send(JSON.stringify({ type: 'settings', ...next }));
    }
    this._settingsChanged.emit(next);
  }

  get settingsChanged(): ISignal<this, IStreamSettings> {
    return this._settingsChanged;
  }

  pause(): void {
    if (this._paused) {
      return;
    }
    this._paused = true;
    this._stop();
    this._setState('paused');
  }

  resume(): void {
    if (!this._paused) {
      return;
    }
    this._paused = false;
    this._maybeStart();
  }

  togglePause(): void {
    if (this._paused) {
      this.resume();
    } else {
      this.pause();
    }
  }

  async snapshot(): Promise<string> {
    const jpeg = this.currentJpeg;
    if (!jpeg) {
      throw new Error('No frame to save yet.');
    }
    if (!this._saveSnapshot) {
      throw new Error('Saving snapshots is not available.');
    }
    return this._saveSnapshot(jpeg.slice(), this);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._stop();
    this._model.deviceChanged.disconnect(this._onDeviceChanged, this);
    if (this._statsTimer) {
      clearInterval(this._statsTimer);
      this._statsTimer = null;
    }
    Signal.clearData(this);
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._maybeStart();
  }

  protected onBeforeDetach(msg: Message): void {
    this._stop();
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._maybeStart();
  }

  protected onBeforeHide(msg: Message): void {
    this._stop();
    if (!this._paused) {
      this._setState('hidden');
    }
    super.onBeforeHide(msg);
  }

  protected onCloseRequest(msg: Message): void {
    this._stop();
    super.onCloseRequest(msg);
  }

  /**
   * Suspend the stream while the viewer is off screen (e.g. a cell output
   * scrolled away or in a hidden notebook), resume when it comes back.
   */
  setSuspended(value: boolean): void {
    if (value === this._suspended) {
      return;
    }
    this._suspended = value;
    if (value) {
      this._stop();
      if (!this._paused) {
        this._setState('hidden');
      }
    } else {
      this._maybeStart();
    }
  }

  private get _shouldRun(): boolean {
    return (
      !this.isDisposed &&
      this.isAttached &&
      this.isVisible &&
      !this._paused &&
      !this._suspended
    );
  }

  private _onDeviceChanged(
    _: DevicesModel,
    device: { id: string; name: string; status: string }
  ): void {
    if (device.id !== this.deviceId) {
      return;
    }
    if (device.name && device.name !== this._deviceName) {
      this._deviceName = device.name;
      this._nameChanged.emit(device.name);
    }
    if (device.status === 'connected' && !this._socket && this._shouldRun) {
      // The board came (back): try now rather than waiting for the backoff.
      this._attempts = 0;
      this._maybeStart();
    } else if (
      device.status !== 'connected' &&
      !this._socket &&
      this._state !== 'paused'
    ) {
      this._setMessage(this._notConnectedText(device.status));
    }
  }

  get nameChanged(): ISignal<this, string> {
    return this._nameChanged;
  }

  private _notConnectedText(status: string): string {
    return `${this._deviceName} is ${status === 'connecting' ? 'connecting…' : status === 'error' ? 'in error' : 'not connected'}. Connect it from the Devices sidebar; the stream resumes by itself.`;
  }

  private _maybeStart(): void {
    if (!this._shouldRun || this._socket) {
      return;
    }
    if (this._retryTimer) {
      clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }
    const s = this._settings;
    const url = wsUrl(`devices/${encodeURIComponent(this.deviceId)}/camera`, {
      width: s.width,
      height: s.height,
      quality: s.quality,
      fps: s.fps
    });
    this._setState('connecting');
    this._setMessage('Connecting to the camera…');
    let socket: ISocketLike;
    try {
      socket = this._socketFactory(url);
    } catch (error) {
      this._scheduleRetry(String(error));
      return;
    }
    socket.binaryType = 'arraybuffer';
    this._socket = socket;
    socket.onopen = () => {
      if (this._socket !== socket) {
        return;
      }
      this._setState('streaming');
      this._startStats();
    };
    socket.onmessage = (ev: { data: any }) => {
      if (this._socket !== socket) {
        return;
      }
      if (typeof ev.data === 'string') {
        this._onText(ev.data);
      } else if (ev.data instanceof ArrayBuffer) {
        this._onBinary(ev.data);
      } else if (ev.data && typeof ev.data.arrayBuffer === 'function') {
        void (ev.data as Blob).arrayBuffer().then(buf => {
          if (this._socket === socket) {
            this._onBinary(buf);
          }
        });
      }
    };
    socket.onerror = () => {
      // onclose follows.
    };
    socket.onclose = (ev: { code?: number; reason?: string }) => {
      if (this._socket !== socket) {
        return;
      }
      this._socket = null;
      const reason = ev?.reason || this._lastStatus || '';
      this._scheduleRetry(reason);
    };
  }

  private _scheduleRetry(reason: string): void {
    if (!this._shouldRun) {
      return;
    }
    this._setState('waiting');
    const device = this._model.get(this.deviceId);
    if (device && device.status !== 'connected') {
      this._setMessage(this._notConnectedText(device.status));
    } else {
      this._setMessage(
        `Camera stream closed${reason ? `: ${reason}` : ''}. Retrying…`
      );
    }
    this._attempts += 1;
    const delay = Math.min(
      10000,
      500 * Math.pow(2, Math.min(this._attempts, 5))
    );
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._maybeStart();
    }, delay);
  }

  private _stop(): void {
    if (this._retryTimer) {
      clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onopen = null;
      socket.onmessage = null;
      socket.onclose = null;
      socket.onerror = null;
      try {
        socket.close(1000, 'viewer stopped');
      } catch {
        // ignore
      }
    }
    this._pending = null;
    if (this._nextBitmap) {
      this._nextBitmap.close();
      this._nextBitmap = null;
    }
    if (this._raf) {
      cancelAnimationFrame(this._raf);
      this._raf = 0;
    }
    this._stopStats();
  }

  private _onText(text: string): void {
    let msg: any;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') {
      return;
    }
    if (msg.type === 'status' || msg.type === 'error') {
      const message: string | undefined = msg.message ?? msg.error ?? undefined;
      const state: string | undefined = msg.state ?? msg.status ?? undefined;
      this._lastStatus = message || state || '';
      if (msg.type === 'error' || state === 'error' || msg.reason) {
        this._setMessage(message || state || 'Camera error');
      } else if (this._stats.frames === 0 && (message || state)) {
        this._setMessage(message || `Camera: ${state}`);
      }
      this._statusMsg = msg;
    }
  }

  private _onBinary(buffer: ArrayBuffer): void {
    this._bytesWindow += buffer.byteLength;
    let frame: IFrame;
    try {
      frame = parseFrame(buffer);
    } catch (error) {
      console.warn('remote-device: bad camera frame', error);
      return;
    }
    this._pending = frame;
    if (!this._decoding) {
      void this._decodeLoop();
    }
  }

  private async _decodeLoop(): Promise<void> {
    this._decoding = true;
    try {
      while (this._pending && !this.isDisposed) {
        const frame = this._pending;
        this._pending = null;
        let bitmap: ImageBitmap;
        try {
          bitmap = await createImageBitmap(
            new Blob([frame.image as BlobPart], { type: 'image/jpeg' })
          );
        } catch {
          continue;
        }
        if (this.isDisposed || !this._socket) {
          bitmap.close();
          return;
        }
        if (this._nextBitmap) {
          // Superseded before it was drawn.
          this._nextBitmap.close();
        }
        this._nextBitmap = bitmap;
        this._nextFrame = frame;
        this._requestDraw();
      }
    } finally {
      this._decoding = false;
    }
  }

  private _requestDraw(): void {
    if (this._raf) {
      return;
    }
    this._raf = requestAnimationFrame(() => {
      this._raf = 0;
      this._draw();
    });
  }

  private _draw(): void {
    const bitmap = this._nextBitmap;
    const frame = this._nextFrame;
    this._nextBitmap = null;
    if (!bitmap || !frame) {
      return;
    }
    const canvas = this._canvas;
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
    }
    const ctx = canvas.getContext('2d');
    if (ctx) {
      ctx.drawImage(bitmap, 0, 0);
    }
    bitmap.close();
    this._current = frame;
    this._framesWindow += 1;
    this._stats.frames += 1;
    this._stats.width = bitmap.width || frame.header.width;
    this._stats.height = bitmap.height || frame.header.height;
    this._stats.seq = frame.header.seq ?? null;
    if (typeof frame.header.captured_at === 'number') {
      this._stats.latencyMs = Date.now() - frame.header.captured_at * 1000;
    }
    if (this._stats.frames === 1 || this._message.textContent) {
      this._setMessage('');
    }
    if (this._stats.frames === 1) {
      this._statsChanged.emit(this.stats);
    }
    this.node.dataset.frames = String(this._stats.frames);
  }

  private _startStats(): void {
    if (this._statsTimer) {
      return;
    }
    this._windowStart = performance.now();
    this._framesWindow = 0;
    this._bytesWindow = 0;
    this._statsTimer = setInterval(() => this._tickStats(), 500);
  }

  private _stopStats(): void {
    if (this._statsTimer) {
      clearInterval(this._statsTimer);
      this._statsTimer = null;
    }
    this._stats.fps = 0;
    this._stats.kbps = 0;
    this._renderOverlay();
    this._statsChanged.emit(this.stats);
  }

  private _tickStats(): void {
    const now = performance.now();
    const dt = (now - this._windowStart) / 1000;
    if (dt < 0.9) {
      return;
    }
    this._stats.fps = this._framesWindow / dt;
    this._stats.kbps = this._bytesWindow / 1024 / dt;
    this._framesWindow = 0;
    this._bytesWindow = 0;
    this._windowStart = now;
    this._renderOverlay();
    this._statsChanged.emit(this.stats);
  }

  private _renderOverlay(): void {
    const s = this._stats;
    const latency =
      s.latencyMs === null
        ? '–'
        : Math.abs(s.latencyMs) > 60000
          ? `${(s.latencyMs / 1000).toFixed(0)} s (board clock differs)`
          : `${Math.round(s.latencyMs)} ms`;
    const size = s.width ? `${s.width}×${s.height}` : '';
    this._overlay.textContent = '';
    for (const [k, v] of [
      ['fps', s.fps.toFixed(1)],
      ['latency', latency],
      ['kB/s', s.kbps.toFixed(0)],
      ['size', size]
    ]) {
      if (!v) {
        continue;
      }
      const item = document.createElement('span');
      item.className = `jp-RemoteDevice-overlayItem`;
      item.dataset.stat = k;
      item.textContent =
        `${v} ${k === 'size' || k === 'latency' ? '' : k}`.trim();
      if (k === 'latency') {
        item.title =
          'now − captured_at; the board clock may differ from this computer’s';
        item.textContent = `latency ${v}`;
      }
      this._overlay.appendChild(item);
    }
  }

  private _setState(state: StreamState): void {
    if (state === this._state) {
      return;
    }
    this._state = state;
    this.node.dataset.state = state;
    if (state === 'paused') {
      this._setMessage(this._current ? '' : 'Paused');
    }
    this._stateChanged.emit(state);
  }

  private _setMessage(text: string): void {
    this._message.textContent = text;
    this._message.style.display = text ? '' : 'none';
  }

  private _model: DevicesModel;
  private _deviceName: string;
  private _settings: IStreamSettings;
  private _socketFactory: SocketFactory;
  private _saveSnapshot?: (
    jpeg: Uint8Array,
    viewer: CameraViewer
  ) => Promise<string>;
  private _stage: HTMLDivElement;
  private _canvas: HTMLCanvasElement;
  private _overlay: HTMLDivElement;
  private _message: HTMLDivElement;
  private _showOverlay = true;
  private _socket: ISocketLike | null = null;
  private _paused = false;
  private _suspended = false;
  private _state: StreamState = 'closed';
  private _attempts = 0;
  private _retryTimer: ReturnType<typeof setTimeout> | null = null;
  private _pending: IFrame | null = null;
  private _decoding = false;
  private _nextBitmap: ImageBitmap | null = null;
  private _nextFrame: IFrame | null = null;
  private _current: IFrame | null = null;
  private _raf = 0;
  private _lastStatus = '';
  private _statusMsg: any = null;

  /** The last status message received on the socket. */
  get lastStatus(): any {
    return this._statusMsg;
  }
  private _statsTimer: ReturnType<typeof setInterval> | null = null;
  private _windowStart = 0;
  private _framesWindow = 0;
  private _bytesWindow = 0;
  private _stats: ICameraStats = {
    fps: 0,
    kbps: 0,
    latencyMs: null,
    width: 0,
    height: 0,
    seq: null,
    frames: 0
  };
  private _statsChanged = new Signal<this, ICameraStats>(this);
  private _stateChanged = new Signal<this, StreamState>(this);
  private _settingsChanged = new Signal<this, IStreamSettings>(this);
  private _nameChanged = new Signal<this, string>(this);
}

/** A <select> in a toolbar. */
function selectItem(
  className: string,
  title: string,
  options: { value: string; label: string }[],
  value: string,
  onChange: (value: string) => void
): { widget: Widget; select: HTMLSelectElement } {
  const widget = new Widget();
  widget.addClass('jp-RemoteDevice-toolbarSelect');
  const label = document.createElement('label');
  label.className = 'jp-RemoteDevice-selectLabel';
  label.title = title;
  const select = document.createElement('select');
  select.className = `jp-mod-styled ${className}`;
  select.setAttribute('aria-label', title);
  for (const o of options) {
    const opt = document.createElement('option');
    opt.value = o.value;
    opt.textContent = o.label;
    select.appendChild(opt);
  }
  if (!options.some(o => o.value === value)) {
    const opt = document.createElement('option');
    opt.value = value;
    opt.textContent = value;
    select.appendChild(opt);
  }
  select.value = value;
  select.addEventListener('change', () => onChange(select.value));
  label.appendChild(select);
  widget.node.appendChild(label);
  return { widget, select };
}

/** The main-area tab around a viewer, with its toolbar. */
export class CameraPanel extends MainAreaWidget<CameraViewer> {
  constructor(viewer: CameraViewer) {
    super({ content: viewer });
    this.addClass('jp-RemoteDevice-cameraPanel');
    this.title.icon = cameraIcon;
    this.title.closable = true;
    const setTitle = (name: string) => {
      this.title.label = `Camera: ${name}`;
      this.title.caption = `Live camera of ${name}`;
    };
    setTitle(viewer.deviceName);
    viewer.nameChanged.connect((_, name) => setTitle(name));
    const toolbar: Toolbar = this.toolbar;

    const pauseButton = new ToolbarButton({
      icon: pauseIcon,
      label: 'Pause',
      className: 'jp-RemoteDevice-pause',
      tooltip: 'Pause / resume the stream',
      onClick: () => {
        viewer.togglePause();
      }
    });
    const updatePause = () => {
      const paused = viewer.paused;
      pauseButton.node.dataset.paused = String(paused);
      const btn = pauseButton.node.querySelector('button');
      const lbl = pauseButton.node.querySelector(
        '.jp-ToolbarButtonComponent-label'
      );
      if (lbl) {
        lbl.textContent = paused ? 'Resume' : 'Pause';
      }
      if (btn) {
        btn.setAttribute(
          'title',
          paused ? 'Resume the stream' : 'Pause the stream'
        );
        btn.setAttribute('aria-pressed', String(paused));
      }
      const iconHost = pauseButton.node.querySelector(
        '.jp-ToolbarButtonComponent-icon'
      );
      if (iconHost) {
        (paused ? runIcon : pauseIcon).element({
          container: iconHost as HTMLElement
        });
      }
    };
    viewer.stateChanged.connect(() => updatePause());
    toolbar.addItem('pause', pauseButton);

    const s = viewer.settings;
    const res = selectItem(
      'jp-RemoteDevice-resolution',
      'Resolution (the board picks its nearest mode)',
      RESOLUTIONS.map(r => ({ value: r, label: r })),
      `${s.width}x${s.height}`,
      value => {
        const [width, height] = parseResolution(value);
        viewer.updateSettings({ width, height });
      }
    );
    toolbar.addItem('resolution', res.widget);
    const quality = selectItem(
      'jp-RemoteDevice-quality',
      'JPEG quality',
      QUALITIES.map(q => ({ value: String(q), label: `Q ${q}` })),
      String(s.quality),
      value => viewer.updateSettings({ quality: parseInt(value, 10) })
    );
    toolbar.addItem('quality', quality.widget);
    const fps = selectItem(
      'jp-RemoteDevice-fps',
      'Frame rate cap (0 = as fast as the board delivers)',
      FPS_CAPS.map(f => ({
        value: String(f),
        label: f === 0 ? 'max fps' : `${f} fps`
      })),
      String(s.fps),
      value => viewer.updateSettings({ fps: parseFloat(value) })
    );
    toolbar.addItem('fps', fps.widget);
    viewer.settingsChanged.connect((_, next) => {
      const r = `${next.width}x${next.height}`;
      for (const [sel, v] of [
        [res.select, r],
        [quality.select, String(next.quality)],
        [fps.select, String(next.fps)]
      ] as [HTMLSelectElement, string][]) {
        if (![...sel.options].some(o => o.value === v)) {
          const opt = document.createElement('option');
          opt.value = v;
          opt.textContent = v;
          sel.appendChild(opt);
        }
        sel.value = v;
      }
    });
    toolbar.addItem(
      'new-view',
      new ToolbarButton({
        icon: addIcon,
        className: 'jp-RemoteDevice-newView',
        tooltip:
          'Open another view of this camera beside this one (the board streams once)',
        onClick: () => this.newViewRequested?.()
      })
    );
    toolbar.addItem(
      'snapshot',
      new ToolbarButton({
        icon: snapshotIcon,
        label: 'Snapshot',
        className: 'jp-RemoteDevice-snapshot',
        tooltip:
          'Save the current frame as a JPEG in the file browser’s folder',
        onClick: () => {
          void this.snapshotRequested();
        }
      })
    );
  }

  /** Set by the plugin: open another view of the same board beside this one. */
  newViewRequested: (() => void) | null = null;

  /** Overridden by the plugin to report errors through the UI. */
  snapshotRequested: () => Promise<void> = async () => {
    await this.content.snapshot();
  };
}
