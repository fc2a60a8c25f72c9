/**
 * Dataset mode of a camera tab: a strip with a label; each click on "Save" (or
 * Space / S while the tab has focus) saves the frame on screen, as the board's
 * JPEG, into `dataset/<label>/` under the file browser's folder.
 */
import type { Contents } from '@jupyterlab/services';
import { PathExt } from '@jupyterlab/coreutils';

import { toBase64 } from '../frame';

export interface IDatasetHost {
  readonly node: HTMLElement;
  readonly currentJpeg: Uint8Array | null;
  readonly deviceName: string;
}

export interface IDatasetOptions {
  contents: Contents.IManager;
  /** The file browser's folder (the dataset goes below it). */
  folder: () => string;
  notify?: (message: string, error?: boolean) => void;
}

/** A label usable as a folder name, or null. */
export function cleanLabel(text: string): string | null {
  const t = text.trim();
  if (
    !t ||
    t.length > 64 ||
    !/^[A-Za-z0-9 _.-]+$/.test(t) ||
    t.startsWith('.')
  ) {
    return null;
  }
  return t;
}

/** `dataset/<label>/<label>_<stamp>_<n>.jpg` below `folder`. */
export function datasetPath(
  folder: string,
  label: string,
  n: number,
  date = new Date()
): string {
  const p = (v: number, w = 2) => String(v).padStart(w, '0');
  const stamp =
    `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-` +
    `${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}-${p(date.getMilliseconds(), 3)}`;
  const name = `${label.replace(/ /g, '_')}_${stamp}_${p(n, 4)}.jpg`;
  return PathExt.join(folder, 'dataset', label, name);
}

export class DatasetBar {
  constructor(host: IDatasetHost, options: IDatasetOptions) {
    this._host = host;
    this._opt = options;
    const bar = (this.node = document.createElement('div'));
    bar.className = 'jp-RemoteDevice-datasetBar';
    const label = document.createElement('label');
    label.textContent = 'Label ';
    this._label = document.createElement('input');
    this._label.className = 'jp-mod-styled jp-RemoteDevice-datasetLabel';
    this._label.value = 'object';
    this._label.setAttribute('aria-label', 'Dataset label');
    label.appendChild(this._label);
    this._save = document.createElement('button');
    this._save.className =
      'jp-Button jp-mod-styled jp-mod-accept jp-RemoteDevice-datasetSave';
    this._save.textContent = 'Save frame';
    this._save.title =
      'Save the frame on screen into dataset/<label>/ (Space or S)';
    this._save.addEventListener('click', () => void this.save());
    this._count = document.createElement('span');
    this._count.className = 'jp-RemoteDevice-datasetCount';
    bar.append(label, this._save, this._count);
    host.node.appendChild(bar);
    this._onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (
        t &&
        (t.tagName === 'INPUT' ||
          t.tagName === 'SELECT' ||
          t.tagName === 'TEXTAREA')
      ) {
        return;
      }
      if (e.key === ' ' || e.key === 's' || e.key === 'S') {
        e.preventDefault();
        e.stopPropagation();
        void this.save();
      }
    };
    host.node.addEventListener('keydown', this._onKey);
    this._render();
  }

  readonly node: HTMLDivElement;

  /** Frames saved per label in this tab. */
  get counts(): Record<string, number> {
    return { ...this._counts };
  }

  /** Save the frame on screen; resolves with its path (null when nothing was saved). */
  async save(): Promise<string | null> {
    const label = cleanLabel(this._label.value);
    if (!label) {
      this._opt.notify?.(
        'Use a label of letters, digits, space, _ . or - (no slash)',
        true
      );
      return null;
    }
    const jpeg = this._host.currentJpeg;
    if (!jpeg) {
      this._opt.notify?.('No frame to save yet', true);
      return null;
    }
    const data = jpeg.slice();
    const n = (this._counts[label] ?? 0) + 1;
    this._counts[label] = n;
    const path = datasetPath(this._opt.folder(), label, n);
    this._busy = this._busy.then(async () => {
      await this._ensureFolder(PathExt.dirname(path));
      await this._opt.contents.save(path, {
        type: 'file',
        format: 'base64',
        content: toBase64(data)
      });
    });
    try {
      await this._busy;
    } catch (e) {
      this._counts[label] = n - 1;
      this._busy = Promise.resolve();
      this._render();
      this._opt.notify?.(
        `Saving ${path} failed: ${(e as Error).message ?? e}`,
        true
      );
      return null;
    }
    this._last = path;
    this._render();
    return path;
  }

  dispose(): void {
    this._host.node.removeEventListener('keydown', this._onKey);
    this.node.remove();
  }

  private async _ensureFolder(dir: string): Promise<void> {
    const parts = dir.split('/').filter(Boolean);
    let cur = '';
    for (const part of parts) {
      cur = cur ? `${cur}/${part}` : part;
      if (this._made.has(cur)) {
        continue;
      }
      try {
        await this._opt.contents.get(cur, { content: false });
      } catch {
        await this._opt.contents.save(cur, { type: 'directory' });
      }
      this._made.add(cur);
    }
  }

  private _render(): void {
    const label = cleanLabel(this._label.value) ?? '';
    const n = this._counts[label] ?? 0;
    this._count.textContent = n ? `${n} saved in dataset/${label}/` : '';
    this._count.dataset.count = String(n);
    if (this._last) {
      this._count.title = `Last: ${this._last}`;
    }
  }

  private _host: IDatasetHost;
  private _opt: IDatasetOptions;
  private _label: HTMLInputElement;
  private _save: HTMLButtonElement;
  private _count: HTMLSpanElement;
  private _counts: Record<string, number> = {};
  private _made = new Set<string>();
  private _busy: Promise<void> = Promise.resolve();
  private _last = '';
  private _onKey: (e: KeyboardEvent) => void;
}
