/**
 * The board's file actions as JupyterLab commands (palette, context menu of
 * the Files section, keyboard): pull into the workspace, rename, delete, new
 * folder, reload. Each takes `{path, type?}`; without a path it acts on the
 * row under the context menu, else on the focused row.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { TranslationBundle } from '@jupyterlab/translation';
import {
  deleteIcon,
  downloadIcon,
  editIcon,
  newFolderIcon,
  refreshIcon
} from '@jupyterlab/ui-components';

import { DeviceFilesPanel } from './widgets/filetree';

export namespace FileCommandIDs {
  export const pull = 'remote-device:files-pull';
  export const rename = 'remote-device:files-rename';
  export const remove = 'remote-device:files-delete';
  export const newFolder = 'remote-device:files-new-folder';
  export const refresh = 'remote-device:files-refresh';
}

const ROW = 'jp-RemoteDevice-fileRow';

interface ITarget {
  path: string;
  type: 'file' | 'directory';
}

/** The board entry a command acts on: its args, the context-menu row, or the focused row. */
function target(
  app: JupyterFrontEnd,
  panel: DeviceFilesPanel,
  args: any
): ITarget | null {
  if (typeof args?.path === 'string') {
    const type =
      args.type === 'directory' || args.type === 'file'
        ? args.type
        : (panel.files.entry(args.path)?.type ?? 'file');
    return { path: args.path, type };
  }
  const row =
    app.contextMenuHitTest(node => node.classList.contains(ROW)) ??
    ((document.activeElement as HTMLElement | null)?.closest(
      `.${ROW}`
    ) as HTMLElement | null);
  if (!row || !panel.node.contains(row) || row.dataset.path === undefined) {
    return null;
  }
  return {
    path: row.dataset.path,
    type: row.dataset.type === 'directory' ? 'directory' : 'file'
  };
}

export function addFileCommands(
  app: JupyterFrontEnd,
  panel: DeviceFilesPanel,
  trans: TranslationBundle
): void {
  const { commands, contextMenu } = app;
  const connected = () => panel.deviceId !== null;

  commands.addCommand(FileCommandIDs.pull, {
    label: trans.__('Pull to Workspace…'),
    caption: trans.__(
      'Copy the board file or folder into the Jupyter workspace'
    ),
    icon: downloadIcon,
    isEnabled: connected,
    execute: args => {
      const t = target(app, panel, args);
      return t
        ? panel.pull(
            t.path,
            typeof args?.dest === 'string' ? args.dest : undefined
          )
        : null;
    }
  });

  commands.addCommand(FileCommandIDs.rename, {
    label: trans.__('Rename on Board…'),
    caption: trans.__('Rename the file or folder on the board'),
    icon: editIcon,
    isEnabled: connected,
    execute: args => {
      const t = target(app, panel, args);
      return t ? panel.rename(t.path) : null;
    }
  });

  commands.addCommand(FileCommandIDs.remove, {
    label: trans.__('Delete from Board…'),
    caption: trans.__('Delete the file or folder on the board'),
    icon: deleteIcon,
    isEnabled: connected,
    execute: args => {
      const t = target(app, panel, args);
      return t ? panel.remove(t.path, t.type) : false;
    }
  });

  commands.addCommand(FileCommandIDs.newFolder, {
    label: trans.__('New Folder on Board…'),
    caption: trans.__('Make a folder on the board'),
    icon: newFolderIcon,
    isEnabled: connected,
    execute: args => {
      if (typeof args?.parent === 'string') {
        return panel.newFolder(args.parent);
      }
      const t = target(app, panel, args);
      const parent = !t
        ? ''
        : t.type === 'directory'
          ? t.path
          : t.path.slice(0, Math.max(0, t.path.lastIndexOf('/')));
      return panel.newFolder(parent);
    }
  });

  commands.addCommand(FileCommandIDs.refresh, {
    label: trans.__('Reload Board Files'),
    caption: trans.__('List the board’s files again'),
    icon: refreshIcon,
    isEnabled: connected,
    execute: () => panel.refresh()
  });

  const selector = `.jp-RemoteDevice-files .${ROW}`;
  let rank = 1;
  for (const command of [
    FileCommandIDs.pull,
    FileCommandIDs.rename,
    FileCommandIDs.remove,
    FileCommandIDs.newFolder,
    FileCommandIDs.refresh
  ]) {
    contextMenu.addItem({ command, selector, rank: rank++ });
  }
}
