/**
 * Shared by the Files tests: an in-memory board file system behind IFilesApi,
 * a model whose REST calls record pushes and pulls, and dialog helpers.
 */
import { Widget } from '@lumino/widgets';

import { IDevice, IJob } from '../api';
import { IFileEntry, IFilesApi } from '../filesapi';
import { DevicesModel } from '../model';
import { DeviceFilesPanel } from '../widgets/filetree';

export const device = (id: string, extra: Partial<IDevice> = {}): IDevice => ({
  id,
  name: `board-${id}`,
  host: '127.0.0.1',
  port: 18861,
  source: 'config',
  status: 'connected',
  kind: 'agent',
  info: null,
  error: null,
  ...extra
});

export const MTIME = Date.UTC(2024, 0, 2, 3, 4, 5) / 1000;

/** An in-memory board file system behind the IFilesApi interface. */
export class FakeFs implements IFilesApi {
  files = new Map<string, Uint8Array>();
  dirs = new Set<string>(['']);
  calls: string[] = [];

  constructor(files: { [path: string]: string }, dirs: string[] = []) {
    for (const d of dirs) {
      this.dirs.add(d);
    }
    for (const [p, text] of Object.entries(files)) {
      this.files.set(p, new TextEncoder().encode(text));
    }
  }

  async list(id: string, path: string) {
    this.calls.push(`list ${id} ${path}`);
    if (!this.dirs.has(path)) {
      throw Object.assign(new Error(`no folder ${path}`), {
        status: 404,
        reason: 'not-found'
      });
    }
    const entries: IFileEntry[] = [];
    const prefix = path ? `${path}/` : '';
    const direct = (p: string) =>
      p.startsWith(prefix) &&
      p !== path &&
      !p.slice(prefix.length).includes('/');
    for (const d of this.dirs) {
      if (d && direct(d)) {
        entries.push({
          name: d.slice(prefix.length),
          type: 'directory',
          size: 0,
          mtime: MTIME
        });
      }
    }
    for (const [p, data] of this.files) {
      if (direct(p)) {
        entries.push({
          name: p.slice(prefix.length),
          type: 'file',
          size: data.length,
          mtime: this.mtimes.get(p) ?? MTIME
        });
      }
    }
    return { path, entries };
  }

  async mkdir(id: string, path: string) {
    this.calls.push(`mkdir ${path}`);
    this.dirs.add(path);
  }

  async rename(id: string, path: string, newPath: string) {
    this.calls.push(`rename ${path} ${newPath}`);
    const data = this.files.get(path);
    if (data) {
      this.files.delete(path);
      this.files.set(newPath, data);
    } else if (this.dirs.delete(path)) {
      this.dirs.add(newPath);
    }
  }

  async remove(id: string, path: string, recursive = false) {
    this.calls.push(`remove ${path} ${recursive}`);
    if (this.dirs.has(path)) {
      const inside = [...this.files.keys(), ...this.dirs].filter(p =>
        p.startsWith(`${path}/`)
      );
      if (inside.length && !recursive) {
        throw Object.assign(new Error('not empty'), {
          status: 409,
          reason: 'not-empty'
        });
      }
      for (const p of inside) {
        this.files.delete(p);
        this.dirs.delete(p);
      }
      this.dirs.delete(path);
      return;
    }
    this.files.delete(path);
  }

  async download(
    id: string,
    path: string,
    onProgress?: (done: number, total: number) => void
  ) {
    const data = this.files.get(path)!;
    const half = Math.floor(data.length / 2);
    onProgress?.(half, data.length);
    this.progress.push(half);
    await Promise.resolve();
    onProgress?.(data.length, data.length);
    this.progress.push(data.length);
    return data;
  }

  async upload(id: string, path: string, data: Uint8Array) {
    this.calls.push(`upload ${path} ${data.length}`);
    this.files.set(path, data);
    this.mtimes.set(path, (this.clock += 10));
    return { path, size: data.length, sha256: '0'.repeat(64) };
  }

  progress: number[] = [];
  /** mtimes set by uploads (others have MTIME). */
  mtimes = new Map<string, number>();
  clock = MTIME;
}

export const job = (id: string, extra: Partial<IJob> = {}): IJob => ({
  id,
  kind: 'push',
  state: 'running',
  bytes_done: 0,
  bytes_total: 10,
  files_done: 0,
  files_total: 1,
  rate: null,
  error: null,
  verified: null,
  ...extra
});

export function setup(
  fs: FakeFs,
  devices: IDevice[] = [device('a')],
  workspace: { [path: string]: 'file' | 'directory' } = {}
) {
  const pushes: [string, string, string][] = [];
  const pulls: [string, string, string][] = [];
  let jobN = 0;
  const model = new DevicesModel({
    api: {
      version: async () => ({ version: '0.1.0' }),
      listDevices: async () => devices,
      push: async (id: string, source: string, dest: string): Promise<IJob> => {
        pushes.push([id, source, dest]);
        return job(`job${++jobN}`);
      },
      pull: async (id: string, source: string, dest: string): Promise<IJob> => {
        pulls.push([id, source, dest]);
        return job(`pull${++jobN}`, {
          kind: 'pull',
          bytes_total: 0,
          files_total: 0,
          source,
          dest
        });
      },
      getJob: async () => {
        throw new Error('not polled in this test');
      }
    } as any,
    socketFactory: () =>
      ({
        readyState: 0,
        onopen: null,
        onclose: null,
        onerror: null,
        onmessage: null,
        send: () => undefined,
        close: () => undefined
      }) as any,
    frontendVersion: '0.1.0',
    jobPollInterval: 60000
  });
  const saved: { path: string; options: any }[] = [];
  const contents = {
    save: async (path: string, options: any) => {
      saved.push({ path, options });
      return { path, ...options };
    },
    get: async (path: string) => {
      if (!workspace[path]) {
        throw Object.assign(new Error('not found'), { status: 404 });
      }
      return { path, type: workspace[path] };
    }
  } as any;
  const panel = new DeviceFilesPanel({
    model,
    contents,
    currentFolder: () => 'work',
    api: fs,
    keepFinishedMs: 400
  });
  Widget.attach(panel, document.body);
  return { model, panel, pushes, pulls, saved };
}

export const flush = async (n = 5) => {
  for (let i = 0; i < n; i++) {
    await new Promise(r => setTimeout(r, 0));
  }
};

export async function waitFor<T>(
  fn: () => T | null | undefined | false,
  what: string,
  timeout = 2000
): Promise<T> {
  const end = Date.now() + timeout;
  for (;;) {
    const v = fn();
    if (v) {
      return v;
    }
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise(r => setTimeout(r, 10));
  }
}

/** Wait for the JupyterLab dialog, optionally type into its input, then press a button. */
export async function answerDialog(
  accept: boolean,
  text?: string
): Promise<string> {
  const dialog = await waitFor(
    () => document.querySelector('.jp-Dialog') as HTMLElement | null,
    'a dialog'
  );
  const body = dialog.querySelector('.jp-Dialog-content')?.textContent ?? '';
  if (text !== undefined) {
    const input = await waitFor(
      () => dialog.querySelector('input') as HTMLInputElement | null,
      'the dialog input'
    );
    input.value = text;
  }
  const button = dialog.querySelector(
    accept
      ? '.jp-Dialog-button.jp-mod-accept'
      : '.jp-Dialog-button.jp-mod-reject'
  ) as HTMLButtonElement;
  button.click();
  await waitFor(
    () => !document.querySelector('.jp-Dialog'),
    'the dialog to close'
  );
  return body;
}
