/**
 * What the camera tab adds for recording and vision work: a Record button (with
 * the elapsed time and size while it runs) and its format, a Tools toggle (the
 * vision panel: zoom, probe, histogram, threshold, focus) and a Dataset toggle.
 * `attachCameraTools(panel, ctx)` is called once per camera tab.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Clipboard, Notification } from '@jupyterlab/apputils';
import type { FileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { IJob } from '../api';
import { DevicesModel, isJobFinished } from '../model';
import {
  followRecording,
  IRecordJob,
  RECORD_FORMATS,
  RecordFormat,
  recordingLabel,
  recordingPath,
  runningRecordings,
  startRecording,
  stopRecording,
  trackRecordings
} from '../recording';
import { VisionTools } from '../vision/tools';
import type { CameraPanel } from './camera';
import { DatasetBar } from './dataset';

export interface ICameraToolsContext {
  app: JupyterFrontEnd;
  model: DevicesModel;
  fileBrowser: FileBrowser | null;
}

let notebooks: INotebookTracker | null = null;

/** Insert text at the cursor of the active notebook cell; false when there is none. */
export function insertInActiveCell(text: string): boolean {
  const cell = notebooks?.activeCell;
  if (!cell) {
    return false;
  }
  const editor: any = cell.editor;
  if (editor && typeof editor.replaceSelection === 'function') {
    editor.replaceSelection(text);
  } else {
    const shared = cell.model.sharedModel;
    shared.setSource(shared.getSource() + text);
  }
  return true;
}

function toolbarButton(
  cls: string,
  label: string,
  title: string,
  onClick: () => void
): { widget: Widget; button: HTMLButtonElement } {
  const widget = new Widget();
  widget.addClass('jp-RemoteDevice-toolbarSelect');
  const button = document.createElement('button');
  button.className = `jp-ToolbarButtonComponent jp-Button jp-mod-minimal ${cls}`;
  button.textContent = label;
  button.title = title;
  button.addEventListener('click', onClick);
  widget.node.appendChild(button);
  return { widget, button };
}

/** Add the Record / Tools / Dataset items to a camera tab. */
export function attachCameraTools(
  panel: CameraPanel,
  ctx: ICameraToolsContext
): void {
  const viewer = panel.content;
  const { model, fileBrowser } = ctx;
  trackRecordings(model);
  const folder = () => fileBrowser?.model.path ?? '';
  const notify = (message: string, error = false) =>
    error
      ? Notification.error(message, { autoClose: 5000 })
      : Notification.info(message, { autoClose: 3000 });

  // -- record ---------------------------------------------------------------
  let current: IRecordJob | null =
    runningRecordings(viewer.deviceId)[0] ?? null;
  let starting = false;
  const format = document.createElement('select');
  format.className = 'jp-mod-styled jp-RemoteDevice-recordFormat';
  format.title = 'Recording format';
  format.setAttribute('aria-label', 'Recording format');
  for (const [v, l] of RECORD_FORMATS) {
    const o = document.createElement('option');
    o.value = v;
    o.textContent = v; // short in the toolbar; the long name as a tooltip
    o.title = l;
    format.appendChild(o);
  }
  const rec = toolbarButton(
    'jp-RemoteDevice-record',
    'Record',
    'Record this camera on the server into the file browser’s folder',
    () => {
      void toggleRecording();
    }
  );
  const render = () => {
    const running = current !== null && !isJobFinished(current);
    rec.button.dataset.recording = String(running);
    rec.button.textContent = running
      ? `■ ${recordingLabel(current!)}`
      : '● Record';
    rec.button.title = running
      ? `Recording to ${current!.path} (${current!.frames} frames) — click to stop`
      : 'Record this camera on the server into the file browser’s folder';
    format.disabled = running || starting;
  };
  const toggleRecording = async () => {
    if (starting) {
      return;
    }
    if (current && !isJobFinished(current)) {
      const id = current.id;
      rec.button.disabled = true;
      try {
        await stopRecording(id);
      } catch (e) {
        notify(
          `Stopping the recording failed: ${(e as Error).message ?? e}`,
          true
        );
      } finally {
        rec.button.disabled = false;
      }
      return;
    }
    starting = true;
    render();
    const fmt = format.value as RecordFormat;
    const s = viewer.settings;
    try {
      const job = await startRecording(viewer.deviceId, {
        format: fmt,
        width: s.width,
        height: s.height,
        quality: s.quality,
        fps: s.fps,
        path: recordingPath(folder(), viewer.deviceName, fmt)
      });
      current = job;
      followRecording(
        model,
        job,
        j => {
          if (current && j.id === current.id) {
            current = j;
            render();
          }
        },
        fileBrowser
      );
    } catch (e) {
      notify(`Recording failed to start: ${(e as Error).message ?? e}`, true);
    } finally {
      starting = false;
      render();
    }
  };
  const onJob = (_: DevicesModel, j: IJob) => {
    const r = j as IRecordJob;
    if (r.kind !== 'record' || r.device_id !== viewer.deviceId) {
      return;
    }
    if (!current || current.id === r.id || isJobFinished(current)) {
      current = r;
      render();
    }
  };
  model.jobChanged.connect(onJob);
  const fmtWidget = new Widget();
  fmtWidget.addClass('jp-RemoteDevice-toolbarSelect');
  fmtWidget.node.appendChild(format);
  panel.toolbar.addItem('record', rec.widget);
  panel.toolbar.addItem('record-format', fmtWidget);
  render();

  // -- vision tools ------------------------------------------------------------
  let tools: VisionTools | null = null;
  const toolsBtn = toolbarButton(
    'jp-RemoteDevice-toolsToggle',
    'Tools',
    'Vision tools: zoom, pixel probe, histogram, threshold, focus',
    () => {
      if (tools) {
        tools.dispose();
        tools = null;
      } else {
        tools = new VisionTools(viewer, {
          copyText: text => Clipboard.copyToSystem(text),
          insertText: insertInActiveCell,
          notify: m => notify(m)
        });
        (viewer as any).visionTools = tools;
      }
      toolsBtn.button.setAttribute('aria-pressed', String(!!tools));
    }
  );
  panel.toolbar.addItem('vision-tools', toolsBtn.widget);

  // -- dataset ----------------------------------------------------------------
  let dataset: DatasetBar | null = null;
  const dataBtn = toolbarButton(
    'jp-RemoteDevice-datasetToggle',
    'Dataset',
    'Snapshot series: save labelled frames into dataset/<label>/',
    () => {
      if (dataset) {
        dataset.dispose();
        dataset = null;
      } else {
        dataset = new DatasetBar(viewer, {
          contents: ctx.app.serviceManager.contents,
          folder,
          notify
        });
        (viewer as any).dataset = dataset;
      }
      dataBtn.button.setAttribute('aria-pressed', String(!!dataset));
    }
  );
  panel.toolbar.addItem('dataset', dataBtn.widget);

  panel.disposed.connect(() => {
    model.jobChanged.disconnect(onJob);
    tools?.dispose();
    dataset?.dispose();
  });
}

/** Gives the camera tools the notebook tracker (Insert in cell). */
export const cameraToolsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-remote-device:camera-tools',
  description:
    'Inserts find_blobs thresholds from the camera tools into notebook cells.',
  autoStart: true,
  optional: [INotebookTracker],
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker | null) => {
    notebooks = tracker;
  }
};
