/**
 * Status bar item: connected board(s) and the fps of the current camera tab.
 */
import { Widget } from '@lumino/widgets';

import { DevicesModel } from '../model';
import { CameraViewer, ICameraStats } from './camera';

export class DeviceStatusItem extends Widget {
  constructor(
    private _model: DevicesModel,
    onClick?: () => void
  ) {
    super();
    this.addClass('jp-RemoteDevice-statusItem');
    if (onClick) {
      this.node.style.cursor = 'pointer';
      this.node.addEventListener('click', onClick);
    }
    this.node.title = 'Remote devices';
    _model.changed.connect(this.update, this);
    this.update();
  }

  /** The camera whose fps is shown (the current camera tab). */
  setViewer(viewer: CameraViewer | null): void {
    if (viewer === this._viewer) {
      return;
    }
    if (this._viewer && !this._viewer.isDisposed) {
      this._viewer.statsChanged.disconnect(this._onStats, this);
      this._viewer.disposed.disconnect(this._onViewerDisposed, this);
    }
    this._viewer = viewer;
    this._fps = null;
    if (viewer) {
      viewer.statsChanged.connect(this._onStats, this);
      viewer.disposed.connect(this._onViewerDisposed, this);
    }
    this.update();
  }

  get hasContent(): boolean {
    return this._model.connectedDevices.length > 0 || !!this._viewer;
  }

  update(): void {
    if (this.isDisposed) {
      return;
    }
    const names = this._model.connectedDevices.map(d => d.name);
    let text = '';
    if (names.length === 1) {
      text = names[0];
    } else if (names.length > 1) {
      text = `${names.length} boards`;
    }
    if (this._viewer && this._fps !== null && this._fps > 0) {
      text += `${text ? ' · ' : ''}${this._fps.toFixed(1)} fps`;
    }
    this.node.textContent = text ? `● ${text}` : '';
    this.node.title = names.length
      ? `Connected: ${names.join(', ')}`
      : 'No board connected';
    this.node.style.display = text ? '' : 'none';
  }

  dispose(): void {
    this._model.changed.disconnect(this.update, this);
    this.setViewer(null);
    super.dispose();
  }

  private _onStats(_: CameraViewer, stats: ICameraStats): void {
    this._fps = stats.fps;
    this.update();
  }

  private _onViewerDisposed(): void {
    this._viewer = null;
    this._fps = null;
    this.update();
  }

  private _viewer: CameraViewer | null = null;
  private _fps: number | null = null;
}
