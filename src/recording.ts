/**
 * Camera recordings from the frontend: `POST devices/{id}/recordings` (a Job of
 * kind "record", followed on the events socket like push jobs), stopping with
 * `DELETE jobs/{id}`, and the palette commands "Record Camera…" and "Stop
 * Camera Recording".
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  Notification,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import type { FileBrowser } from '@jupyterlab/filebrowser';
import { Widget } from '@lumino/widgets';

import { IJob, jsonBody, requestAPI } from './api';
import { Format } from './format';
import { DevicesModel, isJobFinished } from './model';

export type RecordFormat = 'mp4' | 'webm' | 'mjpeg' | 'frames';
export const RECORD_FORMATS: [RecordFormat, string][] = [
  ['mp4', 'MP4 (H.264)'],
  ['webm', 'WebM (VP8)'],
  ['mjpeg', 'MJPEG (AVI)'],
  ['frames', 'JPEG frames + CSV']
];
const EXT: Record<RecordFormat, string> = {
  mp4: '.mp4',
  webm: '.webm',
  mjpeg: '.avi',
  frames: ''
};

export interface IRecordJob extends IJob {
  frames: number;
  duration_s: number;
  path: string;
  format?: RecordFormat;
  device_id?: string;
  stopped_by?: string | null;
  message?: string | null;
  elapsed_s?: number;
}

export interface IRecordRequest {
  path?: string;
  format?: RecordFormat;
  camera?: string;
  width?: number;
  height?: number;
  quality?: number;
  fps?: number;
  seconds?: number;
}

export namespace RecordCommandIDs {
  export const record = 'remote-device:record-camera';
  export const stop = 'remote-device:stop-recording';
}

export async function startRecording(
  deviceId: string,
  body: IRecordRequest
): Promise<IRecordJob> {
  return requestAPI<IRecordJob>(
    `devices/${encodeURIComponent(deviceId)}/recordings`,
    jsonBody('POST', body)
  );
}

/** Ends the recording; resolves once the server has completed the file. */
export async function stopRecording(jobId: string): Promise<void> {
  await requestAPI(`jobs/${encodeURIComponent(jobId)}`, { method: 'DELETE' });
}

