/**
 * "Push File…" and "Push to Device…": workspace files or folders to a board,
 * each a push job followed in a notification. The files come from the
 * command's args, the file browser's selection, or JupyterLab's file dialog.
 */
import { InputDialog, showErrorMessage } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { FileDialog } from '@jupyterlab/filebrowser';

import { IJob } from './api';
import type { ICommandContext } from './commands';
import { pickDevice, translationBundle } from './pick';
import { followJob } from './widgets/jobs';

/** The workspace folder the file browser shows ('' = root). */
function currentFolder(ctx: ICommandContext): string {
  return ctx.fileBrowser?.model.path ?? '';
}

function errorMessage(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

/** Workspace paths picked in JupyterLab's file dialog (several allowed), or null. */
async function pickWorkspaceFiles(
  ctx: ICommandContext
): Promise<string[] | null> {
  const trans = translationBundle(ctx.translator);
  if (!ctx.docManager) {
    // No document manager (a reduced Lab): type the path.
    const result = await InputDialog.getText({
      title: trans.__('Push file to device'),
      label: trans.__('File or folder in the workspace'),
      text: currentFolder(ctx),
      placeholder: 'path/to/file.py'
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    return [result.value.replace(/^\/+/, '')];
  }
  const result = await FileDialog.getOpenFiles({
    manager: ctx.docManager,
    title: trans.__('Push to device'),
    label: trans.__(
      'Pick the files or folders to push (Select with nothing picked pushes the folder shown).'
    ),
    defaultPath: currentFolder(ctx),
    translator: ctx.translator ?? undefined
  });
  if (!result.button.accept || !result.value) {
    return null;
  }
  return result.value.map(m => m.path).filter(p => p !== '');
}

export async function pushFile(
  ctx: ICommandContext,
  args: any,
  fromBrowser: boolean
): Promise<IJob[] | undefined> {
  const { model } = ctx;
  const trans = translationBundle(ctx.translator);
  let sources: string[] = [];
  if (typeof args?.path === 'string' && args.path) {
    sources = [args.path];
  } else if (fromBrowser) {
    sources = ctx.fileBrowser
      ? Array.from(ctx.fileBrowser.selectedItems()).map(item => item.path)
      : [];
  } else {
    const picked = await pickWorkspaceFiles(ctx);
    if (picked === null) {
      return;
    }
    sources = picked;
  }
  if (sources.length === 0) {
    await showErrorMessage(
      trans.__('Push to device'),
      trans.__(
        'Select a file or folder first (the workspace itself cannot be pushed).'
      )
    );
    return;
  }
  let device = typeof args?.id === 'string' ? model.get(args.id) : undefined;
  if (!device) {
    const connected = model.connectedDevices;
    device =
      connected.length === 1 && fromBrowser
        ? connected[0]
        : ((await pickDevice(
            sources.length === 1
              ? trans.__('Push %1 to device', PathExt.basename(sources[0]))
              : trans.__('Push %1 items to device', sources.length),
            connected,
            trans.__(
              'No board is connected. Connect one from the Devices sidebar first.'
            ),
            trans
          )) ?? undefined);
  }
  if (!device) {
    return;
  }
  let dests: string[];
  if (typeof args?.dest === 'string') {
    dests = sources.map(s =>
      sources.length === 1
        ? args.dest
        : PathExt.join(args.dest, PathExt.basename(s))
    );
  } else if (sources.length === 1) {
    const result = await InputDialog.getText({
      title: trans.__('Push to %1', device.name),
      label: trans.__('Path on the board (relative to the agent’s root)'),
      text: PathExt.basename(sources[0])
    });
    if (!result.button.accept || !result.value) {
      return;
    }
    dests = [result.value];
  } else {
    const result = await InputDialog.getText({
      title: trans.__('Push %1 items to %2', sources.length, device.name),
      label: trans.__(
        'Folder on the board (relative to the agent’s root; empty = root)'
      ),
      text: ''
    });
    if (!result.button.accept) {
      return;
    }
    const folder = (result.value ?? '').trim();
    dests = sources.map(s =>
      folder ? PathExt.join(folder, PathExt.basename(s)) : PathExt.basename(s)
    );
  }
  const jobs: Promise<IJob>[] = [];
  for (let i = 0; i < sources.length; i++) {
    const name = PathExt.basename(sources[i]);
    const what = trans.__('%1 to %2:%3', name, device.name, dests[i]);
    try {
      const job = await model.push(device.id, sources[i], dests[i]);
      jobs.push(followJob(model, job, what, trans));
    } catch (error) {
      await showErrorMessage(
        trans.__('Could not push %1', name),
        errorMessage(error)
      );
    }
  }
  return Promise.all(jobs);
}
