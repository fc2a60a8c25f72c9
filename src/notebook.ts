/**
 * Notebooks opened with "Open notebook on device" carry
 * `metadata.remote_device = {name, host, port}`; whenever their
 * `remote-device` kernel starts or restarts, send it a silent `%connect` so
 * the notebook is back on its board without a visible cell.
 */
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { Kernel } from '@jupyterlab/services';

/** The kernelspec that runs code on a board. */
export const KERNEL_NAME = 'remote-device';

export interface IRemoteDeviceMetadata {
  name?: string;
  host: string;
  port?: number;
}

/** The `%connect` line for a notebook's metadata, or null. */
export function connectLine(md: unknown): string | null {
  if (!md || typeof md !== 'object') {
    return null;
  }
  const { host, port } = md as IRemoteDeviceMetadata;
  if (typeof host !== 'string' || !/^[A-Za-z0-9_.:[\]-]+$/.test(host)) {
    return null;
  }
  const p = Number(port);
  const hostPart =
    host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return Number.isInteger(p) && p > 0 && p < 65536
    ? `%connect ${hostPart}:${p}`
    : `%connect ${hostPart}`;
}

function watch(panel: NotebookPanel): void {
  const ctx = panel.sessionContext;
  let pending = true;
  const send = () => {
    const kernel = ctx.session?.kernel;
    if (!kernel || kernel.name !== KERNEL_NAME || !panel.model) {
      return;
    }
    const line = connectLine(panel.model.getMetadata('remote_device'));
    if (!line) {
      return;
    }
    pending = false;
    kernel.requestExecute({
      code: line,
      silent: true,
      store_history: false,
      allow_stdin: false,
      stop_on_error: false
    });
  };
  const onStatus = (_: unknown, status: Kernel.Status) => {
    if (
      status === 'starting' ||
      status === 'restarting' ||
      status === 'autorestarting'
    ) {
      pending = true;
    } else if (status === 'idle' && pending) {
      send();
    }
  };
  ctx.statusChanged.connect(onStatus);
  ctx.kernelChanged.connect(() => {
    pending = true;
  });
  panel.disposed.connect(() => {
    ctx.statusChanged.disconnect(onStatus);
  });
}

export function connectNotebooksOnKernelStart(tracker: INotebookTracker): void {
  tracker.widgetAdded.connect((_, panel) => watch(panel));
  tracker.forEach(panel => watch(panel));
}
