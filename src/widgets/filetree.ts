/**
 * "Files" section of the Devices sidebar: the connected board's `--root` as a
 * lazily expanded tree, with Pull to workspace, Delete, New folder, Rename,
 * Refresh, and drag-and-drop from the file browser (a push job).
 */
import {
  Dialog,
  InputDialog,
  Notification,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { Contents } from '@jupyterlab/services';
import {
  fileIcon,
  folderIcon,
  LabIcon,
  newFolderIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import type { Drag } from '@lumino/dragdrop';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { IDevice, IJob } from '../api';
import {
  bytesToBase64,
  IFileEntry,
  IFilesApi,
  restFilesApi
} from '../filesapi';
import { DevicesModel, Format, isJobFinished } from '../model';
import { followJob, jobProgress } from './jobs';
import { h } from './sidebar';

/** The mime type the JupyterLab file browser puts the dragged paths under. */
export const CONTENTS_MIME = 'application/x-jupyter-icontents';

/** One transfer shown with a progress bar in the panel. */
export interface ITransfer {
  key: string;
  kind: 'pull' | 'push';
  label: string;
  done: number;
  total: number;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  error?: string;
  /** A pull whose bytes arrived and are being written into the workspace. */
  saving?: boolean;
}

/** Most entries a folder pull walks. */
export const MAX_PULL_ENTRIES = 2000;

/** Chunk size of workspace saves (as the file browser's uploads). */
export const SAVE_CHUNK = 1024 * 1024;

/**
 * Write bytes into the workspace through the contents API: in one request
 * when small, else in chunks (`chunk` 1, 2, ..., -1 for the last one).
 */
export async function saveToWorkspace(
  contents: Contents.IManager,
  path: string,
  data: Uint8Array,
  chunkSize = SAVE_CHUNK
): Promise<void> {
  if (data.length <= chunkSize) {
    await contents.save(path, {
      type: 'file',
      format: 'base64',
      content: bytesToBase64(data)
    });
    return;
  }
  for (let start = 0, n = 1; start < data.length; start += chunkSize, n++) {
    const last = start + chunkSize >= data.length;
    await contents.save(path, {
      type: 'file',
      format: 'base64',
      content: bytesToBase64(data.subarray(start, start + chunkSize)),
      chunk: last ? -1 : n
    });
  }
}

export namespace DeviceFilesPanel {
  export interface IOptions {
    model: DevicesModel;
    /** The workspace contents manager (pull saves there). */
    contents?: Contents.IManager | null;
    /** The file browser's current folder ('' = workspace root). */
    currentFolder?: () => string;
    /** REST calls (tests pass a fake). */
    api?: IFilesApi;
    /** Milliseconds a finished transfer stays visible. */
    keepFinishedMs?: number;
  }
}

/** Format a modification time (epoch seconds) compactly. */
export function formatMtime(
  mtime: number | null | undefined,
  now = Date.now()
): string {
  if (mtime === null || mtime === undefined || !isFinite(mtime)) {
    return '';
  }
  const d = new Date(mtime * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const today = new Date(now);
  if (
    d.getFullYear() === today.getFullYear() &&
    d.getMonth() === today.getMonth() &&
    d.getDate() === today.getDate()
  ) {
    return time;
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** Join a device folder and a name ('' is the board's root). */
export function joinDevicePath(folder: string, name: string): string {
  const f = folder.replace(/^\/+|\/+$/g, '');
  return f ? `${f}/${name}` : name;
}

/** Check a single file/folder name typed by the user; null when fine. */
export function checkName(name: string): string | null {
  const n = name.trim();
  if (!n) {
    return 'The name is empty.';
  }
  if (n === '.' || n === '..' || /[/\\\0]/.test(n)) {
    return `"${n}" is not a valid name (no slashes, not "." or "..").`;
  }
  return null;
}

function errorText(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

export class DeviceFilesPanel extends Widget {
  constructor(options: DeviceFilesPanel.IOptions) {
    super();
    this._model = options.model;
    this._api = options.api ?? restFilesApi;
    this._contents = options.contents ?? null;
    this._currentFolder = options.currentFolder ?? (() => '');
    this._keepFinishedMs = options.keepFinishedMs ?? 6000;
    this.id = 'jp-remote-device-files';
    this.addClass('jp-RemoteDevice-files');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Files on the board');
    this._model.changed.connect(this._onDevices, this);
    this._model.jobChanged.connect(this._onJob, this);
    this._onDevices();
  }

  /** The board whose files are shown (null when none is connected). */
  get deviceId(): string | null {
    return this._deviceId;
  }

  /** Show another connected board. */
  setDevice(id: string | null): void {
    if (id === this._deviceId) {
      return;
    }
    this._deviceId = id;
    this._listings.clear();
    this._errors.clear();
    this._expanded = new Set(['']);
    if (id) {
      void this.load('');
    }
    this._render();
  }

  /** Entries of a loaded folder (undefined when not loaded). */
  entries(path: string): ReadonlyArray<IFileEntry> | undefined {
    return this._listings.get(path);
  }

  get transfers(): ReadonlyArray<ITransfer> {
    return [...this._transfers.values()];
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._model.changed.disconnect(this._onDevices, this);
    this._model.jobChanged.disconnect(this._onJob, this);
    for (const t of this._timers) {
      clearTimeout(t);
    }
    super.dispose();
  }

  /** (Re)load one folder. */
  async load(path: string): Promise<void> {
    const id = this._deviceId;
    if (!id) {
      return;
    }
    this._loading.add(path);
    this._render();
    try {
      const listing = await this._api.list(id, path);
      if (id !== this._deviceId) {
        return;
      }
      const entries = [...(listing.entries ?? [])].sort((a, b) =>
        a.type !== b.type
          ? a.type === 'directory'
            ? -1
            : 1
          : a.name.localeCompare(b.name)
      );
      this._listings.set(path, entries);
      this._errors.delete(path);
      // Forget expanded sub-folders that are gone.
      for (const p of [...this._expanded]) {
        if (
          p &&
          PathExt.dirname(p) === path &&
          !entries.some(
            e => e.type === 'directory' && joinDevicePath(path, e.name) === p
          )
        ) {
          this._expanded.delete(p);
        }
      }
    } catch (error) {
      if (id !== this._deviceId) {
        return;
      }
      this._errors.set(path, errorText(error));
      if (path && (error as any)?.status === 404) {
        this._expanded.delete(path);
      }
    } finally {
      this._loading.delete(path);
      this._render();
    }
  }

  /** Reload every expanded folder. */
  async refresh(): Promise<void> {
    const paths = [...this._expanded].filter(
      p => p === '' || this._isVisible(p)
    );
    await Promise.all(paths.map(p => this.load(p)));
  }

  /** Expand or collapse a folder (loads it the first time). */
  async toggle(path: string): Promise<void> {
    if (this._expanded.has(path)) {
      this._expanded.delete(path);
      this._render();
      return;
    }
    this._expanded.add(path);
    this._render();
    if (!this._listings.has(path)) {
      await this.load(path);
    }
  }

  /** Ask for a name and make a folder inside `parent`. */
  async newFolder(parent = ''): Promise<void> {
    const id = this._deviceId;
    if (!id) {
      return;
    }
    const result = await InputDialog.getText({
      title: 'New folder on the board',
      label: `Name (in ${parent ? `/${parent}` : 'the board’s root'})`,
      text: 'untitled-folder'
    });
    if (!result.button.accept || result.value === null) {
      return;
    }
    const bad = checkName(result.value);
    if (bad) {
      await showErrorMessage('New folder', bad);
      return;
    }
    const path = joinDevicePath(parent, result.value.trim());
    try {
      await this._api.mkdir(id, path);
    } catch (error) {
      await showErrorMessage('Could not make the folder', errorText(error));
      return;
    }
    if (parent) {
      this._expanded.add(parent);
    }
    await this.load(parent);
  }

  /** Ask for a new name and rename an entry. */
  async rename(path: string): Promise<void> {
    const id = this._deviceId;
    if (!id) {
      return;
    }
    const name = PathExt.basename(path);
    const result = await InputDialog.getText({
      title: `Rename ${name}`,
      label: 'New name',
      text: name
    });
    if (
      !result.button.accept ||
      result.value === null ||
      result.value.trim() === name
    ) {
      return;
    }
    const bad = checkName(result.value);
    if (bad) {
      await showErrorMessage('Rename', bad);
      return;
    }
    const parent = parentOf(path);
    const target = joinDevicePath(parent, result.value.trim());
    try {
      await this._api.rename(id, path, target);
    } catch (error) {
      await showErrorMessage(`Could not rename ${name}`, errorText(error));
      return;
    }
    if (this._expanded.delete(path)) {
      this._expanded.add(target);
    }
    await this.load(parent);
  }

  /** Confirm, then delete a file or (recursively) a folder. */
  async remove(path: string, type: 'file' | 'directory'): Promise<boolean> {
    const id = this._deviceId;
    if (!id) {
      return false;
    }
    const name = PathExt.basename(path);
    const ok = await showDialog({
      title:
        type === 'directory'
          ? 'Delete folder on the board'
          : 'Delete file on the board',
      body:
        type === 'directory'
          ? `Delete the folder "${path}" and everything in it from ${this._deviceName()}? This cannot be undone.`
          : `Delete "${path}" from ${this._deviceName()}? This cannot be undone.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!ok.button.accept) {
      return false;
    }
    try {
      await this._api.remove(id, path, type === 'directory');
    } catch (error) {
      await showErrorMessage(`Could not delete ${name}`, errorText(error));
      return false;
    }
    this._expanded.delete(path);
    await this.load(parentOf(path));
    return true;
  }

  /**
   * Download a board file (or a whole folder) and save it into the workspace
   * (the file browser's current folder), asking for the name.
   */
  async pull(path: string, saveAs?: string): Promise<string | null> {
    const id = this._deviceId;
    const contents = this._contents;
    if (!id || !contents) {
      return null;
    }
    const name = PathExt.basename(path);
    const isDir = this._entry(path)?.type === 'directory';
    let target = saveAs;
    if (target === undefined) {
      const folder = this._currentFolder();
      const result = await InputDialog.getText({
        title: `Pull ${name}${isDir ? ' (folder)' : ''} to the workspace`,
        label: 'Save as (workspace path)',
        text: folder ? PathExt.join(folder, name) : name
      });
      if (!result.button.accept || !result.value) {
        return null;
      }
      target = result.value.replace(/^\/+/, '');
    }
    const key = `pull:${path}:${Date.now()}`;
    const transfer: ITransfer = {
      key,
      kind: 'pull',
      label: `${name} → ${target}`,
      done: 0,
      total: isDir ? 0 : (this._entry(path)?.size ?? 0),
      state: 'running'
    };
    this._transfers.set(key, transfer);
    this._render();
    const progress = (base: number) => (done: number) => {
      transfer.done = base + done;
      this._renderTransfers();
    };
    try {
      let bytes = 0;
      let count = 1;
      if (isDir) {
        const { dirs, files } = await this._walk(id, path);
        transfer.total = files.reduce((n, f) => n + f.size, 0);
        count = files.length;
        for (const rel of ['', ...dirs]) {
          await contents.save(rel ? PathExt.join(target, rel) : target, {
            type: 'directory'
          });
        }
        for (const f of files) {
          transfer.saving = false;
          const data = await this._api.download(
            id,
            joinDevicePath(path, f.rel),
            progress(bytes)
          );
          transfer.saving = true;
          this._renderTransfers();
          await saveToWorkspace(contents, PathExt.join(target, f.rel), data);
          bytes += data.length;
        }
      } else {
        const data = await this._api.download(id, path, (done, total) => {
          transfer.total = total || transfer.total;
          progress(0)(done);
        });
        transfer.saving = true;
        this._renderTransfers();
        await saveToWorkspace(contents, target, data);
        bytes = data.length;
      }
      transfer.state = 'done';
      transfer.done = bytes;
      transfer.total = bytes;
      Notification.success(
        `Pulled ${name} to ${target} (${isDir ? `${count} file${count === 1 ? '' : 's'}, ` : ''}${Format.bytes(bytes)}).`,
        { autoClose: 5000 }
      );
      return target;
    } catch (error) {
      transfer.state = 'failed';
      transfer.error = errorText(error);
      Notification.error(`Could not pull ${name}: ${transfer.error}`, {
        autoClose: false
      });
      return null;
    } finally {
      this._finishTransfer(key);
    }
  }

  /** Every folder and file under a board folder (paths relative to it). */
  private async _walk(
    id: string,
    root: string
  ): Promise<{ dirs: string[]; files: { rel: string; size: number }[] }> {
    const dirs: string[] = [];
    const files: { rel: string; size: number }[] = [];
    const queue = [''];
    while (queue.length) {
      const rel = queue.shift()!;
      const listing = await this._api.list(
        id,
        rel ? joinDevicePath(root, rel) : root
      );
      for (const e of listing.entries ?? []) {
        const child = rel ? `${rel}/${e.name}` : e.name;
        if (e.type === 'directory') {
          dirs.push(child);
          queue.push(child);
        } else {
          files.push({ rel: child, size: e.size });
        }
        if (dirs.length + files.length > MAX_PULL_ENTRIES) {
          throw new Error(
            `${root} holds more than ${MAX_PULL_ENTRIES} entries: pull its sub-folders one by one.`
          );
        }
      }
    }
    return { dirs, files };
  }

  /** Push workspace paths into a board folder (what a drop does). */
  async push(sources: string[], folder: string): Promise<IJob[]> {
    const id = this._deviceId;
    if (!id) {
      return [];
    }
    const jobs: Promise<IJob>[] = [];
    for (const source of sources) {
      const clean = source.replace(/^[^/:]+:/, '').replace(/^\/+/, '');
      const base = PathExt.basename(clean);
      if (!base) {
        continue;
      }
      const dest = joinDevicePath(folder, base);
      const what = `${base} to ${this._deviceName()}:${dest}`;
      try {
        const job = await this._model.push(id, clean, dest);
        this._trackJob(job, `${base} → ${dest}`);
        jobs.push(followJob(this._model, job, what));
      } catch (error) {
        await showErrorMessage(`Could not push ${base}`, errorText(error));
      }
    }
    return Promise.all(jobs);
  }

  /** Handle the Lumino drag events (drop from the file browser). */
  handleEvent(event: Event): void {
    switch (event.type) {
      case 'lm-dragenter':
      case 'lm-dragover': {
        const e = event as Drag.Event;
        if (!this._deviceId || !e.mimeData.hasData(CONTENTS_MIME)) {
          return;
        }
        e.preventDefault();
        e.stopPropagation();
        e.dropAction = e.proposedAction === 'none' ? 'none' : e.proposedAction;
        this._setDropTarget(this._dropFolderNode(e.target as HTMLElement));
        break;
      }
      case 'lm-dragleave': {
        const e = event as Drag.Event;
        const related = e.relatedTarget as HTMLElement | null;
        if (!related || !this.node.contains(related)) {
          this._setDropTarget(null);
        }
        break;
      }
      case 'lm-drop': {
        const e = event as Drag.Event;
        if (!this._deviceId || !e.mimeData.hasData(CONTENTS_MIME)) {
          return;
        }
        e.preventDefault();
        e.stopPropagation();
        const target = this._dropFolderNode(e.target as HTMLElement);
        const folder = target?.dataset.path ?? '';
        this._setDropTarget(null);
        const paths = e.mimeData.getData(CONTENTS_MIME);
        e.dropAction = e.proposedAction;
        const list: string[] = Array.isArray(paths)
          ? paths
          : typeof paths === 'string'
            ? [paths]
            : [];
        if (list.length) {
          void this.push(list, folder);
        }
        break;
      }
      default:
        break;
    }
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    for (const type of [
      'lm-dragenter',
      'lm-dragover',
      'lm-dragleave',
      'lm-drop'
    ]) {
      this.node.addEventListener(type, this);
    }
  }

  protected onBeforeDetach(msg: Message): void {
    for (const type of [
      'lm-dragenter',
      'lm-dragover',
      'lm-dragleave',
      'lm-drop'
    ]) {
      this.node.removeEventListener(type, this);
    }
    super.onBeforeDetach(msg);
  }

  /** The folder node a drop at `el` goes into (the tree root node for ''). */
  private _dropFolderNode(el: HTMLElement | null): HTMLElement | null {
    const item = el?.closest?.(
      '.jp-RemoteDevice-fileRow'
    ) as HTMLElement | null;
    if (item && this.node.contains(item)) {
      if (item.dataset.type === 'directory') {
        return item;
      }
      const parent = item.parentElement?.closest(
        '.jp-RemoteDevice-fileRow, .jp-RemoteDevice-fileTree'
      ) as HTMLElement | null;
      return parent;
    }
    return this.node.querySelector('.jp-RemoteDevice-fileTree');
  }

  private _setDropTarget(node: HTMLElement | null): void {
    for (const el of Array.from(
      this.node.querySelectorAll('.jp-mod-dropTarget')
    )) {
      if (el !== node) {
        el.classList.remove('jp-mod-dropTarget');
      }
    }
    node?.classList.add('jp-mod-dropTarget');
  }

  private _trackJob(job: IJob, label: string): void {
    const key = `push:${job.id}`;
    this._transfers.set(key, {
      key,
      kind: 'push',
      label,
      done: job.bytes_done,
      total: job.bytes_total,
      state: job.state
    });
    this._jobKeys.set(job.id, key);
    this._render();
    const latest = this._model.getJob(job.id);
    if (latest && isJobFinished(latest)) {
      this._onJob(this._model, latest);
    }
  }

  private _onJob(_: DevicesModel, job: IJob): void {
    const key = this._jobKeys.get(job.id);
    if (key) {
      const t = this._transfers.get(key);
      if (t) {
        t.done = job.bytes_total
          ? job.bytes_done
          : Math.round(jobProgress(job) * 100);
        t.total = job.bytes_total || 100;
        t.state = job.state;
        t.error = job.error ?? undefined;
        if (isJobFinished(job)) {
          this._jobKeys.delete(job.id);
          this._finishTransfer(key);
        } else {
          this._renderTransfers();
        }
      }
    }
    // A push to the shown board (from here, the palette or the file browser)
    // changes its files: reload what is open.
    // (A job that ends before its POST reply comes back carries no device:
    // reload then too, once per job.)
    if (
      isJobFinished(job) &&
      (!job.device || job.device === this._deviceId) &&
      !this._refreshedJobs.has(job.id)
    ) {
      this._refreshedJobs.add(job.id);
      void this.refresh();
    }
  }

  private _finishTransfer(key: string): void {
    this._render();
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      const t = this._transfers.get(key);
      if (t && t.state !== 'failed') {
        this._transfers.delete(key);
        this._renderTransfers();
      }
    }, this._keepFinishedMs);
    this._timers.add(timer);
  }

  private _onDevices(): void {
    const connected = this._model.connectedDevices;
    this.setHidden(connected.length === 0);
    const current = this._deviceId
      ? this._model.get(this._deviceId)
      : undefined;
    if (!current || current.status !== 'connected') {
      this.setDevice(connected.length ? connected[0].id : null);
    }
    const key = JSON.stringify(connected.map(d => [d.id, d.name]));
    if (key !== this._devicesKey) {
      this._devicesKey = key;
      this._render();
    }
  }

  private _deviceName(): string {
    const d: IDevice | undefined = this._deviceId
      ? this._model.get(this._deviceId)
      : undefined;
    return d?.name ?? 'the board';
  }

  private _entry(path: string): IFileEntry | undefined {
    return this._listings
      .get(parentOf(path))
      ?.find(e => e.name === PathExt.basename(path));
  }

  private _isVisible(path: string): boolean {
    let p = parentOf(path);
    for (;;) {
      if (!this._expanded.has(p)) {
        return false;
      }
      if (p === '') {
        return true;
      }
      p = parentOf(p);
    }
  }

  private _button(
    label: string | LabIcon,
    cls: string,
    title: string,
    onClick: () => void
  ): HTMLButtonElement {
    const btn = h(
      'button',
      {
        type: 'button',
        class: `jp-Button jp-mod-small jp-mod-minimal jp-RemoteDevice-fileAction ${cls}`,
        title,
        'aria-label': title
      },
      typeof label === 'string'
        ? label
        : label.element({
            tag: 'span',
            className: 'jp-RemoteDevice-fileActionIcon'
          })
    ) as HTMLButtonElement;
    btn.addEventListener('click', event => {
      event.stopPropagation();
      onClick();
    });
    return btn;
  }

  /** Rebuild the DOM (a few dozen rows at most in practice). */
  private _render(): void {
    if (this.isDisposed) {
      return;
    }
    const node = this.node;
    const scroll = node.scrollTop;
    // Keep the keyboard focus on the same entry across renders.
    const active = document.activeElement as HTMLElement | null;
    const focusPath =
      active && node.contains(active)
        ? ((active.closest('.jp-RemoteDevice-fileRow') as HTMLElement | null)
            ?.dataset.path ?? null)
        : null;
    node.textContent = '';
    const connected = this._model.connectedDevices;
    node.dataset.deviceId = this._deviceId ?? '';
    const header = h(
      'div',
      { class: 'jp-RemoteDevice-filesHeader' },
      h('span', { class: 'jp-RemoteDevice-filesTitle' }, 'Files')
    );
    if (connected.length > 1) {
      const select = h('select', {
        class: 'jp-RemoteDevice-filesDevice',
        'aria-label': 'Board whose files are shown'
      }) as HTMLSelectElement;
      for (const d of connected) {
        const opt = h('option', { value: d.id }, d.name) as HTMLOptionElement;
        opt.selected = d.id === this._deviceId;
        select.appendChild(opt);
      }
      select.addEventListener('change', () => this.setDevice(select.value));
      header.appendChild(select);
    } else if (connected.length === 1) {
      header.appendChild(
        h(
          'span',
          {
            class: 'jp-RemoteDevice-filesDeviceName',
            title: connected[0].name
          },
          connected[0].name
        )
      );
    }
    const tools = h('span', { class: 'jp-RemoteDevice-filesTools' });
    tools.appendChild(
      this._button(
        newFolderIcon,
        'jp-RemoteDevice-files-mkdir',
        'New folder in the board’s root',
        () => void this.newFolder('')
      )
    );
    tools.appendChild(
      this._button(
        refreshIcon,
        'jp-RemoteDevice-files-refresh',
        'Reload the board’s files',
        () => void this.refresh()
      )
    );
    header.appendChild(tools);
    node.appendChild(header);
    const transfers = h('div', { class: 'jp-RemoteDevice-transfers' });
    node.appendChild(transfers);
    this._transfersNode = transfers;
    this._renderTransfers();
    if (!this._deviceId) {
      node.appendChild(
        h(
          'div',
          { class: 'jp-RemoteDevice-filesEmpty' },
          'Connect a board to browse its files.'
        )
      );
      return;
    }
    const tree = h('ul', {
      class: 'jp-RemoteDevice-fileTree',
      role: 'tree',
      'data-path': '',
      title: 'Drop files from the file browser here to push them to the board'
    });
    this._renderFolder(tree, '', 0);
    node.appendChild(tree);
    node.scrollTop = scroll;
    if (focusPath !== null) {
      const item = tree.querySelector(
        `.jp-RemoteDevice-fileRow[data-path="${CSS.escape(focusPath)}"] > .jp-RemoteDevice-fileItem`
      ) as HTMLElement | null;
      item?.focus();
    }
  }

  private _renderFolder(
    container: HTMLElement,
    path: string,
    depth: number
  ): void {
    const error = this._errors.get(path);
    const entries = this._listings.get(path);
    if (error) {
      container.appendChild(
        h(
          'li',
          {
            class: 'jp-RemoteDevice-filesError',
            role: 'none',
            style: `padding-left: ${8 + depth * 14}px`
          },
          error
        )
      );
    }
    if (!entries) {
      if (this._loading.has(path)) {
        container.appendChild(
          h(
            'li',
            {
              class: 'jp-RemoteDevice-filesLoading',
              role: 'none',
              style: `padding-left: ${8 + depth * 14}px`
            },
            'Loading…'
          )
        );
      }
      return;
    }
    if (entries.length === 0 && !error) {
      container.appendChild(
        h(
          'li',
          {
            class: 'jp-RemoteDevice-filesEmpty',
            role: 'none',
            style: `padding-left: ${8 + depth * 14}px`
          },
          path
            ? '(empty folder)'
            : 'No files yet. Drop files here from the file browser.'
        )
      );
    }
    for (const entry of entries) {
      container.appendChild(this._row(path, entry, depth));
    }
  }

  private _row(parent: string, entry: IFileEntry, depth: number): HTMLElement {
    const path = joinDevicePath(parent, entry.name);
    const isDir = entry.type === 'directory';
    const expanded = isDir && this._expanded.has(path);
    const li = h('li', {
      class: `jp-RemoteDevice-fileRow${isDir ? ' jp-mod-directory' : ''}`,
      role: 'treeitem',
      'data-path': path,
      'data-name': entry.name,
      'data-type': entry.type,
      'aria-expanded': isDir ? String(expanded) : undefined
    });
    const item = h(
      'div',
      {
        class: 'jp-RemoteDevice-fileItem',
        style: `padding-left: ${4 + depth * 14}px`,
        tabindex: '0'
      },
      h(
        'span',
        { class: 'jp-RemoteDevice-fileTwisty', 'aria-hidden': 'true' },
        isDir ? (expanded ? '▾' : '▸') : ''
      ),
      (isDir ? folderIcon : fileIcon).element({
        tag: 'span',
        className: 'jp-RemoteDevice-fileIcon'
      }),
      h('span', { class: 'jp-RemoteDevice-fileName', title: path }, entry.name),
      h(
        'span',
        { class: 'jp-RemoteDevice-fileSize' },
        isDir ? '' : Format.bytes(entry.size)
      ),
      h(
        'span',
        {
          class: 'jp-RemoteDevice-fileMtime',
          title: entry.mtime
            ? new Date(entry.mtime * 1000).toLocaleString()
            : undefined
        },
        formatMtime(entry.mtime)
      )
    );
    const actions = h('span', { class: 'jp-RemoteDevice-fileActions' });
    if (isDir) {
      actions.appendChild(
        this._button(
          '+',
          'jp-RemoteDevice-fileAction-mkdir',
          `New folder in ${entry.name}`,
          () => void this.newFolder(path)
        )
      );
    }
    actions.appendChild(
      this._button(
        '⤓',
        'jp-RemoteDevice-fileAction-pull',
        `Pull ${entry.name} to the workspace`,
        () => void this.pull(path)
      )
    );
    actions.appendChild(
      this._button(
        '✎',
        'jp-RemoteDevice-fileAction-rename',
        `Rename ${entry.name}`,
        () => void this.rename(path)
      )
    );
    actions.appendChild(
      this._button(
        '✕',
        'jp-RemoteDevice-fileAction-delete',
        `Delete ${entry.name}`,
        () => void this.remove(path, entry.type)
      )
    );
    item.appendChild(actions);
    if (isDir) {
      item.addEventListener('click', () => void this.toggle(path));
    } else {
      item.addEventListener('dblclick', () => void this.pull(path));
    }
    // Keyboard: Enter/Space opens a folder or pulls a file, F2 renames, Delete deletes.
    item.addEventListener('keydown', event => {
      if (event.target !== item) {
        return;
      }
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        void (isDir ? this.toggle(path) : this.pull(path));
      } else if (event.key === 'F2') {
        event.preventDefault();
        void this.rename(path);
      } else if (event.key === 'Delete') {
        event.preventDefault();
        void this.remove(path, entry.type);
      }
    });
    li.appendChild(item);
    if (expanded) {
      const group = h('ul', {
        class: 'jp-RemoteDevice-fileGroup',
        role: 'group'
      });
      this._renderFolder(group, path, depth + 1);
      li.appendChild(group);
    }
    return li;
  }

  private _renderTransfers(): void {
    const node = this._transfersNode;
    if (!node || this.isDisposed) {
      return;
    }
    node.textContent = '';
    for (const t of this._transfers.values()) {
      const fraction =
        t.state === 'done'
          ? 1
          : t.total > 0
            ? Math.min(1, t.done / t.total)
            : 0;
      const progress = h('progress', {
        class: 'jp-RemoteDevice-transferBar',
        max: '1',
        value: String(fraction)
      });
      const verb = t.kind === 'pull' ? 'Pull' : 'Push';
      const status =
        t.state === 'running'
          ? t.saving
            ? 'saving into the workspace…'
            : t.total
              ? `${Format.bytes(t.done)} of ${Format.bytes(t.total)}`
              : 'starting…'
          : t.state === 'done'
            ? 'done'
            : t.state === 'cancelled'
              ? 'cancelled'
              : `failed: ${t.error ?? 'unknown error'}`;
      const row = h(
        'div',
        {
          class: `jp-RemoteDevice-transfer jp-mod-${t.state}`,
          'data-kind': t.kind,
          'data-state': t.state,
          title: t.error ?? undefined
        },
        h(
          'div',
          { class: 'jp-RemoteDevice-transferLabel' },
          `${verb} ${t.label}`
        ),
        progress,
        h('div', { class: 'jp-RemoteDevice-transferStatus' }, status)
      );
      if (t.state === 'failed') {
        row.appendChild(
          this._button(
            'Dismiss',
            'jp-RemoteDevice-transferDismiss',
            'Hide this message',
            () => {
              this._transfers.delete(t.key);
              this._renderTransfers();
            }
          )
        );
      }
      node.appendChild(row);
    }
  }

  private _model: DevicesModel;
  private _api: IFilesApi;
  private _contents: Contents.IManager | null;
  private _currentFolder: () => string;
  private _keepFinishedMs: number;
  private _deviceId: string | null = null;
  private _devicesKey = '';
  private _listings = new Map<string, IFileEntry[]>();
  private _errors = new Map<string, string>();
  private _loading = new Set<string>();
  private _expanded = new Set<string>(['']);
  private _transfers = new Map<string, ITransfer>();
  private _jobKeys = new Map<string, string>();
  private _refreshedJobs = new Set<string>();
  private _timers = new Set<ReturnType<typeof setTimeout>>();
  private _transfersNode: HTMLElement | null = null;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}
