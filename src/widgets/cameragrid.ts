/**
 * Camera grid: the cameras of several boards in one tab, for a room. Each tile is a small,
 * cheap `CameraStream` (160x120, low JPEG quality, a few fps, ack=1 with a window of 1: the
 * server sends the next frame only once this one is drawn); a click on a tile opens that
 * board's full camera tab. Tiles stop while the tab is hidden and follow the boards' status.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { IDevice, SocketFactory } from '../api';
import { CameraStream, IStreamFrame, IStreamSettings } from '../camerastream';
import { cameraIcon } from '../icons';
import { DevicesModel } from '../model';

/** What a tile asks for: small and cheap (a room of 30 boards stays light on the link). */
export const TILE_SETTINGS: IStreamSettings = {
  width: 160,
  height: 120,
  quality: 50,
  fps: 5
};

export namespace CameraGrid {
  export interface IOptions {
    model: DevicesModel;
    /** The boards to show, in order. */
    devices: ReadonlyArray<IDevice>;
    /** Open a board's full camera tab (a click on its tile). */
    openCamera: (device: IDevice) => void;
    settings?: IStreamSettings;
    socketFactory?: SocketFactory;
  }
}

class Tile {
  constructor(
    readonly device: IDevice,
    settings: IStreamSettings,
    socketFactory: SocketFactory | undefined,
    open: () => void
  ) {
    this.node = document.createElement('button');
    this.node.type = 'button';
    this.node.className = 'jp-RemoteDevice-gridTile';
    this.node.dataset.deviceId = device.id;
    this.node.dataset.deviceName = device.name;
    this.node.dataset.frames = '0';
    this.node.title = `Open the camera of ${device.name}`;
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'jp-RemoteDevice-gridCanvas';
    this.canvas.width = settings.width;
    this.canvas.height = settings.height;
    this._label = document.createElement('span');
    this._label.className = 'jp-RemoteDevice-gridLabel';
    this._label.textContent = device.name || device.host;
    this._state = document.createElement('span');
    this._state.className = 'jp-RemoteDevice-gridState';
    const caption = document.createElement('span');
    caption.className = 'jp-RemoteDevice-gridCaption';
    caption.append(this._label, this._state);
    this.node.append(this.canvas, caption);
    this.node.addEventListener('click', open);
    this.stream = new CameraStream({
      deviceId: device.id,
      settings,
      socketFactory,
      ack: true,
      adaptive: false,
      window: 1
    });
    this.stream.frameReceived.connect((_, frame) => this._onFrame(frame));
    this.stream.stateChanged.connect((_, { state, reason }) => {
      if (state === 'waiting') {
        this.setMessage(reason || 'reconnecting…');
      } else if (state === 'connecting' && !this._frames) {
        this.setMessage('connecting…');
      }
    });
  }

  readonly node: HTMLButtonElement;
  readonly canvas: HTMLCanvasElement;
  readonly stream: CameraStream;

  setMessage(text: string): void {
    this._state.textContent = text;
    this.node.dataset.state = text ? 'message' : 'streaming';
  }

  /** Follow the board: stream while it is connected and the grid is visible. */
  update(device: IDevice | undefined, visible: boolean): void {
    const connected = device?.status === 'connected';
    if (connected && visible) {
      if (!this.stream.running) {
        this.stream.start();
      }
      if (!this._frames) {
        this.setMessage('connecting…');
      }
    } else {
      if (this.stream.running) {
        this.stream.stop();
      }
      this.setMessage(
        !device ? 'removed' : connected ? 'paused' : (device.status ?? '')
      );
    }
    this.node.dataset.status = device?.status ?? 'removed';
  }

  dispose(): void {
    this._disposed = true;
    this.stream.dispose();
    this._pending = null;
  }

  /** Latest frame wins: one decode at a time, the newest waiting frame next. */
  private _onFrame(frame: IStreamFrame): void {
    if (this._pending) {
      this.stream.done(this._pending); // dropped for a newer one
    }
    this._pending = frame;
    if (!this._busy) {
      void this._drawLoop();
    }
  }

  private async _drawLoop(): Promise<void> {
    this._busy = true;
    try {
      while (this._pending && !this._disposed) {
        const frame = this._pending;
        this._pending = null;
        try {
          const bitmap = await createImageBitmap(
            new Blob([frame.image as BlobPart], { type: 'image/jpeg' })
          );
          if (!this._disposed) {
            const ctx = this.canvas.getContext('2d');
            if (
              this.canvas.width !== bitmap.width ||
              this.canvas.height !== bitmap.height
            ) {
              this.canvas.width = bitmap.width;
              this.canvas.height = bitmap.height;
            }
            ctx?.drawImage(bitmap, 0, 0);
            this._frames += 1;
            this.node.dataset.frames = String(this._frames);
            if (this._state.textContent) {
              this.setMessage('');
            }
          }
          bitmap.close?.();
        } catch {
          // an undecodable frame: skip it (and acknowledge it below)
        }
        this.stream.done(frame);
      }
    } finally {
      this._busy = false;
    }
  }

  private _label: HTMLElement;
  private _state: HTMLElement;
  private _pending: IStreamFrame | null = null;
  private _busy = false;
  private _frames = 0;
  private _disposed = false;
}

export class CameraGrid extends Widget {
  constructor(options: CameraGrid.IOptions) {
    super();
    this.addClass('jp-RemoteDevice-cameraGrid');
    this._model = options.model;
    const settings = options.settings ?? TILE_SETTINGS;
    for (const device of options.devices) {
      const tile = new Tile(device, settings, options.socketFactory, () => {
        const current = this._model.get(device.id) ?? device;
        options.openCamera(current);
      });
      this._tiles.push(tile);
      this.node.appendChild(tile.node);
    }
    this.node.dataset.tiles = String(this._tiles.length);
    this._model.changed.connect(this._update, this);
  }

  get deviceIds(): string[] {
    return this._tiles.map(t => t.device.id);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._model.changed.disconnect(this._update, this);
    for (const tile of this._tiles) {
      tile.dispose();
    }
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._update();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._update();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._update();
  }

  protected onBeforeDetach(msg: Message): void {
    for (const tile of this._tiles) {
      tile.update(this._model.get(tile.device.id), false);
    }
    super.onBeforeDetach(msg);
  }

  private _update(): void {
    const visible = this.isAttached && this.isVisible;
    for (const tile of this._tiles) {
      tile.update(this._model.get(tile.device.id), visible);
    }
  }

  private _model: DevicesModel;
  private _tiles: Tile[] = [];
}

/** The grid in a main-area tab. */
export class CameraGridPanel extends MainAreaWidget<CameraGrid> {
  constructor(grid: CameraGrid) {
    super({ content: grid });
    this.addClass('jp-RemoteDevice-cameraGridPanel');
    const n = grid.deviceIds.length;
    this.title.label = `Camera grid (${n} board${n === 1 ? '' : 's'})`;
    this.title.icon = cameraIcon;
    this.title.closable = true;
  }
}
