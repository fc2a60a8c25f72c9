/**
 * "Run file on device" (Thonny's F5): run a Python file on a board as a
 * script (`__name__ == "__main__"`, cwd = its folder) with its output in a
 * console of the remote-device kernel bound to that board; "Stop" interrupts
 * it. A board file runs from the board (saved first when edited); a
 * workspace file runs from the editor's text.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { showErrorMessage } from '@jupyterlab/apputils';
import type { ConsolePanel } from '@jupyterlab/console';
import { PathExt } from '@jupyterlab/coreutils';
import type { IDocumentWidget } from '@jupyterlab/docregistry';
import type { IEditorTracker } from '@jupyterlab/fileeditor';
import type { Kernel } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import { runIcon, stopIcon, ToolbarButton } from '@jupyterlab/ui-components';

import { IDevice } from './api';
import { drivePath, parseDrivePath } from './drive';
import { DevicesModel } from './model';
import { connectLine, KERNEL_NAME } from './notebook';
import { pickDevice } from './pick';

export namespace RunCommandIDs {
  export const run = 'remote-device:run-file';
  export const stop = 'remote-device:stop-run';
}

/** Defined (silently) in the console's namespace on the board before each run. */
export const RUN_HELPERS = `def run_board_file(rel):
    import os, runpy, sys
    try:
        from jupyter_remote_device.agent.files import ROOT as root
    except Exception:
        root = None
    path = os.path.join(root or os.getcwd(), rel)
    folder = os.path.dirname(path) or "."
    here = os.getcwd()
    os.chdir(folder)
    sys.path.insert(0, folder)
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        os.chdir(here)
        if sys.path and sys.path[0] == folder:
            del sys.path[0]


def run_board_source(source, name):
    exec(compile(source, name, "exec"), {"__name__": "__main__", "__file__": name})
`;

/** The line the console runs (shown in it): a Python call with JSON-quoted strings. */
export function runLine(
  target: { boardPath: string } | { source: string; name: string }
): string {
  return 'boardPath' in target
    ? `run_board_file(${JSON.stringify(target.boardPath)})`
    : `run_board_source(${JSON.stringify(target.source)}, ${JSON.stringify(target.name)})`;
}

function isPython(path: string | undefined): boolean {
  return !!path && PathExt.extname(path).toLowerCase() === '.py';
}

async function execute(kernel: Kernel.IKernelConnection, code: string) {
  const reply = await kernel.requestExecute({
    code,
    silent: true,
    store_history: false,
    allow_stdin: false,
    stop_on_error: false
  }).done;
  const content: any = reply.content;
  if (content.status !== 'ok') {
    throw new Error(`${content.ename ?? 'Error'}: ${content.evalue ?? ''}`);
  }
}

