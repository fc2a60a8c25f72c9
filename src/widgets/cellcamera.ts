/**
 * Renderer for `application/vnd.jupyter.remote-device.camera+json` outputs
 * (`{"device", "width", "height", "device_id"?, "source"?}` beside an
 * `image/jpeg` still).
 *
 * - A live camera spec with the server's `device_id` (e.g. `%camera`) plays
 *   the board's camera stream over the server's camera WebSocket; the still
 *   shows until the first frame and when the stream cannot run.
 * - A display the kernel keeps updating (`display.show(img)`, up to 10 times a
 *   second through update_display_data) shows the still it carries.
 *
 * A saved notebook holds the still only, never a stream.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { PanelLayout, Widget } from '@lumino/widgets';

import { DevicesModel } from '../model';
import { CameraViewer } from './camera';

export const CAMERA_MIME = 'application/vnd.jupyter.remote-device.camera+json';

export interface ICameraSpec {
  device?: string;
  device_id?: string;
  width?: number;
  height?: number;
  source?: string;
  camera?: string | number;
}

export class CellCameraRenderer
  extends Widget
  implements IRenderMime.IRenderer
{
  constructor(
    private _model: DevicesModel,
    private _openTab: ((deviceId: string, name: string) => void) | null
  ) {
    super();
    this.addClass('jp-RemoteDevice-cellCamera');
    const layout = (this.layout = new PanelLayout());
    this._still = document.createElement('img');
    this._still.className = 'jp-RemoteDevice-cellStill';
    this._still.alt = 'camera still';
    const still = new Widget({ node: this._still });
    this._caption = document.createElement('div');
    this._caption.className = 'jp-RemoteDevice-cellCaption';
    layout.addWidget(still);
    layout.addWidget(new Widget({ node: this._caption }));
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const spec = (model.data[CAMERA_MIME] ?? {}) as ICameraSpec;
    const jpeg = model.data['image/jpeg'];
    if (typeof jpeg === 'string' && jpeg) {
      this._still.src = `data:image/jpeg;base64,${jpeg}`;
      this._still.style.display = '';
    } else if (!this._viewer) {
      this._still.style.display = 'none';
    }
    const live = !!spec.device_id && spec.source !== 'display.show';
    const name = spec.device || spec.device_id || 'board';
    if (live && !this._viewer) {
      const width = Number(spec.width) || 640;
      const height = Number(spec.height) || 480;
      const viewer = new CameraViewer({
        deviceId: String(spec.device_id),
        deviceName: name,
        model: this._model,
        settings: { width, height, quality: 80, fps: 15 },
        showOverlay: false
      });
      viewer.addClass('jp-RemoteDevice-cellViewer');
      viewer.statsChanged.connect((_, stats) => {
        // Keep the still until the stream draws.
        const drawing = stats.frames > 0;
        this._still.style.display = drawing ? 'none' : '';
        viewer.node.style.display = drawing ? '' : 'none';
      });
      viewer.node.style.display = 'none';
      this._viewer = viewer;
      (this.layout as PanelLayout).insertWidget(0, viewer);
      if (typeof IntersectionObserver !== 'undefined') {
        this._observer = new IntersectionObserver(entries => {
          const visible = entries.some(e => e.isIntersecting);
          this._viewer?.setSuspended(!visible);
        });
        this._observer.observe(this.node);
      }
    }
    this._caption.textContent = '';
    const label = document.createElement('span');
    label.textContent = live ? `Live camera of ${name}` : `Camera of ${name}`;
    this._caption.appendChild(label);
    if (spec.device_id && this._openTab) {
      const link = document.createElement('button');
      link.type = 'button';
      link.className =
        'jp-Button jp-mod-minimal jp-mod-small jp-RemoteDevice-cellOpenTab';
      link.textContent = 'Open in a tab';
      link.addEventListener('click', () =>
        this._openTab?.(String(spec.device_id), name)
      );
      this._caption.appendChild(link);
    }
    this.node.dataset.live = String(live);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._observer?.disconnect();
    this._observer = null;
    if (this._viewer) {
      this._viewer.dispose();
      this._viewer = null;
    }
    super.dispose();
  }

  private _still: HTMLImageElement;
  private _caption: HTMLDivElement;
  private _viewer: CameraViewer | null = null;
  private _observer: IntersectionObserver | null = null;
}

export function cameraRendererFactory(
  model: DevicesModel,
  openTab: ((deviceId: string, name: string) => void) | null
): IRenderMime.IRendererFactory {
  return {
    safe: true,
    mimeTypes: [CAMERA_MIME],
    defaultRank: 40,
    createRenderer: () => new CellCameraRenderer(model, openTab)
  };
}
