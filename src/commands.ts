/**
 * Command ids (palette category "Remote Device") and their implementations.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  InputDialog,
  Notification,
  showDialog,
  showErrorMessage,
  WidgetTracker
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { FileBrowser } from '@jupyterlab/filebrowser';
import { UUID } from '@lumino/coreutils';

import { IDevice } from './api';
import { snapshotName, toBase64 } from './frame';
import { boardIcon, cameraIcon } from './icons';
import { DevicesModel } from './model';
import { KERNEL_NAME } from './notebook';
import { askForDevice } from './widgets/adddialog';
import { CameraPanel, CameraViewer, IStreamSettings } from './widgets/camera';
import { followJob } from './widgets/jobs';
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
  sidebarId: string;
}

function deviceLabel(d: IDevice): string {
  return `${d.name} — ${d.host}:${d.port} (${d.status})`;
}

/** Ask the user for one board among `candidates` (InputDialog.getItem). */
export async function pickDevice(
  title: string,
  candidates: ReadonlyArray<IDevice>,
  emptyMessage: string
): Promise<IDevice | null> {
  if (candidates.length === 0) {
    await showErrorMessage(title, emptyMessage);
    return null;
  }
  const labels = candidates.map(deviceLabel);
  const result = await InputDialog.getItem({
    title,
    label: 'Board',
    items: labels,
    current: 0
  });
  if (!result.button.accept || result.value === null) {
    return null;
  }
  const index = labels.indexOf(result.value);
  return index >= 0 ? candidates[index] : null;
}