/** A file name for a new recording of `board` (in `folder` of the workspace). */
export function recordingPath(
  folder: string,
  board: string,
  format: RecordFormat,
  date = new Date()
): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp =
    `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-` +
    `${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
  const safe = board.replace(/[^A-Za-z0-9._-]+/g, '_') || 'board';
  const name = `${safe}-${stamp}${EXT[format]}`;
  return folder ? PathExt.join(folder, name) : name;
}

/** "00:12 · 1.4 MB" for a running recording. */
export function recordingLabel(job: Partial<IRecordJob>): string {
  const t = Math.max(0, Math.floor(job.duration_s ?? job.elapsed_s ?? 0));
  const mm = String(Math.floor(t / 60)).padStart(2, '0');
  const ss = String(t % 60).padStart(2, '0');
  return `${mm}:${ss} · ${Format.bytes(job.bytes_done ?? 0)}`;
}

/** What a finished recording says to the user. */
export function recordingSummary(job: IRecordJob): string {
  if (job.state === 'failed') {
    return `Recording failed: ${job.error ?? 'unknown error'}`;
  }
  const why =
    job.stopped_by === 'board-lost'
      ? ' (the board was lost; the file holds what arrived)'
      : job.stopped_by === 'session-ended'
        ? ' (the session ended)'
        : '';
  return `Saved ${job.path}: ${job.frames} frames, ${job.duration_s.toFixed(1)} s, ${Format.bytes(job.bytes_done)}${why}`;
}

/**
 * Follow a recording: `onUpdate` on every event; at the end, a notification and
 * a refresh of the file browser so the file shows up.
 */
export function followRecording(
  model: DevicesModel,
  job: IRecordJob,
  onUpdate: (job: IRecordJob) => void,
  fileBrowser: FileBrowser | null
): () => void {
  let done = false;
  const handler = (_: DevicesModel, j: IJob) => {
    if (j.id !== job.id || done) {
      return;
    }
    const r = j as IRecordJob;
    onUpdate(r);
    if (isJobFinished(r)) {
      done = true;
      model.jobChanged.disconnect(handler);
      if (r.state === 'done') {
        Notification.success(recordingSummary(r), { autoClose: 6000 });
      } else {
        Notification.error(recordingSummary(r), { autoClose: 8000 });
      }
      void fileBrowser?.model.refresh();
    }
  };
  model.jobChanged.connect(handler);
  model.handleJob({ ...job, device: job.device_id });
  return () => model.jobChanged.disconnect(handler);
}

const RUNNING = new Map<string, IRecordJob>();
const TRACKED = new WeakSet<DevicesModel>();

/** Keep the set of running recordings up to date from the model's job events. */
export function trackRecordings(model: DevicesModel): void {
  if (TRACKED.has(model)) {
    return;
  }
  TRACKED.add(model);
  model.jobChanged.connect((_, j) => {
    if (j.kind !== 'record') {
      return;
    }
    if (isJobFinished(j)) {
      RUNNING.delete(j.id);
    } else {
      RUNNING.set(j.id, j as IRecordJob);
    }
  });
}

/** The running recordings seen on the events socket (of a device, when given). */
export function runningRecordings(deviceId?: string): IRecordJob[] {
  return [...RUNNING.values()].filter(
    j => !deviceId || j.device_id === deviceId
  );
}

class RecordForm extends Widget {
  constructor(
    devices: ReadonlyArray<{ id: string; name: string }>,
    folder: string
  ) {
    super();
    this.addClass('jp-RemoteDevice-recordForm');
    const add = (label: string, el: HTMLElement) => {
      const l = document.createElement('label');
      l.textContent = label;
      l.appendChild(el);
      this.node.appendChild(l);
    };
    this.device = document.createElement('select');
    this.device.className = 'jp-mod-styled jp-RemoteDevice-recordDevice';
    for (const d of devices) {
      const o = document.createElement('option');
      o.value = d.id;
      o.textContent = d.name;
      this.device.appendChild(o);
    }
    add('Board ', this.device);
    this.format = document.createElement('select');
    this.format.className = 'jp-mod-styled jp-RemoteDevice-recordFormat';
    for (const [v, l] of RECORD_FORMATS) {
      const o = document.createElement('option');
      o.value = v;
      o.textContent = l;
      this.format.appendChild(o);
    }
    add('Format ', this.format);
    this.seconds = document.createElement('input');
    this.seconds.type = 'number';
    this.seconds.min = '0';
    this.seconds.step = 'any'; // 1.5 s is fine (the dialog refuses invalid inputs)
    this.seconds.placeholder = 'until stopped';
    this.seconds.className = 'jp-mod-styled jp-RemoteDevice-recordSeconds';
    add('Seconds ', this.seconds);
    this.path = document.createElement('input');
    this.path.className = 'jp-mod-styled jp-RemoteDevice-recordPath';
    this.path.placeholder = `${folder ? folder + '/' : ''}<board>-<time>.<ext>`;
    add('Save as ', this.path);
  }

  getValue(): {
    device: string;
    format: RecordFormat;
    seconds?: number;
    path?: string;
  } {
    const s = parseFloat(this.seconds.value);
    return {
      device: this.device.value,
      format: this.format.value as RecordFormat,
      seconds: s > 0 ? s : undefined,
      path: this.path.value.trim() || undefined
    };
  }

  device: HTMLSelectElement;
  format: HTMLSelectElement;
  seconds: HTMLInputElement;
  path: HTMLInputElement;
}

/** The palette commands (registered by the plugin). */
export function addRecordCommands(
  app: JupyterFrontEnd,
  model: DevicesModel,
  fileBrowser: FileBrowser | null
): void {
  trackRecordings(model);
  app.commands.addCommand(RecordCommandIDs.record, {
    label: 'Record Camera…',
    caption:
      'Record a board’s camera on the server into a workspace file (mp4, webm, mjpeg or frames)',
    execute: async args => {
      const devices = model.connectedDevices;
      if (!devices.length) {
        await showErrorMessage(
          'Record camera',
          'No board is connected. Connect one from the Devices sidebar.'
        );
        return;
      }
      const folder = fileBrowser?.model.path ?? '';
      const form = new RecordForm(devices, folder);
      if (typeof args?.id === 'string') {
        form.device.value = args.id;
      }
      const result = await showDialog({
        title: 'Record camera',
        body: form,
        buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Record' })]
      });
      if (!result.button.accept || !result.value) {
        return;
      }
      const v = result.value;
      const device = model.get(v.device);
      try {
        const job = await startRecording(v.device, {
          format: v.format,
          seconds: v.seconds,
          path:
            v.path ?? recordingPath(folder, device?.name ?? v.device, v.format)
        });
        Notification.info(`Recording ${device?.name ?? ''} to ${job.path}`, {
          autoClose: 4000
        });
        followRecording(model, job, () => undefined, fileBrowser);
        return job;
      } catch (error) {
        await showErrorMessage(
          'Recording failed to start',
          (error as Error).message ?? String(error)
        );
      }
    }
  });
  app.commands.addCommand(RecordCommandIDs.stop, {
    label: 'Stop Camera Recording',
    caption: 'End the running camera recordings (the files are completed)',
    isEnabled: () => runningRecordings().length > 0,
    execute: async () => {
      for (const job of runningRecordings()) {
        try {
          await stopRecording(job.id);
        } catch (error) {
          await showErrorMessage(
            'Stopping the recording failed',
            (error as Error).message ?? String(error)
          );
        }
      }
    }
  });
}
