/**
 * Live camera viewer: a thin widget around a `CameraStream` (../camerastream.ts).
 * Frames are decoded off the main path (createImageBitmap), drawn on a <canvas>
 * in requestAnimationFrame (latest frame wins) and acknowledged once drawn, so
 * the server never sends more than the viewer can show.  Frame hooks
 * (`addFrameHook`) draw over each frame (vision tools); the overlay shows what the
 * server reports: fps delivered, capture-to-ack latency, link rate and RTT, the
 * quality and size in use.
 */
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

import { SocketFactory } from '../api';
import {
  CameraStream,
  IStreamFrame,
  IStreamSettings,
  IStreamStatus,
  SocketState
} from '../camerastream';
import { DevicesModel } from '../model';
import { CameraStatsMeter, ICameraStats, renderOverlay } from './cameraoverlay';

export { CameraPanel, RESOLUTIONS, QUALITIES, FPS_CAPS } from './camerapanel';
export type { IStreamSettings } from '../camerastream';
export type { ICameraStats } from './cameraoverlay';

export type StreamState =
  | 'idle'
  | 'connecting'
  | 'streaming'
  | 'paused'
  | 'hidden'
  | 'waiting'
  | 'closed';

/** Called after each frame is drawn, with the canvas context (draw overlays, read pixels). */
export type FrameHook = (
  ctx: CanvasRenderingContext2D,
  frame: IStreamFrame,
  viewer: CameraViewer
) => void;

export namespace CameraViewer {
  export interface IOptions {
    deviceId: string;
    deviceName: string;
    model: DevicesModel;
    settings: IStreamSettings;
    showOverlay: boolean;
    /** Server-side adaptive quality (default true). */
    adaptive?: boolean;
    socketFactory?: SocketFactory;
    /** Save a snapshot (JPEG bytes); returns the saved path. */
    saveSnapshot?: (jpeg: Uint8Array, viewer: CameraViewer) => Promise<string>;
  }
}

