/**
 * DeviceFilesModel: the files of the connected board shown in the sidebar,
 * without any DOM: which board, the folders loaded so far, which are open,
 * listing errors, and the transfers (push and pull jobs) started from here.
 *
 * Changes go through the REST files API (list, mkdir, rename, delete) and the
 * job API (push, pull); widgets observe `changed` and `transfersChanged`.
 */
import { PathExt } from '@jupyterlab/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IJob } from './api';
import { IFileEntry, IFilesApi, restFilesApi } from './filesapi';
import { DevicesModel, isJobFinished, jobProgress } from './model';

/** One transfer (a push or pull job) shown with a progress bar. */
export interface ITransfer {
  key: string;
  kind: 'pull' | 'push';
  /** The job behind it. */
  jobId: string;
  label: string;
  done: number;
  total: number;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  error?: string;
}

/** Join a device folder and a name ('' is the board's root). */
export function joinDevicePath(folder: string, name: string): string {
  const f = folder.replace(/^\/+|\/+$/g, '');
  return f ? `${f}/${name}` : name;
}

/** The folder of a device path ('' for the root). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

function sortEntries(entries: IFileEntry[]): IFileEntry[] {
  return [...entries].sort((a, b) =>
    a.type !== b.type
      ? a.type === 'directory'
        ? -1
        : 1
      : a.name.localeCompare(b.name)
  );
}

export namespace DeviceFilesModel {
  export interface IOptions {
    model: DevicesModel;
    /** REST calls (tests pass a fake). */
    api?: IFilesApi;
    /** Milliseconds a finished transfer stays listed (failed ones stay). */
    keepFinishedMs?: number;
  }
}

export class DeviceFilesModel implements IDisposable {
  constructor(options: DeviceFilesModel.IOptions) {
    this._model = options.model;
    this._api = options.api ?? restFilesApi;
    this._keepFinishedMs = options.keepFinishedMs ?? 6000;
    this._model.changed.connect(this._onDevices, this);
    this._model.jobChanged.connect(this._onJob, this);
    this._onDevices();
  }

  get model(): DevicesModel {
    return this._model;
  }

  /** The tree changed (board, listings, open folders, errors, loading). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** A transfer started, progressed, ended or went away. */
  get transfersChanged(): ISignal<this, void> {
    return this._transfersChanged;
  }

  /** The board whose files are shown (null when none is connected). */
  get deviceId(): string | null {
    return this._deviceId;
  }

  /** The shown board's name. */
  get deviceName(): string {
    const d = this._deviceId ? this._model.get(this._deviceId) : undefined;
    return d?.name ?? '';
  }

  get transfers(): ReadonlyArray<ITransfer> {
    return [...this._transfers.values()];
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Entries of a loaded folder (undefined when not loaded). */
  entries(path: string): ReadonlyArray<IFileEntry> | undefined {
    return this._listings.get(path);
  }

  /** The entry at a path, when its folder is loaded. */
  entry(path: string): IFileEntry | undefined {
    return this._listings
      .get(parentOf(path))
      ?.find(e => e.name === PathExt.basename(path));
  }

  error(path: string): string | undefined {
    return this._errors.get(path);
  }

  isLoading(path: string): boolean {
    return this._loading.has(path);
  }

  isExpanded(path: string): boolean {
    return this._expanded.has(path);
  }

  /** Show another board ('' folders reset). */
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
    this._changed.emit();
  }

  /** (Re)load one folder. */
  async load(path: string): Promise<void> {
    const id = this._deviceId;
    if (!id) {
      return;
    }
    this._loading.add(path);
    this._changed.emit();
    try {
      const listing = await this._api.list(id, path);
      if (id !== this._deviceId) {
        return;
      }
      const entries = sortEntries(listing.entries ?? []);
      this._listings.set(path, entries);
      this._errors.delete(path);
      // Forget open sub-folders that are gone.
      for (const p of [...this._expanded]) {
        if (
          p &&
          parentOf(p) === path &&
          !entries.some(
            e => e.type === 'directory' && e.name === PathExt.basename(p)
          )
        ) {
          this._expanded.delete(p);
        }
      }
    } catch (error) {
      if (id !== this._deviceId) {
        return;
      }
      this._errors.set(path, (error as Error)?.message ?? String(error));
      if (path && (error as any)?.status === 404) {
        this._expanded.delete(path);
      }
    } finally {
      this._loading.delete(path);
      this._changed.emit();
    }
  }

  /** Reload every open folder that is visible. */
  async refresh(): Promise<void> {
    const paths = [...this._expanded].filter(
      p => p === '' || this._isVisible(p)
    );
    await Promise.all(paths.map(p => this.load(p)));
  }

  /** Open or close a folder (loads it the first time). */
  async toggle(path: string): Promise<void> {
    if (this._expanded.has(path)) {
      this._expanded.delete(path);
      this._changed.emit();
      return;
    }
    this._expanded.add(path);
    this._changed.emit();
    if (!this._listings.has(path)) {
      await this.load(path);
    }
  }

