/**
 * The main-area tab around a camera viewer: pause, resolution, quality, fps cap,
 * adaptive quality ("auto"), another view, snapshot.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import {
  addIcon,
  pauseIcon,
  runIcon,
  Toolbar,
  ToolbarButton
} from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { parseResolution } from '../frame';
import { cameraIcon, snapshotIcon } from '../icons';
import type { CameraViewer } from './camera';

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
    toolbar.addItem('adaptive', adaptiveToggle(viewer));
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

/** A checkbox: let the server lower quality, then size, to fit the link. */
function adaptiveToggle(viewer: CameraViewer): Widget {
  const widget = new Widget();
  widget.addClass('jp-RemoteDevice-toolbarSelect');
  const label = document.createElement('label');
  label.className = 'jp-RemoteDevice-selectLabel jp-RemoteDevice-adaptive';
  label.title =
    'Auto quality: lower the JPEG quality, then the size, to hold the frame rate on a slow link (the quality and size chosen are the most it may use)';
  const box = document.createElement('input');
  box.type = 'checkbox';
  box.checked = viewer.adaptive;
  box.setAttribute('aria-label', 'Auto quality');
  box.addEventListener('change', () =>
    viewer.updateSettings({ adaptive: box.checked })
  );
  label.appendChild(box);
  label.appendChild(document.createTextNode(' auto'));
  widget.node.appendChild(label);
  return widget;
}
