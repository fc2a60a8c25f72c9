/**
 * BoardDrive: the connected boards' files as a JupyterLab Contents drive,
 * over the REST files API, so a board file opens in JupyterLab's own editors.
 *
 * Paths are `board:<device id>/<path on the board>`; the drive's root lists
 * the connected boards. Saves go through `PUT files/content`, which writes a
 * temp file on the board and renames it into place once its sha256 matches
 * (as push does). `last_modified` is the board's mtime, so JupyterLab's own
 * "file changed on disk" check sees changes made on the board meanwhile.
 * Notebooks read from a board are recorded as belonging to it (kernelspec
 * remote-device and `metadata.remote_device`, as "Open notebook on device").
 */
import { PathExt } from '@jupyterlab/coreutils';
import { Contents, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { apiUrl, IDevice, serverSettings } from './api';
import { bytesToBase64, IFileEntry, IFilesApi, restFilesApi } from './filesapi';
import { DevicesModel } from './model';
import { KERNEL_NAME } from './notebook';

/** The drive's name: the prefix of its paths (`board:…`). */
export const DRIVE_NAME = 'board';

/** The drive path of a board file. */
export function drivePath(deviceId: string, path: string): string {
  const p = path.replace(/^\/+/, '');
  return `${DRIVE_NAME}:${deviceId}${p ? `/${p}` : ''}`;
}

/** (device id, board path) of a drive path (with or without the prefix), or null. */
export function parseDrivePath(
  path: string
): { deviceId: string; path: string } | null {
  let local = path;
  if (local.startsWith(`${DRIVE_NAME}:`)) {
    local = local.slice(DRIVE_NAME.length + 1);
  } else if (/^[^/]*:/.test(local)) {
    return null; // another drive
  }
  local = local.replace(/^\/+/, '');
  if (!local) {
    return null;
  }
  const i = local.indexOf('/');
  return i < 0
    ? { deviceId: local, path: '' }
    : { deviceId: local.slice(0, i), path: local.slice(i + 1) };
}

const MIME: { [ext: string]: string } = {
  '.py': 'text/x-python',
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.json': 'application/json',
  '.csv': 'text/csv',
  '.tsv': 'text/tab-separated-values',
  '.html': 'text/html',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.ipynb': 'application/x-ipynb+json'
};

function mimeOf(name: string): string {
  return MIME[PathExt.extname(name).toLowerCase()] ?? 'text/plain';
}

function iso(mtime: number | null | undefined): string {
  return new Date((mtime ?? 0) * 1000).toISOString();
}

function isNotebook(name: string): boolean {
  return PathExt.extname(name).toLowerCase() === '.ipynb';
}

function notFound(path: string): Error {
  return Object.assign(new Error(`${path} is not on the board`), {
    status: 404,
    reason: 'not-found'
  });
}

export namespace BoardDrive {
  export interface IOptions {
    model: DevicesModel;
    /** REST calls (tests pass a fake). */
    api?: IFilesApi;
  }
}

interface ICheckpoint {
  id: string;
  last_modified: string;
  data: Uint8Array;
}

export class BoardDrive implements Contents.IDrive {
  constructor(options: BoardDrive.IOptions) {
    this._model = options.model;
    this._api = options.api ?? restFilesApi;
  }

  readonly name = DRIVE_NAME;

  get serverSettings(): ServerConnection.ISettings {
    return serverSettings();
  }

  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    Signal.clearData(this);
  }

  async get(
    localPath: string,
    options: Contents.IFetchOptions = {}
  ): Promise<Contents.IModel> {
    const where = await this._split(localPath);
    if (!where) {
      await this._loaded(2000);
      return this._rootModel(options.content !== false);
    }
    const { device, path } = where;
    const entry = await this._stat(device.id, path);
    if (entry.type === 'directory') {
      const listing =
        options.content === false
          ? null
          : (await this._api.list(device.id, path)).entries.map(e =>
              this._toModel(device.id, path, e, null)
            );
      return this._toModel(device.id, PathExt.dirname(path), entry, listing, {
        path: localPath
      });
    }
    const want = options.content !== false;
    let content: any = null;
    let format: Contents.FileFormat = null;
    const type: Contents.ContentType =
      options.type === 'notebook' || (!options.type && isNotebook(path))
        ? 'notebook'
        : 'file';
    if (want) {
      const data = await this._api.download(device.id, path);
      if (type === 'notebook') {
        content = this._forBoard(device, JSON.parse(this._text(data, path)));
        format = 'json';
      } else if (options.format === 'base64') {
        content = bytesToBase64(data);
        format = 'base64';
      } else {
        try {
          content = this._text(data, path);
          format = 'text';
        } catch (error) {
          if (options.format === 'text') {
            throw error;
          }
          content = bytesToBase64(data);
          format = 'base64';
        }
      }
    }
    return {
      ...this._toModel(device.id, PathExt.dirname(path), entry, null),
      type,
      content,
      format
    };
  }

  async getDownloadUrl(localPath: string): Promise<string> {
    const where = await this._split(localPath);
    if (!where || !where.path) {
      throw notFound(localPath);
    }
    const id = encodeURIComponent(where.device.id);
    return apiUrl(
      `devices/${id}/files/content?path=${encodeURIComponent(where.path)}`
    );
  }

  async newUntitled(
    options: Contents.ICreateOptions = {}
  ): Promise<Contents.IModel> {
    const where = await this._split(options.path ?? '');
    if (!where) {
      throw new Error('Pick a board folder first.');
    }
    const { device, path } = where;
    const type = options.type ?? 'file';
    const ext =
      type === 'notebook'
        ? '.ipynb'
        : type === 'directory'
          ? ''
          : (options.ext ?? '.txt');
    const base = type === 'directory' ? 'Untitled Folder' : 'untitled';
    const taken = new Set(
      (await this._api.list(device.id, path)).entries.map(e => e.name)
    );
    let name = `${base}${ext}`;
    for (let i = 1; taken.has(name); i++) {
      name = `${base}${i}${ext}`;
    }
    const target = path ? `${path}/${name}` : name;
    if (type === 'directory') {
      await this._api.mkdir(device.id, target);
    } else {
      const body =
        type === 'notebook'
          ? JSON.stringify(
              this._forBoard(device, {
                cells: [],
                metadata: {},
                nbformat: 4,
                nbformat_minor: 5
              }),
              null,
              1
            )
          : '';
      await this._api.upload(device.id, target, new TextEncoder().encode(body));
    }
    const model = await this.get(`${device.id}/${target}`, { content: false });
    this._fileChanged.emit({ type: 'new', oldValue: null, newValue: model });
    return model;
  }

  async delete(localPath: string): Promise<void> {
    const where = await this._split(localPath);
    if (!where || !where.path) {
      throw new Error('A board itself cannot be deleted from here.');
    }
    const entry = await this._stat(where.device.id, where.path);
    await this._api.remove(
      where.device.id,
      where.path,
      entry.type === 'directory'
    );
    this._checkpoints.delete(localPath);
    this._fileChanged.emit({
      type: 'delete',
      oldValue: { path: localPath },
      newValue: null
    });
  }

  async rename(
    oldLocalPath: string,
    newLocalPath: string
  ): Promise<Contents.IModel> {
    const from = await this._split(oldLocalPath);
    const to = await this._split(newLocalPath);
    if (!from || !to || !from.path || !to.path) {
      throw new Error('Rename within a board folder.');
    }
    if (from.device.id !== to.device.id) {
      throw new Error('Files move between boards by push and pull.');
    }
    await this._api.rename(from.device.id, from.path, to.path);
    const model = await this.get(newLocalPath, { content: false });
    this._fileChanged.emit({
      type: 'rename',
      oldValue: { path: oldLocalPath },
      newValue: model
    });
    return model;
  }

  async save(
    localPath: string,
    options: Partial<Contents.IModel> = {}
  ): Promise<Contents.IModel> {
    const where = await this._split(localPath);
    if (!where || !where.path) {
      throw new Error('Save into a board folder.');
    }
    const { device, path } = where;
    if (options.type === 'directory') {
      await this._api.mkdir(device.id, path);
    } else {
      const data = this._bytes(options);
      const chunk = (options as any).chunk as number | undefined;
      if (chunk !== undefined && chunk !== -1) {
        // a chunked upload (the file browser's, for big files): keep until the last
        const parts = chunk === 1 ? [] : (this._chunks.get(localPath) ?? []);
        parts.push(data);
        this._chunks.set(localPath, parts);
        return {
          ...(await this._uploaded(device, path)),
          content: null
        };
      }
      let all = data;
      if (chunk === -1) {
        const parts = [...(this._chunks.get(localPath) ?? []), data];
        this._chunks.delete(localPath);
        all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let offset = 0;
        for (const p of parts) {
          all.set(p, offset);
          offset += p.length;
        }
      }
      await this._api.upload(device.id, path, all);
    }
    const model = await this.get(localPath, { content: false });
    this._fileChanged.emit({ type: 'save', oldValue: null, newValue: model });
    return model;
  }

  async copy(localPath: string, toLocalDir: string): Promise<Contents.IModel> {
    const from = await this._split(localPath);
    const to = await this._split(toLocalDir);
    if (!from || !to || !from.path || from.device.id !== to.device.id) {
      throw new Error('Copy within one board.');
    }
    const data = await this._api.download(from.device.id, from.path);
    const ext = PathExt.extname(from.path);
    const stem = PathExt.basename(from.path, ext);
    const taken = new Set(
      (await this._api.list(to.device.id, to.path)).entries.map(e => e.name)
    );
    let name = `${stem}-Copy1${ext}`;
    for (let i = 2; taken.has(name); i++) {
      name = `${stem}-Copy${i}${ext}`;
    }
    const target = to.path ? `${to.path}/${name}` : name;
    await this._api.upload(to.device.id, target, data);
    const model = await this.get(`${to.device.id}/${target}`, {
      content: false
    });
    this._fileChanged.emit({ type: 'new', oldValue: null, newValue: model });
    return model;
  }

  /** One checkpoint per file, kept in this page (the board keeps no history). */
  async createCheckpoint(
    localPath: string
  ): Promise<Contents.ICheckpointModel> {
    const where = await this._split(localPath);
    if (!where || !where.path) {
      throw notFound(localPath);
    }
    const data = await this._api.download(where.device.id, where.path);
    const checkpoint: ICheckpoint = {
      id: 'checkpoint',
      last_modified: new Date().toISOString(),
      data
    };
    this._checkpoints.set(localPath, checkpoint);
    return { id: checkpoint.id, last_modified: checkpoint.last_modified };
  }

  async listCheckpoints(
    localPath: string
  ): Promise<Contents.ICheckpointModel[]> {
    const c = this._checkpoints.get(localPath);
    return c ? [{ id: c.id, last_modified: c.last_modified }] : [];
  }

  async restoreCheckpoint(
    localPath: string,
    checkpointID: string
  ): Promise<void> {
    const c = this._checkpoints.get(localPath);
    const where = await this._split(localPath);
    if (!c || c.id !== checkpointID || !where) {
      throw notFound(`${localPath} (checkpoint ${checkpointID})`);
    }
    await this._api.upload(where.device.id, where.path, c.data);
  }

  async deleteCheckpoint(
    localPath: string,
    checkpointID: string
  ): Promise<void> {
    const c = this._checkpoints.get(localPath);
    if (c && c.id === checkpointID) {
      this._checkpoints.delete(localPath);
    }
  }

  /** The connected board and board path of a drive-local path (null: the drive root). */
  private async _split(
    localPath: string
  ): Promise<{ device: IDevice; path: string } | null> {
    const parsed = parseDrivePath(localPath);
    if (!parsed) {
      return null;
    }
    await this._loaded();
    const device = this._model.get(parsed.deviceId);
    if (!device || device.status !== 'connected') {
      throw Object.assign(
        new Error(
          `${device?.name ?? parsed.deviceId} is not connected: connect it from the Devices sidebar.`
        ),
        { status: 409, reason: 'not-connected' }
      );
    }
    return { device, path: parsed.path.replace(/\/+$/, '') };
  }

  /** After a page reload, documents reopen before the device list arrives: wait for it. */
  private async _loaded(timeout = 10000): Promise<void> {
    const model = this._model;
    const connected = () => model.loaded && model.connectedDevices.length > 0;
    if (connected()) {
      return;
    }
    await new Promise<void>(resolve => {
      const done = () => {
        clearTimeout(timer);
        model.changed.disconnect(check);
        resolve();
      };
      const check = () => {
        if (connected()) {
          done();
        }
      };
      const timer = setTimeout(done, timeout);
      model.changed.connect(check);
    });
  }

  private _rootModel(content: boolean): Contents.IModel {
    const now = new Date().toISOString();
    return {
      name: '',
      path: '',
      type: 'directory',
      writable: false,
      created: now,
      last_modified: now,
      mimetype: '',
      format: content ? 'json' : null,
      content: content
        ? this._model.connectedDevices.map(d => ({
            name: d.id,
            path: d.id,
            type: 'directory',
            writable: true,
            created: now,
            last_modified: now,
            mimetype: '',
            format: null,
            content: null
          }))
        : null
    };
  }

  /** A board entry: its folder's listing has it (the root is a folder). */
  private async _stat(id: string, path: string): Promise<IFileEntry> {
    if (!path) {
      return { name: '', type: 'directory', size: 0, mtime: 0 };
    }
    const name = PathExt.basename(path);
    const listing = await this._api.list(id, PathExt.dirname(path));
    const entry = listing.entries.find(e => e.name === name);
    if (!entry) {
      throw notFound(path);
    }
    return entry;
  }

  private async _uploaded(
    device: IDevice,
    path: string
  ): Promise<Contents.IModel> {
    const now = new Date().toISOString();
    return {
      name: PathExt.basename(path),
      path: `${device.id}/${path}`,
      type: 'file',
      writable: true,
      created: now,
      last_modified: now,
      mimetype: mimeOf(path),
      format: null,
      content: null
    };
  }

  private _toModel(
    id: string,
    dir: string,
    e: IFileEntry,
    content: Contents.IModel[] | null,
    extra: Partial<Contents.IModel> = {}
  ): Contents.IModel {
    const dirPath = dir === '.' ? '' : dir;
    const boardPath = dirPath ? `${dirPath}/${e.name}` : e.name;
    const type: Contents.ContentType =
      e.type === 'directory'
        ? 'directory'
        : isNotebook(e.name)
          ? 'notebook'
          : 'file';
    return {
      name: e.name || id,
      path: boardPath ? `${id}/${boardPath}` : id,
      type,
      writable: true,
      created: iso(e.mtime),
      last_modified: iso(e.mtime),
      mimetype: e.type === 'directory' ? '' : mimeOf(e.name),
      format: content ? 'json' : null,
      content,
      size: e.type === 'directory' ? undefined : e.size,
      ...extra
    };
  }

  private _text(data: Uint8Array, path: string): string {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(data);
    } catch {
      throw Object.assign(new Error(`${path} is not UTF-8 text`), {
        status: 400,
        reason: 'bad-request'
      });
    }
  }

  private _bytes(options: Partial<Contents.IModel>): Uint8Array {
    const content = options.content ?? '';
    if (options.type === 'notebook' || options.format === 'json') {
      return new TextEncoder().encode(JSON.stringify(content, null, 1) + '\n');
    }
    if (options.format === 'base64') {
      const bin = atob(String(content));
      const out = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) {
        out[i] = bin.charCodeAt(i);
      }
      return out;
    }
    return new TextEncoder().encode(String(content));
  }

  /** A notebook read from a board runs on that board (kernelspec + metadata). */
  private _forBoard(device: IDevice, nb: any): any {
    if (!nb || typeof nb !== 'object') {
      return nb;
    }
    const metadata = { ...(nb.metadata ?? {}) };
    metadata.kernelspec = {
      name: KERNEL_NAME,
      display_name:
        metadata.kernelspec?.display_name ?? 'Python (remote device)',
      language: 'python'
    };
    metadata.remote_device = {
      name: device.name,
      host: device.host,
      port: device.port
    };
    return { ...nb, metadata };
  }

  private _model: DevicesModel;
  private _api: IFilesApi;
  private _checkpoints = new Map<string, ICheckpoint>();
  private _chunks = new Map<string, Uint8Array[]>();
  private _isDisposed = false;
  private _fileChanged = new Signal<this, Contents.IChangedArgs>(this);
}