  /** Make a folder `name` inside `parent`; returns its path. */
  async mkdir(parent: string, name: string): Promise<string> {
    const id = this._requireDevice();
    const path = joinDevicePath(parent, name);
    await this._api.mkdir(id, path);
    if (parent) {
      this._expanded.add(parent);
    }
    await this.load(parent);
    return path;
  }

  /** Rename an entry within its folder; returns the new path. */
  async rename(path: string, name: string): Promise<string> {
    const id = this._requireDevice();
    const parent = parentOf(path);
    const target = joinDevicePath(parent, name);
    await this._api.rename(id, path, target);
    if (this._expanded.delete(path)) {
      this._expanded.add(target);
    }
    await this.load(parent);
    return target;
  }

  /** Delete a file, or a folder with everything in it. */
  async remove(path: string, recursive: boolean): Promise<void> {
    const id = this._requireDevice();
    await this._api.remove(id, path, recursive);
    this._expanded.delete(path);
    await this.load(parentOf(path));
  }

  /** Start a pull job: a board file or folder into the workspace path `dest`. */
  async pull(path: string, dest: string): Promise<IJob> {
    const id = this._requireDevice();
    const job = await this._model.pull(id, path, dest);
    this._track(job, 'pull', `${PathExt.basename(path) || path} → ${dest}`);
    return job;
  }

  /** Start push jobs: workspace paths into a board folder. */
  async push(
    sources: ReadonlyArray<string>,
    folder: string
  ): Promise<{ source: string; dest: string; job?: IJob; error?: unknown }[]> {
    const id = this._requireDevice();
    const out = [];
    for (const source of sources) {
      // the file browser's paths may carry a drive prefix ("Drive:path")
      const clean = source.replace(/^[^/:]+:/, '').replace(/^\/+/, '');
      const base = PathExt.basename(clean);
      if (!base) {
        continue;
      }
      const dest = joinDevicePath(folder, base);
      try {
        const job = await this._model.push(id, clean, dest);
        this._track(job, 'push', `${base} → ${dest}`);
        out.push({ source: clean, dest, job });
      } catch (error) {
        out.push({ source: clean, dest, error });
      }
    }
    return out;
  }

  /** Forget a (failed) transfer. */
  dismiss(key: string): void {
    if (this._transfers.delete(key)) {
      this._transfersChanged.emit();
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._model.changed.disconnect(this._onDevices, this);
    this._model.jobChanged.disconnect(this._onJob, this);
    for (const t of this._timers) {
      clearTimeout(t);
    }
    Signal.clearData(this);
  }

  private _requireDevice(): string {
    if (!this._deviceId) {
      throw new Error('No board is connected.');
    }
    return this._deviceId;
  }

  private _track(job: IJob, kind: 'pull' | 'push', label: string): void {
    const key = `${kind}:${job.id}`;
    this._transfers.set(key, {
      key,
      kind,
      jobId: job.id,
      label,
      done: 0,
      total: 0,
      state: 'running'
    });
    this._jobKeys.set(job.id, key);
    this._onJob(this._model, this._model.getJob(job.id) ?? job);
    this._transfersChanged.emit();
  }

  private _onJob(_: DevicesModel, job: IJob): void {
    const key = this._jobKeys.get(job.id);
    const t = key ? this._transfers.get(key) : undefined;
    if (key && t) {
      t.done = job.bytes_total
        ? job.bytes_done
        : Math.round(jobProgress(job) * 100);
      t.total = job.bytes_total || 100;
      t.state = job.state;
      t.error = job.error ?? undefined;
      if (isJobFinished(job)) {
        this._jobKeys.delete(job.id);
        this._finish(key);
      }
      this._transfersChanged.emit();
    }
    // A push to the shown board (from here, the palette or the file browser)
    // changes its files: reload what is open. (A job that ends before its
    // POST reply carries no device: reload then too, once per job.)
    if (
      job.kind !== 'pull' &&
      isJobFinished(job) &&
      (!job.device || job.device === this._deviceId) &&
      !this._refreshedJobs.has(job.id)
    ) {
      this._refreshedJobs.add(job.id);
      void this.refresh();
    }
  }

  private _finish(key: string): void {
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      const t = this._transfers.get(key);
      if (t && t.state !== 'failed') {
        this._transfers.delete(key);
        this._transfersChanged.emit();
      }
    }, this._keepFinishedMs);
    this._timers.add(timer);
  }

  private _onDevices(): void {
    const connected = this._model.connectedDevices;
    const current = this._deviceId
      ? this._model.get(this._deviceId)
      : undefined;
    if (!current || current.status !== 'connected') {
      this.setDevice(connected.length ? connected[0].id : null);
    }
    const key = JSON.stringify(connected.map(d => [d.id, d.name]));
    if (key !== this._devicesKey) {
      this._devicesKey = key;
      this._changed.emit();
    }
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

  private _model: DevicesModel;
  private _api: IFilesApi;
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
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
  private _transfersChanged = new Signal<this, void>(this);
}
