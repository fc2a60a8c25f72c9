/**
 * Board files in JupyterLab's own editors: the `board:` drive registered with
 * the contents manager, "Open" from the Files tree, tabs titled
 * `board-name:path`, and notebooks from a board opened with the remote-device
 * kernel.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { PathExt } from '@jupyterlab/coreutils';
import { DocumentRegistry, IDocumentWidget } from '@jupyterlab/docregistry';
import { TranslationBundle } from '@jupyterlab/translation';
import { fileIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { BoardDrive, drivePath, parseDrivePath } from './drive';
import { DevicesModel } from './model';
import { KERNEL_NAME } from './notebook';
import { DeviceFilesPanel } from './widgets/filetree';

export const OPEN_COMMAND = 'remote-device:files-open';

/** `board-name:path` for a drive path, or null when it is not a board file. */
export function boardTitle(model: DevicesModel, path: string): string | null {
  const where = parseDrivePath(path);
  if (!where || !path.startsWith('board:')) {
    return null;
  }
  const name = model.get(where.deviceId)?.name ?? where.deviceId;
  return `${name}:${where.path}`;
}

/** Open a board file in the editor JupyterLab picks for it (notebooks on the board's kernel). */
export function openBoardFile(
  app: JupyterFrontEnd,
  deviceId: string,
  path: string
): Promise<Widget | undefined> {
  const isNotebook = PathExt.extname(path).toLowerCase() === '.ipynb';
  return app.commands.execute('docmanager:open', {
    path: drivePath(deviceId, path),
    ...(isNotebook ? { kernel: { name: KERNEL_NAME } } : {})
  }) as Promise<Widget | undefined>;
}

/** A CSS string literal. */
function cssString(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&').replace(/\n/g, '\\a ')}"`;
}

/** One stylesheet rule per tab prefix ("demo-board:folder/") in front of the label. */
const prefixRules = new Set<string>();
function ensurePrefixRule(prefix: string): void {
  if (prefixRules.has(prefix)) {
    return;
  }
  prefixRules.add(prefix);
  let style = document.getElementById(
    'jp-RemoteDevice-boardTabs'
  ) as HTMLStyleElement | null;
  if (!style) {
    style = document.createElement('style');
    style.id = 'jp-RemoteDevice-boardTabs';
    document.head.appendChild(style);
  }
  style.sheet?.insertRule(
    `.lm-TabBar-tab.jp-RemoteDevice-boardDoc[data-jrd-board=${cssString(prefix)}] .lm-TabBar-tabLabel::before { content: ${cssString(prefix)}; }`,
    style.sheet.cssRules.length
  );
}

/** Keep the tab of every board document titled `board-name:path`. */
function labelBoardDocuments(
  registry: DocumentRegistry,
  model: DevicesModel
): void {
  const seen = new WeakSet<object>();
  const label = (widget: IDocumentWidget) => {
    // The label itself must stay the file name (DocumentWidget renames the
    // file when its label changes): the board's name goes in front of it by
    // a generated CSS rule (data-jrd-board; style/boardfiles.css colours it).
    const apply = () => {
      const title = boardTitle(model, widget.context.path);
      const classes = widget.title.className
        .split(/\s+/)
        .filter(c => c && c !== 'jp-RemoteDevice-boardDoc');
      if (title) {
        const board = title.slice(0, title.indexOf(':'));
        const folder = PathExt.dirname(title.slice(board.length + 1));
        const prefix =
          folder && folder !== '.' ? `${board}:${folder}/` : `${board}:`;
        ensurePrefixRule(prefix);
        widget.title.dataset = {
          ...widget.title.dataset,
          'jrd-board': prefix,
          'jrd-path': title
        };
        classes.push('jp-RemoteDevice-boardDoc');
      }
      widget.title.className = classes.join(' ');
    };
    apply();
    widget.context.pathChanged.connect(apply);
    widget.context.ready.then(apply).catch(() => undefined);
  };
  const hook = (factory: DocumentRegistry.WidgetFactory) => {
    if (seen.has(factory)) {
      return;
    }
    seen.add(factory);
    factory.widgetCreated.connect((_, widget) =>
      label(widget as IDocumentWidget)
    );
  };
  for (const factory of registry.widgetFactories()) {
    hook(factory);
  }
  registry.changed.connect((_, change) => {
    if (change.type === 'widgetFactory' && change.change === 'added') {
      const factory = registry.getWidgetFactory(change.name ?? '');
      if (factory) {
        hook(factory);
      }
    }
  });
}

/**
 * Register the drive, the Open command (Files tree: double-click, Enter,
 * context menu) and the tab titles.
 */
export function setupBoardFiles(
  app: JupyterFrontEnd,
  model: DevicesModel,
  panel: DeviceFilesPanel,
  registry: DocumentRegistry | null,
  trans: TranslationBundle
): BoardDrive {
  const drive = new BoardDrive({ model });
  app.serviceManager.contents.addDrive(drive);
  if (registry) {
    labelBoardDocuments(registry, model);
  }
  app.commands.addCommand(OPEN_COMMAND, {
    label: trans.__('Open'),
    caption: trans.__('Open the board file in JupyterLab’s editor'),
    icon: fileIcon,
    isEnabled: () => panel.deviceId !== null,
    execute: args => {
      let path = typeof args?.path === 'string' ? args.path : undefined;
      if (path === undefined) {
        const row = app.contextMenuHitTest(node =>
          node.classList.contains('jp-RemoteDevice-fileRow')
        );
        if (row?.dataset.type === 'file') {
          path = row.dataset.path;
        }
      }
      const id =
        typeof args?.id === 'string' ? args.id : (panel.deviceId ?? undefined);
      return path && id ? openBoardFile(app, id, path) : undefined;
    }
  });
  app.contextMenu.addItem({
    command: OPEN_COMMAND,
    selector:
      '.jp-RemoteDevice-files .jp-RemoteDevice-fileRow[data-type="file"]',
    rank: 0
  });
  return drive;
}
