/**
 * jupyter-remote-device: wiring only (see model.ts, commands.ts, widgets/).
 */
import { addRecordCommands, RecordCommandIDs } from './recording';
import { cameraToolsPlugin } from './widgets/cameratools';
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, WidgetTracker } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { IEditorTracker } from '@jupyterlab/fileeditor';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator } from '@jupyterlab/translation';

import {
  addCommands,
  CommandIDs,
  ICameraDefaults,
  PALETTE_CATEGORY
} from './commands';
import { openBoardFile, setupBoardFiles } from './boardfiles';
import { addFileCommands } from './filecommands';
import { parseResolution } from './frame';
import { DevicesModel } from './model';
import { translationBundle } from './pick';
import { addRunButtons, addRunCommands, RunCommandIDs } from './runfile';
import { connectNotebooksOnKernelStart } from './notebook';
import boardOpsPlugin from './boardops';
import { addRoomCommands } from './roomcommands';
import { CameraPanel } from './widgets/camera';
import { cameraRendererFactory } from './widgets/cellcamera';
import { DeviceFilesPanel } from './widgets/filetree';
import { DevicesSidebar } from './widgets/sidebar';
import { DeviceStatusItem } from './widgets/statusbar';

const PLUGIN_ID = 'jupyter-remote-device:plugin';

const DEFAULTS: ICameraDefaults = {
  width: 640,
  height: 480,
  quality: 80,
  fps: 0,
  showOverlay: true
};