function errorMessage(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

/** The workspace folder the file browser shows ('' = root). */
function currentFolder(ctx: ICommandContext): string {
  const path = ctx.fileBrowser?.model.path ?? '';
  // Strip a drive prefix ("Drive:path") which the contents API handles itself.
  return path;
}

export function addCommands(ctx: ICommandContext): void {
  const { app, model, tracker } = ctx;
  const { commands } = app;
  const deviceArg = (args: any): IDevice | undefined =>
    typeof args?.id === 'string' ? model.get(args.id) : undefined;

  commands.addCommand(CommandIDs.connect, {
    label: args => (args?.id ? 'Connect' : 'Connect Device'),
    caption: 'Open a session with a board',
    icon: args => (args?.id ? undefined : boardIcon),
    execute: async args => {
      let device = deviceArg(args);
      if (!device) {
        device =
          (await pickDevice(
            'Connect device',
            model.devices.filter(d => d.status !== 'connected'),
            model.devices.length
              ? 'Every known board is connected already.'
              : 'No board is known yet. Use "Add device by address" or start the agent on a board.'
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
          Notification.success(`Connected to ${connected.name}.`, {
            autoClose: 3000
          });
          return connected;
        } catch (error) {
          if ((error as any)?.reason === 'in-use' && !takeOver) {
            // Another user holds the board: taking it over is always an explicit choice.
            const choice = await showDialog({
              title: `${device.name} is in use`,
              body: `${errorMessage(error).split('. Take it over')[0]}. Take it over? Their session stops.`,
              buttons: [
                Dialog.cancelButton(),
                Dialog.warnButton({ label: 'Take over' })
              ]
            });
            if (choice.button.accept) {
              takeOver = true;
              continue;
            }
            return null;
          }
          await showErrorMessage(
            `Could not connect to ${device.name}`,
            errorMessage(error)
          );
          return null;
        }
      }
    }
  });

  commands.addCommand(CommandIDs.disconnect, {
    label: args => (args?.id ? 'Disconnect' : 'Disconnect Device'),
    caption: 'Close the session with a board',
    execute: async args => {
      let device = deviceArg(args);
      if (!device) {
        device =
          (await pickDevice(
            'Disconnect device',
            model.devices.filter(
              d => d.status === 'connected' || d.status === 'connecting'
            ),
            'No board is connected.'
          )) ?? undefined;
      }
      if (!device) {
        return;
      }
      try {
        await model.disconnect(device.id);
      } catch (error) {
        await showErrorMessage(
          `Could not disconnect ${device.name}`,
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
    label: args => (args?.host ? 'Token…' : 'Add Device by Address…'),
    caption: args =>
      args?.host
        ? 'Set the token for this board (the agent printed it when it started)'
        : 'Add a board by its IP address or host name',
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
        await showErrorMessage('Could not add the device', errorMessage(error));
        return null;
      }
      if (value.connect && device.status !== 'connected') {
        return commands.execute(CommandIDs.connect, { id: device.id });
      }
      return device;
    }
  });

  commands.addCommand(CommandIDs.removeDevice, {
    label: 'Remove Device',
    caption: 'Forget a board added by hand',
    isEnabled: args => {
      const d = deviceArg(args);
      return !d || d.source === 'manual' || d.source === 'ssh';
    },
    execute: async args => {
      let device = deviceArg(args);
      if (!device) {
        device =
          (await pickDevice(
            'Remove device',
            model.devices.filter(
              d => d.source === 'manual' || d.source === 'ssh'
            ),
            'Only boards added by hand can be removed; configured and discovered boards come back by themselves.'
          )) ?? undefined;
      }
      if (!device) {
        return;
      }
      const ok = await showDialog({
        title: 'Remove device',
        body: `Forget ${device.name} (${device.host}:${device.port})? Its session, if any, is closed.`,
        buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Remove' })]
      });
      if (!ok.button.accept) {
        return;
      }
      try {
        await model.removeDevice(device.id);
      } catch (error) {
        await showErrorMessage(
          `Could not remove ${device.name}`,
          errorMessage(error)
        );
      }
    }
  });

  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh Devices',
    caption: 'Reload the list of boards from the server',
    execute: async () => {
      model.reconnectNow();
      const state = await model.handshake();
      if (state.kind === 'missing') {
        return;
      }
      try {
        await model.refresh();
      } catch (error) {
        Notification.error(`Could not list devices: ${errorMessage(error)}`, {
          autoClose: 5000
        });
      }
    }
  });

  const pushFile = async (args: any, fromBrowser: boolean) => {
    let sources: string[] = [];
    const selected = ctx.fileBrowser
      ? Array.from(ctx.fileBrowser.selectedItems()).map(item => item.path)
      : [];
    if (typeof args?.path === 'string' && args.path) {
      sources = [args.path];
    } else if (fromBrowser) {
      sources = selected;
    }
    if (sources.length === 0 && !fromBrowser) {
      // Palette / sidebar: ask, with the file browser's selection prefilled.
      const result = await InputDialog.getText({
        title: 'Push file to device',
        label: 'File or folder in the workspace',
        text: selected[0] ?? currentFolder(ctx),
        placeholder: 'path/to/file.py'
      });
      if (!result.button.accept || !result.value) {
        return;
      }
      sources = [result.value.replace(/^\/+/, '')];
    }
    if (sources.length === 0) {
      await showErrorMessage(
        'Push to device',
        'Select a file or folder in the file browser first.'
      );
      return;
    }
    let device = deviceArg(args);
    if (!device) {
      const connected = model.connectedDevices;
      device =
        connected.length === 1 && fromBrowser
          ? connected[0]
          : ((await pickDevice(
              `Push ${sources.length === 1 ? PathExt.basename(sources[0]) : `${sources.length} items`} to device`,
              connected,
              'No board is connected. Connect one from the Devices sidebar first.'
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
        title: `Push to ${device.name}`,
        label: 'Path on the board (relative to the agent’s root)',
        text: PathExt.basename(sources[0])
      });
      if (!result.button.accept || !result.value) {
        return;
      }
      dests = [result.value];
    } else {
      const result = await InputDialog.getText({
        title: `Push ${sources.length} items to ${device.name}`,
        label:
          'Folder on the board (relative to the agent’s root; empty = root)',
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
    const jobs = [];
    for (let i = 0; i < sources.length; i++) {
      const what = `${PathExt.basename(sources[i])} to ${device.name}:${dests[i]}`;
      try {
        const job = await model.push(device.id, sources[i], dests[i]);
        jobs.push(followJob(model, job, what));
      } catch (error) {
        await showErrorMessage(
          `Could not push ${PathExt.basename(sources[i])}`,
          errorMessage(error)
        );
      }
    }
    return Promise.all(jobs);
  };

  commands.addCommand(CommandIDs.pushFile, {
    label: args => (args?.id ? 'Push File…' : 'Push File to Device…'),
    caption: 'Copy a workspace file or folder to a board',
    execute: args => pushFile(args, false)
  });

  commands.addCommand(CommandIDs.pushFromBrowser, {
    label: 'Push to Device…',
    caption: 'Copy the selected files or folders to a connected board',
    icon: boardIcon,
    execute: args => pushFile(args, true)
  });

  commands.addCommand(CommandIDs.openNotebook, {
    label: args => (args?.id ? 'Open Notebook' : 'Open Notebook on Device'),
    caption:
      'Create a notebook whose code runs on the board (kernel "remote-device")',
    execute: async args => {
      let device = deviceArg(args);
      if (!device) {
        const connected = model.connectedDevices;
        device =
          (await pickDevice(
            'Open notebook on device',
            connected.length ? connected : model.devices,
            'No board is known yet.'
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
          'Kernel "remote-device" not found',
          'The "Python (remote device)" kernel is not installed in this Jupyter, so a notebook cannot run on the board. ' +
            'It comes with the Python package: reinstall jupyter-remote-device (pip install jupyter-remote-device) ' +
            'in the environment that runs Jupyter, check that "jupyter kernelspec list" shows "remote-device", then reload this page.'
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
          'Could not create the notebook',
          errorMessage(error)
        );
        return null;
      }
    }
  });

  commands.addCommand(CommandIDs.showSidebar, {
    label: 'Show Devices Sidebar',
    execute: () => {
      app.shell.activateById(ctx.sidebarId);
    }
  });
}