export class CameraViewer extends Widget {
  constructor(options: CameraViewer.IOptions) {
    super();
    this.addClass('jp-RemoteDevice-camera');
    this.deviceId = options.deviceId;
    this._deviceName = options.deviceName;
    this._model = options.model;
    this._saveSnapshot = options.saveSnapshot;
    this.stream = new CameraStream({
      deviceId: options.deviceId,
      settings: options.settings,
      socketFactory: options.socketFactory,
      adaptive: options.adaptive ?? true
    });
    this.stream.frameReceived.connect(this._onFrame, this);
    this.stream.statusChanged.connect(this._onStatus, this);
    this.stream.stateChanged.connect(this._onSocketState, this);
    this.node.dataset.deviceId = options.deviceId;
    this.node.tabIndex = -1;

    this._stage = document.createElement('div');
    this._stage.className = 'jp-RemoteDevice-stage';
    this._canvas = document.createElement('canvas');
    this._canvas.className = 'jp-RemoteDevice-canvas';
    this._canvas.width = options.settings.width;
    this._canvas.height = options.settings.height;
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

  /** The DOM-free stream under this viewer. */
  readonly stream: CameraStream;

  get deviceName(): string {
    return this._deviceName;
  }

  get canvas(): HTMLCanvasElement {
    return this._canvas;
  }

  get settings(): IStreamSettings {
    return this.stream.settings;
  }

  get paused(): boolean {
    return this._paused;
  }

  get state(): StreamState {
    return this._state;
  }

  get stats(): ICameraStats {
    return { ...this._meter.stats };
  }

  /** Emitted about twice a second while streaming, and on state changes. */
  get statsChanged(): ISignal<this, ICameraStats> {
    return this._statsChanged;
  }

  get stateChanged(): ISignal<this, StreamState> {
    return this._stateChanged;
  }

  get settingsChanged(): ISignal<this, IStreamSettings> {
    return this._settingsChanged;
  }

  get nameChanged(): ISignal<this, string> {
    return this._nameChanged;
  }

  /** Emitted after each frame is drawn (after the frame hooks ran). */
  get frameDrawn(): ISignal<this, IStreamFrame> {
    return this._frameDrawn;
  }

  /** The JPEG bytes of the frame on screen, if any. */
  get currentJpeg(): Uint8Array | null {
    return this._current ? this._current.image : null;
  }

  /** The frame on screen, if any. */
  get currentFrame(): IStreamFrame | null {
    return this._current;
  }

  /** The last status message received on the socket. */
  get lastStatus(): any {
    return this.stream.lastStatus;
  }

  get showOverlay(): boolean {
    return this._showOverlay;
  }

  set showOverlay(value: boolean) {
    this._showOverlay = value;
    this._overlay.style.display = value ? '' : 'none';
    this.node.classList.toggle('jp-mod-overlay', value);
  }

  get adaptive(): boolean {
    return this.stream.adaptive;
  }

  /** Run `hook` after every drawn frame; dispose the result to remove it. */
  addFrameHook(hook: FrameHook): IDisposable {
    this._hooks.push(hook);
    let disposed = false;
    return {
      get isDisposed() {
        return disposed;
      },
      dispose: () => {
        disposed = true;
        this._hooks = this._hooks.filter(h => h !== hook);
      }
    };
  }

  /** Change stream settings; sent on the open socket (no reconnect). */
  updateSettings(
    partial: Partial<IStreamSettings> & { adaptive?: boolean }
  ): void {
    if (this.stream.updateSettings(partial)) {
      this._settingsChanged.emit(this.stream.settings);
    }
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

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._stop();
    this.stream.dispose();
    this._model.deviceChanged.disconnect(this._onDeviceChanged, this);
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

  // -- stream lifecycle -------------------------------------------------------
  private get _shouldRun(): boolean {
    return (
      !this.isDisposed &&
      this.isAttached &&
      this.isVisible &&
      !this._paused &&
      !this._suspended
    );
  }

  private _maybeStart(): void {
    if (!this._shouldRun || this.stream.running) {
      return;
    }
    this.stream.start();
    this._meter.start();
  }

  private _stop(): void {
    this.stream.stop();
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

  private _onSocketState(
    _: CameraStream,
    change: { state: SocketState; reason: string }
  ): void {
    if (change.state === 'connecting') {
      this._setState('connecting');
      this._setMessage('Connecting to the camera…');
    } else if (change.state === 'open') {
      this._setState('streaming');
    } else if (change.state === 'waiting') {
      this._setState('waiting');
      const device = this._model.get(this.deviceId);
      if (device && device.status !== 'connected') {
        this._setMessage(this._notConnectedText(device.status));
      } else {
        const reason = change.reason;
        this._setMessage(
          `Camera stream closed${reason ? `: ${reason}` : ''}. Retrying…`
        );
      }
    }
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
    const waiting = this.stream.socketState === 'waiting';
    if (device.status === 'connected' && waiting && this._shouldRun) {
      // The board came (back): try now rather than waiting for the backoff.
      this.stream.retryNow();
    } else if (
      device.status !== 'connected' &&
      waiting &&
      this._state !== 'paused'
    ) {
      this._setMessage(this._notConnectedText(device.status));
    }
  }

  private _notConnectedText(status: string): string {
    const what =
      status === 'connecting'
        ? 'connecting…'
        : status === 'error'
          ? 'in error'
          : 'not connected';
    return `${this._deviceName} is ${what}. Connect it from the Devices sidebar; the stream resumes by itself.`;
  }

  private _onStatus(_: CameraStream, msg: IStreamStatus): void {
    const message = msg.message ?? msg.error ?? undefined;
    const state = msg.state;
    if (state === 'error' || msg.reason) {
      this._setMessage(message || state || 'Camera error');
    } else if (this._meter.stats.frames === 0 && (message || state)) {
      this._setMessage(message || `Camera: ${state}`);
    }
    this._meter.status(msg);
    this._renderOverlay();
  }

  // -- frames -----------------------------------------------------------------
  private _onFrame(_: CameraStream, frame: IStreamFrame): void {
    this._meter.frameReceived(frame);
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
          this.stream.done(frame); // undecodable: don't hold the window with it
          continue;
        }
        if (this.isDisposed || !this.stream.running) {
          bitmap.close();
          return;
        }
        if (this._nextBitmap) {
          this._nextBitmap.close(); // superseded before it was drawn
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
      for (const hook of this._hooks) {
        try {
          hook(ctx, frame, this);
        } catch (error) {
          console.warn('remote-device: a frame hook failed', error);
        }
      }
    }
    const { width, height } = bitmap; // a closed bitmap reports 0 x 0
    bitmap.close();
    this.stream.done(frame);
    this._current = frame;
    this._meter.frameDrawn(frame, width, height);
    const s = this._meter.stats;
    if (s.frames === 1 || this._message.textContent) {
      this._setMessage('');
    }
    if (s.frames === 1) {
      this._statsChanged.emit(this.stats);
    }
    this.node.dataset.frames = String(s.frames);
    this._frameDrawn.emit(frame);
  }

  // -- stats and overlay ------------------------------------------------------
  private _stopStats(): void {
    this._meter.stop();
    this._renderOverlay();
    this._statsChanged.emit(this.stats);
  }

  /** The meter recomputed the rates. */
  private _onStatsTick(): void {
    this._renderOverlay();
    this._statsChanged.emit(this.stats);
  }

  private _renderOverlay(): void {
    renderOverlay(this._overlay, this._meter.stats);
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
  private _saveSnapshot?: (
    jpeg: Uint8Array,
    viewer: CameraViewer
  ) => Promise<string>;
  private _stage: HTMLDivElement;
  private _canvas: HTMLCanvasElement;
  private _overlay: HTMLDivElement;
  private _message: HTMLDivElement;
  private _showOverlay = true;
  private _paused = false;
  private _suspended = false;
  private _state: StreamState = 'closed';
  private _hooks: FrameHook[] = [];
  private _pending: IStreamFrame | null = null;
  private _decoding = false;
  private _nextBitmap: ImageBitmap | null = null;
  private _nextFrame: IStreamFrame | null = null;
  private _current: IStreamFrame | null = null;
  private _raf = 0;
  private _meter = new CameraStatsMeter(() => this._onStatsTick());
  private _statsChanged = new Signal<this, ICameraStats>(this);
  private _stateChanged = new Signal<this, StreamState>(this);
  private _settingsChanged = new Signal<this, IStreamSettings>(this);
  private _nameChanged = new Signal<this, string>(this);
  private _frameDrawn = new Signal<this, IStreamFrame>(this);
}
