/**
 * Command ids (palette category "Remote Device") and their implementations.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  Notification,
  showDialog,
  showErrorMessage,
  WidgetTracker
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { FileBrowser } from '@jupyterlab/filebrowser';
import { ITranslator } from '@jupyterlab/translation';
import { UUID } from '@lumino/coreutils';

import { IDevice } from './api';
import { snapshotName, toBase64 } from './frame';
import { boardIcon, cameraIcon } from './icons';
import { DevicesModel } from './model';
import { KERNEL_NAME } from './notebook';
import { askForDevice } from './widgets/adddialog';
import { CameraPanel, CameraViewer, IStreamSettings } from './widgets/camera';
import { pickDevice, translationBundle } from './pick';
import { pushFile } from './push';
import { attachCameraTools } from './widgets/cameratools';
import { showConnectError } from './widgets/diagnose';
import { sshRequest } from './widgets/sshdialog';

export namespace CommandIDs {
  export const connect = 'remote-device:connect';
  export const disconnect = 'remote-device:disconnect';
  export const openCamera = 'remote-device:open-camera';
  export const addDevice = 'remote-device:add-device';
  export const pushFile = 'remote-device:push-file';
  export const pushFromBrowser = 'remote-device:push-from-browser';
  export const removeDevice = 'remote-device:remove-device';
  export const refresh = 'remote-device:refresh';
  export const openNotebook = 'remote-device:open-notebook';
  export const showSidebar = 'remote-device:show-sidebar';
  export const forgetOffline = 'remote-device:forget-offline'; // roomcommands.ts
  export const openCameraGrid = 'remote-device:open-camera-grid'; // widgets/cameragrid.ts
  export const openTerminal = 'remote-device:open-terminal'; // boardops.ts
  export const openBoardLog = 'remote-device:open-board-log'; // boardops.ts
  export const installPackage = 'remote-device:install-package'; // boardops.ts
  export const diagnose = 'remote-device:diagnose'; // boardops.ts
}

/** The palette category. */
export const PALETTE_CATEGORY = 'Remote Device';

export { KERNEL_NAME };

/** Current defaults for new camera tabs (from the settings registry). */
export interface ICameraDefaults extends IStreamSettings {
  showOverlay: boolean;
}

export interface ICommandContext {
  app: JupyterFrontEnd;
  model: DevicesModel;
  tracker: WidgetTracker<CameraPanel>;
  cameraDefaults: () => ICameraDefaults;
  fileBrowser: FileBrowser | null;
  /** For the file dialog of "Push File…" (a typed path without it). */
  docManager?: IDocumentManager | null;
  translator?: ITranslator | null;
  sidebarId: string;
}

export { pickDevice, translationBundle };

