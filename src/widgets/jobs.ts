/**
 * Push jobs shown with JupyterLab's Notification API: progress while running,
 * a Cancel action (DELETE jobs/{id}), the outcome at the end.
 */
import { Notification } from '@jupyterlab/apputils';

import { IJob } from '../api';
import { DevicesModel, Format, isJobFinished } from '../model';

export function describeJob(job: IJob, what: string): string {
  const files =
    job.files_total > 1 ? ` — ${job.files_done}/${job.files_total} files` : '';
  const bytes = job.bytes_total
    ? ` — ${Format.bytes(job.bytes_done)} of ${Format.bytes(job.bytes_total)}`
    : '';
  switch (job.state) {
    case 'done':
      return `Pushed ${what}${files}${job.bytes_total ? ` (${Format.bytes(job.bytes_total)})` : ''}${job.verified ? ', sha256 verified' : ''}.`;
    case 'failed':
      return `Push of ${what} failed: ${job.error ?? 'unknown error'}`;
    case 'cancelled':
      return `Push of ${what} cancelled.`;
    default: {
      const rate = job.rate ? ` at ${Format.rate(job.rate)}` : '';
      return `Pushing ${what}${bytes}${files}${rate}`;
    }
  }
}

export function jobProgress(job: IJob): number {
  if (job.state === 'done') {
    return 1;
  }
  if (job.bytes_total > 0) {
    return Math.max(0, Math.min(1, job.bytes_done / job.bytes_total));
  }
  if (job.files_total > 0) {
    return Math.max(0, Math.min(1, job.files_done / job.files_total));
  }
  return 0;
}

/**
 * Follow one job in a notification until it ends. Resolves with the last
 * state of the job.
 */
export function followJob(
  model: DevicesModel,
  job: IJob,
  what: string
): Promise<IJob> {
  let cancelled = false;
  let latest: IJob = model.getJob(job.id) ?? job;
  const id = Notification.emit(describeJob(latest, what), 'in-progress', {
    autoClose: false,
    progress: jobProgress(latest),
    actions: [
      {
        label: 'Cancel',
        caption: 'Stop this transfer',
        callback: event => {
          event.preventDefault();
          if (cancelled || isJobFinished(latest)) {
            return;
          }
          cancelled = true;
          model.cancelJob(job.id).catch(error => {
            Notification.error(`Could not cancel: ${error.message ?? error}`, {
              autoClose: 5000
            });
          });
        }
      }
    ]
  });
  // The toast is created asynchronously (its module loads lazily): an update
  // sent before it exists is lost. Coalesce updates, send none in the first
  // moments, and send the final state twice.
  const emittedAt = Date.now();
  const FIRST_UPDATE_MS = 400;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const apply = () => {
    timer = null;
    if (isJobFinished(latest)) {
      const type =
        latest.state === 'done'
          ? 'success'
          : latest.state === 'cancelled'
            ? 'warning'
            : 'error';
      Notification.update({
        id,
        message: describeJob(latest, what),
        type,
        progress: latest.state === 'done' ? 1 : undefined,
        autoClose: latest.state === 'failed' ? false : 8000,
        actions: []
      });
    } else {
      Notification.update({
        id,
        message: describeJob(latest, what),
        type: 'in-progress',
        progress: jobProgress(latest)
      });
    }
  };
  const schedule = () => {
    if (timer !== null) {
      return;
    }
    const wait = Math.max(0, emittedAt + FIRST_UPDATE_MS - Date.now());
    timer = setTimeout(apply, wait);
  };
  return new Promise<IJob>(resolve => {
    const finish = () => {
      model.jobChanged.disconnect(onJob);
      schedule();
      setTimeout(apply, FIRST_UPDATE_MS + 1500);
      resolve(latest);
    };
    const onJob = (_: DevicesModel, updated: IJob) => {
      if (updated.id !== job.id) {
        return;
      }
      latest = updated;
      if (isJobFinished(updated)) {
        finish();
      } else {
        schedule();
      }
    };
    model.jobChanged.connect(onJob);
    if (isJobFinished(latest)) {
      finish();
    }
  });
}