export function addRunCommands(
  app: JupyterFrontEnd,
  model: DevicesModel,
  trans: TranslationBundle
): void {
  const consoles = new Map<string, ConsolePanel>();
  let last: ConsolePanel | null = null;

  const currentDocument = (): IDocumentWidget | null => {
    const w = app.shell.currentWidget as any;
    return w && w.context && typeof w.context.path === 'string' ? w : null;
  };

  const targetPath = (args: any): string | undefined => {
    if (typeof args?.path === 'string') {
      return args.path;
    }
    const row = app.contextMenuHitTest(node =>
      node.classList.contains('jp-RemoteDevice-fileRow')
    );
    const files = row?.closest('.jp-RemoteDevice-files') as HTMLElement | null;
    if (row?.dataset.path && files?.dataset.deviceId) {
      return drivePath(files.dataset.deviceId, row.dataset.path);
    }
    return currentDocument()?.context.path;
  };

  /** The console bound to a board: made (and %connect-ed) on first use. */
  const consoleFor = async (device: IDevice): Promise<ConsolePanel> => {
    const existing = consoles.get(device.id);
    if (existing && !existing.isDisposed) {
      app.shell.activateById(existing.id);
      return existing;
    }
    const panel = (await app.commands.execute('console:create', {
      kernelPreference: { name: KERNEL_NAME, shouldStart: true },
      name: trans.__('%1 console', device.name),
      insertMode: 'split-bottom',
      activate: true
    })) as ConsolePanel;
    panel.title.label = trans.__('%1 console', device.name);
    panel.sessionContext.statusChanged.connect((_, status) => {
      if (status === 'restarting' || status === 'autorestarting') {
        (panel as any).__jrdKernel = null; // the board binding is gone with the namespace
      }
    });
    panel.sessionContext.kernelChanged.connect(() => {
      (panel as any).__jrdKernel = null;
    });
    consoles.set(device.id, panel);
    panel.disposed.connect(() => consoles.delete(device.id));
    return panel;
  };

  /** Connect the console's kernel to the board (again after a restart). */
  const bind = async (panel: ConsolePanel, device: IDevice) => {
    await panel.sessionContext.ready;
    const kernel = panel.sessionContext.session?.kernel;
    if (!kernel) {
      throw new Error(trans.__('The console has no kernel.'));
    }
    const line = connectLine({
      name: device.name,
      host: device.host,
      port: device.port
    });
    if ((panel as any).__jrdKernel !== kernel.id && line) {
      await execute(kernel, line);
      (panel as any).__jrdKernel = kernel.id;
    }
    await execute(kernel, RUN_HELPERS);
  };

  app.commands.addCommand(RunCommandIDs.run, {
    label: trans.__('Run File on Device'),
    caption: trans.__(
      'Run this Python file on the board as a script, its output in a board console'
    ),
    icon: runIcon,
    isEnabled: args => isPython(targetPath(args)),
    execute: async args => {
      const path = targetPath(args);
      if (!isPython(path)) {
        return null;
      }
      const onBoard = path!.startsWith('board:') ? parseDrivePath(path!) : null;
      let device: IDevice | undefined;
      let code: string;
      const doc = currentDocument();
      const open = doc && doc.context.path === path ? doc : null;
      if (onBoard) {
        device = model.get(onBoard.deviceId);
        if (open?.context.model.dirty) {
          await open.context.save();
        }
        code = runLine({ boardPath: onBoard.path });
      } else {
        const connected = model.connectedDevices;
        device =
          (typeof args?.id === 'string' ? model.get(args.id) : undefined) ??
          (connected.length === 1
            ? connected[0]
            : ((await pickDevice(
                trans.__('Run %1 on device', PathExt.basename(path!)),
                connected,
                trans.__('No board is connected.'),
                trans
              )) ?? undefined));
        const source = open
          ? open.context.model.toString()
          : String(
              (await app.serviceManager.contents.get(path!, { format: 'text' }))
                .content
            );
        code = runLine({ source, name: PathExt.basename(path!) });
      }
      if (!device || device.status !== 'connected') {
        await showErrorMessage(
          trans.__('Run file on device'),
          trans.__('Connect the board first (Devices sidebar).')
        );
        return null;
      }
      try {
        const panel = await consoleFor(device);
        await bind(panel, device);
        last = panel;
        void panel.console.inject(code);
        return panel;
      } catch (error) {
        await showErrorMessage(
          trans.__(
            'Could not run %1 on %2',
            PathExt.basename(path!),
            device.name
          ),
          (error as Error)?.message ?? String(error)
        );
        return null;
      }
    }
  });

  app.commands.addCommand(RunCommandIDs.stop, {
    label: trans.__('Stop Running on Device'),
    caption: trans.__('Interrupt the board console’s kernel'),
    icon: stopIcon,
    isEnabled: () => !!last && !last.isDisposed,
    execute: async () => {
      const kernel = last?.sessionContext.session?.kernel;
      if (kernel) {
        await kernel.interrupt();
      }
    }
  });

  app.commands.addKeyBinding({
    command: RunCommandIDs.run,
    keys: ['F5'],
    selector: '.jp-FileEditor'
  });
  app.commands.addKeyBinding({
    command: RunCommandIDs.stop,
    keys: ['Shift F5'],
    selector: '.jp-FileEditor'
  });
  app.contextMenu.addItem({
    command: RunCommandIDs.run,
    selector:
      '.jp-RemoteDevice-files .jp-RemoteDevice-fileRow[data-type="file"][data-name$=".py"]',
    rank: 0.5
  });
}

/** A Run button in the toolbar of every Python file editor. */
export function addRunButtons(
  app: JupyterFrontEnd,
  editors: IEditorTracker,
  trans: TranslationBundle
): void {
  const add = (doc: IDocumentWidget) => {
    if (!isPython(doc.context.path) || !doc.toolbar) {
      return;
    }
    doc.toolbar.insertItem(
      10,
      'remote-device-run',
      new ToolbarButton({
        icon: runIcon,
        label: trans.__('Run on device'),
        tooltip: trans.__('Run this file on the board (F5)'),
        className: 'jp-RemoteDevice-runFile',
        onClick: () =>
          void app.commands.execute(RunCommandIDs.run, {
            path: doc.context.path
          })
      })
    );
  };
  editors.widgetAdded.connect((_, doc) => add(doc));
}