function readSettings(settings: ISettingRegistry.ISettings): ICameraDefaults {
  const c = settings.composite as any;
  const [width, height] = parseResolution(String(c.resolution ?? '640x480'));
  return {
    width,
    height,
    quality: Number(c.quality ?? DEFAULTS.quality),
    fps: Number(c.fps ?? DEFAULTS.fps),
    showOverlay: c.showOverlay !== false
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Remote devices sidebar, commands and live camera viewer.',
  autoStart: true,
  optional: [
    ICommandPalette,
    ILayoutRestorer,
    ISettingRegistry,
    IDefaultFileBrowser,
    IStatusBar,
    IRenderMimeRegistry,
    IDocumentManager,
    ITranslator,
    IEditorTracker
  ],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    fileBrowser: IDefaultFileBrowser | null,
    statusBar: IStatusBar | null,
    rendermime: IRenderMimeRegistry | null,
    docManager: IDocumentManager | null,
    translator: ITranslator | null,
    editors: IEditorTracker | null
  ) => {
    const model = new DevicesModel();
    const tracker = new WidgetTracker<CameraPanel>({
      namespace: 'remote-device-camera'
    });
    let defaults: ICameraDefaults = { ...DEFAULTS };

    const sidebar = new DevicesSidebar({ model, commands: app.commands });
    // The connected board's files below the list (widgets/filetree.ts).
    const filesPanel = new DeviceFilesPanel({
      model,
      contents: app.serviceManager.contents,
      currentFolder: () => fileBrowser?.model.path ?? '',
      // the server wrote into the workspace: show it in the file browser now
      onPulled: () => void fileBrowser?.model.refresh(),
      // double-click / Enter: the board file in JupyterLab's own editor (boardfiles.ts)
      openFile: path => {
        if (filesPanel.deviceId) {
          void openBoardFile(app, filesPanel.deviceId, path);
        }
      },
      translator
    });
    sidebar.addWidget(filesPanel);
    const trans = translationBundle(translator);
    addFileCommands(app, filesPanel, trans);
    setupBoardFiles(
      app,
      model,
      filesPanel,
      docManager?.registry ?? null,
      trans
    );
    addRunCommands(app, model, trans);
    if (editors) {
      addRunButtons(app, editors, trans);
    }
    app.shell.add(sidebar, 'left', { rank: 850 });
    restorer?.add(sidebar, sidebar.id);

    addCommands({
      app,
      model,
      tracker,
      cameraDefaults: () => defaults,
      fileBrowser,
      docManager,
      translator,
      sidebarId: sidebar.id
    });
    addRoomCommands({ app, model, room: sidebar.room });

    addRecordCommands(app, model, fileBrowser); // recording.ts
    if (palette) {
      for (const command of [
        RecordCommandIDs.record,
        RecordCommandIDs.stop,
        CommandIDs.connect,
        CommandIDs.disconnect,
        CommandIDs.openCamera,
        CommandIDs.addDevice,
        CommandIDs.pushFile,
        RunCommandIDs.run,
        RunCommandIDs.stop,
        CommandIDs.openNotebook,
        CommandIDs.removeDevice,
        CommandIDs.refresh,
        CommandIDs.showSidebar,
        CommandIDs.forgetOffline,
        CommandIDs.openCameraGrid
      ]) {
        palette.addItem({ command, category: PALETTE_CATEGORY });
      }
    }

    if (restorer) {
      void restorer.restore(tracker, {
        command: CommandIDs.openCamera,
        args: panel => ({
          id: panel.content.deviceId,
          name: panel.content.deviceName,
          key: (panel as any).restoreKey,
          activate: false
        }),
        name: panel => (panel as any).restoreKey
      });
    }

    if (settingRegistry) {
      void Promise.all([settingRegistry.load(PLUGIN_ID), app.restored])
        .then(([settings]) => {
          const apply = (first: boolean) => {
            const previous = defaults;
            defaults = readSettings(settings);
            if (first) {
              return;
            }
            // Honour changes live in the open tabs, key by key.
            tracker.forEach(panel => {
              const viewer = panel.content;
              if (previous.showOverlay !== defaults.showOverlay) {
                viewer.showOverlay = defaults.showOverlay;
              }
              const partial: any = {};
              if (previous.quality !== defaults.quality) {
                partial.quality = defaults.quality;
              }
              if (previous.fps !== defaults.fps) {
                partial.fps = defaults.fps;
              }
              if (
                previous.width !== defaults.width ||
                previous.height !== defaults.height
              ) {
                partial.width = defaults.width;
                partial.height = defaults.height;
              }
              if (Object.keys(partial).length) {
                viewer.updateSettings(partial);
              }
            });
          };
          apply(true);
          settings.changed.connect(() => apply(false));
          const hook = (window as any).jupyterRemoteDevice;
          if (hook) {
            hook.settings = settings;
          }
          // Tabs restored before the settings were read.
          tracker.forEach(panel => {
            panel.content.showOverlay = defaults.showOverlay;
          });
        })
        .catch(reason => {
          console.error('jupyter-remote-device: cannot load settings', reason);
        });
    }

    if (statusBar) {
      const item = new DeviceStatusItem(model, () => {
        app.shell.activateById(sidebar.id);
      });
      statusBar.registerStatusItem('jupyter-remote-device:status', {
        item,
        align: 'left',
        rank: 5,
        isActive: () => true
      });
      tracker.currentChanged.connect((_, panel) => {
        item.setViewer(panel ? panel.content : null);
      });
    }

    if (rendermime) {
      // Live camera outputs in notebook cells.
      rendermime.addFactory(
        cameraRendererFactory(model, (id, name) => {
          void app.commands.execute(CommandIDs.openCamera, { id, name });
        })
      );
    }

    if (PageConfig.getOption('exposeAppInBrowser') === 'true') {
      // Test hook (galata sets expose_app_in_browser), like window.jupyterapp.
      (window as any).jupyterRemoteDevice = { model, tracker };
    }

    void model.start();
  }
};

/**
 * Silent `%connect` when a notebook made by "Open notebook on device" starts
 * or restarts its kernel.
 */
const notebookPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-remote-device:notebook-connect',
  description:
    'Reconnects remote-device notebooks to their board on kernel start.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker) => {
    connectNotebooksOnKernelStart(tracker);
  }
};

export default [plugin, notebookPlugin, cameraToolsPlugin, boardOpsPlugin];
