/**
 * Commands for a room full of boards: "Forget offline boards" and "Open camera grid"
 * (widgets/cameragrid.ts). Registered from index.ts with addRoomCommands().
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  Notification,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';

import { CommandIDs } from './commands';
import { cameraIcon } from './icons';
import { DevicesModel } from './model';
import { forgettable, gridDevices, RoomState } from './room';
import { CameraGrid, CameraGridPanel } from './widgets/cameragrid';

export interface IRoomContext {
  app: JupyterFrontEnd;
  model: DevicesModel;
  room: RoomState;
}

/** How many names a confirmation lists before "and N more". */
const LIST_AT_MOST = 12;

export function namesList(names: string[]): string {
  if (names.length <= LIST_AT_MOST) {
    return names.join(', ');
  }
  return `${names.slice(0, LIST_AT_MOST).join(', ')} and ${names.length - LIST_AT_MOST} more`;
}

export function addRoomCommands(ctx: IRoomContext): void {
  const { app, model } = ctx;
  app.commands.addCommand(CommandIDs.forgetOffline, {
    label: 'Forget Offline Boards',
    caption:
      'Remove the offline boards that were added by hand or found; configured boards stay',
    isEnabled: () => forgettable(model.devices).length > 0,
    execute: async args => {
      const stale = forgettable(model.devices);
      if (stale.length === 0) {
        Notification.info('No offline board to forget.', { autoClose: 3000 });
        return 0;
      }
      if (args?.confirm !== false) {
        const ok = await showDialog({
          title: 'Forget offline boards',
          body: `Remove ${stale.length} offline board${stale.length === 1 ? '' : 's'}: ${namesList(
            stale.map(d => d.name || `${d.host}:${d.port}`)
          )}? Configured boards stay; a found board comes back when it answers again.`,
          buttons: [
            Dialog.cancelButton(),
            Dialog.warnButton({ label: 'Forget' })
          ]
        });
        if (!ok.button.accept) {
          return 0;
        }
      }
      const failed: string[] = [];
      await Promise.all(
        stale.map(d =>
          model.removeDevice(d.id).catch(error => {
            failed.push(`${d.name}: ${(error as Error)?.message ?? error}`);
          })
        )
      );
      const done = stale.length - failed.length;
      if (failed.length) {
        await showErrorMessage(
          'Some boards could not be forgotten',
          failed.join('\n')
        );
      } else {
        Notification.success(
          `Forgot ${done} offline board${done === 1 ? '' : 's'}.`,
          { autoClose: 3000 }
        );
      }
      return done;
    }
  });

  app.commands.addCommand(CommandIDs.openCameraGrid, {
    label: 'Open Camera Grid',
    caption:
      'The cameras of the selected boards (or of every connected board) in one tab; click a tile for its full camera',
    icon: args => (args?.ids ? undefined : cameraIcon),
    isEnabled: () => model.connectedDevices.length > 0,
    execute: async args => {
      const ids = Array.isArray(args?.ids) ? (args.ids as string[]) : null;
      const devices = ids
        ? model.devices.filter(
            d => ids.includes(d.id) && d.status === 'connected'
          )
        : gridDevices(model.devices, ctx.room);
      if (devices.length === 0) {
        await showErrorMessage(
          'Open camera grid',
          'No board is connected. Connect boards in the Devices sidebar first (select some to show only those).'
        );
        return null;
      }
      const grid = new CameraGrid({
        model,
        devices,
        openCamera: device =>
          void app.commands.execute(CommandIDs.openCamera, {
            id: device.id,
            name: device.name
          })
      });
      const panel = new CameraGridPanel(grid);
      panel.id = `jp-remote-device-grid-${++gridCount}`;
      app.shell.add(panel, 'main');
      app.shell.activateById(panel.id);
      return panel;
    }
  });
}

let gridCount = 0;
