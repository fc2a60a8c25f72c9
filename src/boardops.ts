/**
 * Board operations (wiring): a terminal on the board, the board log, installing
 * packages, and the connection doctor ("Why?"). Commands, palette items and tab
 * restoration; the widgets live in widgets/terminal.ts, boardlog.ts, packages.ts,
 * diagnose.ts.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITerminal } from '@jupyterlab/terminal';

import { IDevice, restApi } from './api';
import { CommandIDs, PALETTE_CATEGORY, pickDevice } from './commands';
import { BoardLogPanel } from './widgets/boardlog';
import { showDiagnosis } from './widgets/diagnose';
import { askAndInstall } from './widgets/packages';
import {
  BoardTerminalConnection,
  BoardTerminalPanel
} from './widgets/terminal';

const TERMINAL_SETTINGS = '@jupyterlab/terminal-extension:plugin';
const TERMINAL_KEYS = [
  'fontFamily',
  'fontSize',
  'lineHeight',
  'theme',
  'scrollback',
  'screenReaderMode',
  'pasteWithCtrlV',
  'macOptionIsMeta',
  'cursorBlink'
];

async function connectedDevice(
  args: any,
  title: string
): Promise<{ id: string; name: string } | null> {
  if (typeof args?.id === 'string' && args.id) {
    return {
      id: args.id,
      name: typeof args.name === 'string' && args.name ? args.name : args.id
    };
  }
  let devices: IDevice[] = [];
  try {
    devices = await restApi.listDevices();
  } catch {
    // the pick below says there is none
  }
  const d = await pickDevice(
    title,
    devices.filter(x => x.status === 'connected'),
    'No board is connected. Connect one in the Devices sidebar first.'
  );
  return d ? { id: d.id, name: d.name } : null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-remote-device:board-operations',
  description:
    'A terminal on the board, the board log, packages and the connection doctor.',
  autoStart: true,
  optional: [
    ICommandPalette,
    ILayoutRestorer,
    ISettingRegistry,
    IDefaultFileBrowser
  ],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    fileBrowser: IDefaultFileBrowser | null
  ) => {
    const terminals = new WidgetTracker<BoardTerminalPanel>({
      namespace: 'remote-device-terminal'
    });
    const logs = new WidgetTracker<BoardLogPanel>({
      namespace: 'remote-device-board-log'
    });
    let termOptions: Partial<ITerminal.IOptions> = {};
    if (settingRegistry) {
      // the same look as JupyterLab's own terminals (font, theme, scrollback...)
      void settingRegistry
        .load(TERMINAL_SETTINGS)
        .then(settings => {
          const read = () => {
            const c = settings.composite as any;
            const opts: any = {};
            for (const k of TERMINAL_KEYS) {
              if (c[k] !== undefined && c[k] !== null) {
                opts[k] = c[k];
              }
            }
            termOptions = opts;
            terminals.forEach(panel => {
              for (const [k, v] of Object.entries(opts)) {
                panel.content.setOption(k as any, v as any);
              }
            });
          };
          read();
          settings.changed.connect(read);
        })
        .catch(() => undefined);
    }

    app.commands.addCommand(CommandIDs.openTerminal, {
      label: args => (args?.id ? 'Terminal' : 'Open Terminal on Device'),
      caption: 'A shell on the board, in a terminal tab',
      execute: async args => {
        const dev = await connectedDevice(args, 'Open terminal on device');
        if (!dev) {
          return null;
        }
        const connection = new BoardTerminalConnection({
          deviceId: dev.id,
          deviceName: dev.name,
          name: typeof args?.terminal === 'string' ? args.terminal : undefined
        });
        const panel = new BoardTerminalPanel(connection, termOptions);
        void terminals.add(panel);
        app.shell.add(panel, 'main');
        if (args?.activate !== false) {
          app.shell.activateById(panel.id);
          void panel.content.ready.then(() => panel.content.activate());
        }
        return panel;
      }
    });

    app.commands.addCommand(CommandIDs.openBoardLog, {
      label: args => (args?.id ? 'Board log' : 'Open Board Log'),
      caption:
        'Output on the board that no cell waits for, and the agent’s messages',
      execute: async args => {
        const dev = await connectedDevice(args, 'Board log');
        if (!dev) {
          return null;
        }
        const open = logs.find(p => p.content.deviceId === dev.id);
        if (open) {
          app.shell.activateById(open.id);
          return open;
        }
        const panel = new BoardLogPanel({
          deviceId: dev.id,
          deviceName: dev.name
        });
        void logs.add(panel);
        app.shell.add(panel, 'main');
        if (args?.activate !== false) {
          app.shell.activateById(panel.id);
        }
        return panel;
      }
    });

    app.commands.addCommand(CommandIDs.installPackage, {
      label: args => (args?.id ? 'Install…' : 'Install Package on Device…'),
      caption:
        'pip install on the board (workspace wheels are pushed first: no network needed)',
      execute: async args => {
        const dev = await connectedDevice(args, 'Install package on device');
        if (!dev) {
          return null;
        }
        const prefill = fileBrowser
          ? Array.from(fileBrowser.selectedItems())
              .map(item => item.path)
              .filter(p => p.endsWith('.whl'))
          : [];
        return askAndInstall({
          deviceId: dev.id,
          deviceName: dev.name,
          prefill,
          open: (w: MainAreaWidget) => {
            app.shell.add(w, 'main', { mode: 'split-bottom' });
          }
        });
      }
    });

    app.commands.addCommand(CommandIDs.diagnose, {
      label: args => (args?.id || args?.host ? 'Why?' : 'Diagnose Connection…'),
      caption: 'Check the connection step by step and say what to fix',
      execute: async args => {
        if (typeof args?.host === 'string' && args.host) {
          return showDiagnosis(`Connection to ${args.host}`, {
            host: args.host,
            port: typeof args.port === 'number' ? args.port : undefined,
            token: typeof args.token === 'string' ? args.token : undefined
          });
        }
        let id = typeof args?.id === 'string' ? args.id : '';
        let name = typeof args?.name === 'string' ? args.name : id;
        if (!id) {
          let devices: IDevice[] = [];
          try {
            devices = await restApi.listDevices();
          } catch {
            // none
          }
          const d = await pickDevice(
            'Diagnose connection',
            devices,
            'No board is known yet. Use "Add device by address" first.'
          );
          if (!d) {
            return null;
          }
          id = d.id;
          name = d.name;
        }
        return showDiagnosis(`Why ${name} does not connect`, { id });
      }
    });

    if (palette) {
      for (const command of [
        CommandIDs.openTerminal,
        CommandIDs.openBoardLog,
        CommandIDs.installPackage,
        CommandIDs.diagnose
      ]) {
        palette.addItem({ command, category: PALETTE_CATEGORY });
      }
    }

    if (restorer) {
      void restorer.restore(terminals, {
        command: CommandIDs.openTerminal,
        args: panel => ({
          id: panel.connection.deviceId,
          name: panel.connection.deviceName,
          terminal: panel.connection.name,
          activate: false
        }),
        name: panel => panel.connection.name
      });
      void restorer.restore(logs, {
        command: CommandIDs.openBoardLog,
        args: panel => ({
          id: panel.content.deviceId,
          name: panel.content.deviceName,
          activate: false
        }),
        name: panel => panel.content.deviceId
      });
    }
  }
};

export default plugin;