function errorMessage(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

/** The workspace folder the file browser shows ('' = root). */
function currentFolder(ctx: ICommandContext): string {
  return ctx.fileBrowser?.model.path ?? '';
}

export function addCommands(ctx: ICommandContext): void {
  const { app, model, tracker } = ctx;
  const { commands } = app;
  const trans = translationBundle(ctx.translator);
  const deviceArg = (args: any): IDevice | undefined =>
    typeof args?.id === 'string' ? model.get(args.id) : undefined;

  commands.addCommand(CommandIDs.connect, {
    label: args =>
      args?.id ? trans.__('Connect') : trans.__('Connect Device'),
    caption: trans.__('Open a session with a board'),
    icon: args => (args?.id ? undefined : boardIcon),
    execute: async args => {
      let device = deviceArg(args);
      if (!device) {
        device =
          (await pickDevice(
            trans.__('Connect device'),
            model.devices.filter(d => d.status !== 'connected'),
            model.devices.length
              ? trans.__('Every known board is connected already.')
              : trans.__(
                  'No board is known yet. Use "Add device by address" or start the agent on a board.'
                ),
            trans
          )) ?? undefined;
      }
      if (!device) {
        return null;
      }
      const token = typeof args?.token === 'string' ? args.token : undefined;
      let takeOver = args?.takeOver === true;
      for (;;) {
        try {
          const connected = await model.connect(device.id, token, takeOver);
          Notification.success(trans.__('Connected to %1.', connected.name), {
            autoClose: 3000
          });
          return connected;
        } catch (error) {
          if ((error as any)?.reason === 'in-use' && !takeOver) {
            // Another user holds the board: taking it over is always an explicit choice.
            const choice = await showDialog({
              title: trans.__('%1 is in use', device.name),
              body: trans.__(
                '%1. Take it over? Their session stops.',
                errorMessage(error).split('. Take it over')[0]
              ),
              buttons: [
                Dialog.cancelButton({ label: trans.__('Cancel') }),
                Dialog.warnButton({ label: trans.__('Take over') })
              ]
            });
            if (choice.button.accept) {
              takeOver = true;
              continue;
            }
            return null;
          }
          // "Why?" beside OK runs the connection doctor (widgets/diagnose.ts)
          await showConnectError(
            trans.__('Could not connect to %1', device.name),
            errorMessage(error),
            { id: device.id },
            trans.__('Why %1 does not connect', device.name)
          );
          return null;
        }
      }
    }
  });

  commands.addCommand(CommandIDs.disconnect, {
    label: args =>
      args?.id ? trans.__('Disconnect') : trans.__('Disconnect Device'),
    caption: trans.__('Close the session with a board'),
    execute: async args => {
      let device = deviceArg(args);
      if (!device) {
        device =
          (await pickDevice(
            trans.__('Disconnect device'),
            model.devices.filter(
              d => d.status === 'connected' || d.status === 'connecting'
            ),
            trans.__('No board is connected.'),
            trans
          )) ?? undefined;
      }
      if (!device) {
        return;
      }
      try {
        await model.disconnect(device.id);
      } catch (error) {
        await showErrorMessage(
          trans.__('Could not disconnect %1', device.name),
          errorMessage(error)
        );
      }
    }
  });

  const saveSnapshot = async (
    jpeg: Uint8Array,
    viewer: CameraViewer
  ): Promise<string> => {
    const folder = currentFolder(ctx);
    const name = snapshotName(viewer.deviceName);
    const path = folder ? PathExt.join(folder, name) : name;
    await app.serviceManager.contents.save(path, {
      type: 'file',
      format: 'base64',
      content: toBase64(jpeg)
    });
    return path;
  };

  commands.addCommand(CommandIDs.openCamera, {
    label: args => (args?.id ? 'Open Camera' : 'Open Camera Viewer'),
    caption: 'Watch the board’s camera live in a tab',
    icon: args => (args?.id ? undefined : cameraIcon),
    execute: async args => {
      let id = typeof args?.id === 'string' ? args.id : undefined;
      let name = typeof args?.name === 'string' ? args.name : undefined;
      if (!id) {
        const connected = model.connectedDevices;
        const device = await pickDevice(
          'Open camera viewer',
          connected.length ? connected : model.devices,
          'No board is known yet. Use "Add device by address" or start the agent on a board.'
        );
        if (!device) {
          return null;
        }
        id = device.id;
        name = device.name;
      }
      const device = model.get(id);
      name = device?.name ?? name ?? id;
      if (!args?.newTab && !args?.key) {
        const existing = tracker.find(w => w.content.deviceId === id);
        if (existing) {
          app.shell.activateById(existing.id);
          return existing;
        }
      }
      const defaults = ctx.cameraDefaults();
      const key =
        typeof args?.key === 'string'
          ? args.key
          : `${id}-${UUID.uuid4().slice(0, 8)}`;
      const viewer = new CameraViewer({
        deviceId: id,
        deviceName: name,
        model,
        settings: {
          width: defaults.width,
          height: defaults.height,
          quality: defaults.quality,
          fps: defaults.fps
        },
        showOverlay: defaults.showOverlay,
        saveSnapshot
      });
      viewer.node.dataset.key = key;
      const panel = new CameraPanel(viewer);
      attachCameraTools(panel, { app, model, fileBrowser: ctx.fileBrowser }); // record, tools, dataset
      panel.id = `jp-remote-device-camera-${key}`;
      (panel as any).restoreKey = key;
      panel.snapshotRequested = async () => {
        try {
          const path = await viewer.snapshot();
          Notification.success(`Saved snapshot ${path}`, { autoClose: 4000 });
        } catch (error) {
          await showErrorMessage('Snapshot failed', errorMessage(error));
        }
      };
      panel.newViewRequested = () => {
        void commands.execute(CommandIDs.openCamera, {
          id,
          newTab: true,
          ref: panel.id
        });
      };
      await tracker.add(panel);
      if (!panel.isAttached) {
        const ref = typeof args?.ref === 'string' ? args.ref : undefined;
        app.shell.add(
          panel,
          'main',
          ref ? { mode: 'split-right', ref } : undefined
        );
      }
      if (args?.activate !== false) {
        app.shell.activateById(panel.id);
      }
      return panel;
    }
  });

  commands.addCommand(CommandIDs.addDevice, {
    label: args =>
      args?.host ? trans.__('Token…') : trans.__('Add Device by Address…'),
    caption: args =>
      args?.host
        ? trans.__(
            'Set the token for this board (the agent printed it when it started)'
          )
        : trans.__('Add a board by its IP address or host name'),
    execute: async args => {
      const value = await askForDevice(
        {
          host: typeof args?.host === 'string' ? args.host : undefined,
          port: typeof args?.port === 'number' ? args.port : undefined,
          name: typeof args?.name === 'string' ? args.name : undefined
        },
        typeof args?.title === 'string' ? args.title : undefined
      );
      if (!value) {
        return null;
      }
      let device: IDevice;
      try {
        device = await model.addDevice(
          value.ssh !== undefined
            ? (sshRequest(value) as any) // {"ssh", "key"?, "name"?} (widgets/sshdialog.ts)
            : {
                host: value.host,
                port: value.port,
                ...(value.name ? { name: value.name } : {}),
                ...(value.token ? { token: value.token } : {})
              }
        );
      } catch (error) {
        if (value.ssh === undefined) {
          // "Why?" runs the connection doctor on the address (widgets/diagnose.ts)
          await showConnectError(
            trans.__('Could not add the device'),
            errorMessage(error),
            { host: value.host, port: value.port, token: value.token },
            trans.__('Connection to %1:%2', value.host, value.port)
          );
        } else {
          await showErrorMessage(
            trans.__('Could not add the device'),
            errorMessage(error)
          );
        }
        return null;
      }
      if (value.connect && device.status !== 'connected') {
        return commands.execute(CommandIDs.connect, { id: device.id });
      }
      return device;
    }
  });

  commands.addCommand(CommandIDs.removeDevice, {
    label: trans.__('Remove Device'),
    caption: trans.__('Forget a board added by hand'),
    isEnabled: args => {
      const d = deviceArg(args);
      return !d || d.source === 'manual' || d.source === 'ssh';
    },
    execute: async args => {
      let device = deviceArg(args);
      if (!device) {
        device =
          (await pickDevice(
            trans.__('Remove device'),
            model.devices.filter(
              d => d.source === 'manual' || d.source === 'ssh'
            ),
            trans.__(
              'Only boards added by hand can be removed; configured and discovered boards come back by themselves.'
            ),
            trans
          )) ?? undefined;
      }
      if (!device) {
        return;
      }
      const ok = await showDialog({
        title: trans.__('Remove device'),
        body: trans.__(
          'Forget %1 (%2:%3)? Its session, if any, is closed.',
          device.name,
          device.host,
          device.port
        ),
        buttons: [
          Dialog.cancelButton({ label: trans.__('Cancel') }),
          Dialog.warnButton({ label: trans.__('Remove') })
        ]
      });
      if (!ok.button.accept) {
        return;
      }
      try {
        await model.removeDevice(device.id);
      } catch (error) {
        await showErrorMessage(
          trans.__('Could not remove %1', device.name),
          errorMessage(error)
        );
      }
    }
  });

  commands.addCommand(CommandIDs.refresh, {
    label: trans.__('Refresh Devices'),
    caption: trans.__('Reload the list of boards from the server'),
    execute: async () => {
      model.reconnectNow();
      const state = await model.handshake();
      if (state.kind === 'missing') {
        return;
      }
      try {
        await model.refresh();
      } catch (error) {
        Notification.error(
          trans.__('Could not list devices: %1', errorMessage(error)),
          {
            autoClose: 5000
          }
        );
      }
    }
  });

  commands.addCommand(CommandIDs.pushFile, {
    label: args =>
      args?.id ? trans.__('Push File…') : trans.__('Push File to Device…'),
    caption: trans.__('Copy a workspace file or folder to a board'),
    execute: args => pushFile(ctx, args, false)
  });

  commands.addCommand(CommandIDs.pushFromBrowser, {
    label: trans.__('Push to Device…'),
    caption: trans.__(
      'Copy the selected files or folders to a connected board'
    ),
    icon: boardIcon,
    execute: args => pushFile(ctx, args, true)
  });

  commands.addCommand(CommandIDs.openNotebook, {
    label: args =>
      args?.id
        ? trans.__('Open Notebook')
        : trans.__('Open Notebook on Device'),
    caption: trans.__(
      'Create a notebook whose code runs on the board (kernel "remote-device")'
    ),
    execute: async args => {
      let device = deviceArg(args);
      if (!device) {
        const connected = model.connectedDevices;
        device =
          (await pickDevice(
            trans.__('Open notebook on device'),
            connected.length ? connected : model.devices,
            trans.__('No board is known yet.'),
            trans
          )) ?? undefined;
      }
      if (!device) {
        return null;
      }
      const kernelspecs = app.serviceManager.kernelspecs;
      try {
        await kernelspecs.ready;
        if (!kernelspecs.specs?.kernelspecs[KERNEL_NAME]) {
          await kernelspecs.refreshSpecs();
        }
      } catch {
        // fall through to the check
      }
      if (!kernelspecs.specs?.kernelspecs[KERNEL_NAME]) {
        await showErrorMessage(
          trans.__('Kernel "remote-device" not found'),
          trans.__(
            'The "Python (remote device)" kernel is not installed in this Jupyter, so a notebook cannot run on the board. ' +
              'It comes with the Python package: reinstall jupyter-remote-device (pip install jupyter-remote-device) ' +
              'in the environment that runs Jupyter, check that "jupyter kernelspec list" shows "remote-device", then reload this page.'
          )
        );
        return null;
      }
      const spec = kernelspecs.specs.kernelspecs[KERNEL_NAME]!;
      const contents = app.serviceManager.contents;
      try {
        const untitled = await contents.newUntitled({
          path: currentFolder(ctx),
          type: 'notebook'
        });
        const nb = {
          cells: [
            {
              cell_type: 'code',
              id: UUID.uuid4().slice(0, 8),
              metadata: {},
              execution_count: null,
              outputs: [],
              source: `# Runs on ${device.name} (${device.host}:${device.port})\nimport platform\nprint(platform.uname())`
            }
          ],
          metadata: {
            kernelspec: {
              name: KERNEL_NAME,
              display_name: spec.display_name,
              language: spec.language || 'python'
            },
            language_info: { name: 'python' },
            remote_device: {
              name: device.name,
              host: device.host,
              port: device.port
            }
          },
          nbformat: 4,
          nbformat_minor: 5
        };
        await contents.save(untitled.path, {
          type: 'notebook',
          format: 'json',
          content: nb
        });
        return await commands.execute('docmanager:open', {
          path: untitled.path,
          factory: 'Notebook',
          kernel: { name: KERNEL_NAME }
        });
      } catch (error) {
        await showErrorMessage(
          trans.__('Could not create the notebook'),
          errorMessage(error)
        );
        return null;
      }
    }
  });

  commands.addCommand(CommandIDs.showSidebar, {
    label: trans.__('Show Devices Sidebar'),
    execute: () => {
      app.shell.activateById(ctx.sidebarId);
    }
  });
}
