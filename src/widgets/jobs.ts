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
export function followJob(model: DevicesModel, job: IJob, what: string): Promise<IJob> {
  let cancelled = false;
  const id = Notification.emit(describeJob(job, what), 'in-progress', {
    autoClose: false,
    progress: jobProgress(job),
    actions: [
      {
        label: 'Cancel',
        caption: 'Stop this transfer',
        callback: event => {
          event.preventDefault();
          if (cancelled) {
            return;
          }
          cancelled = true;
          model.cancelJob(job.id).catch(error => {
            Notification.error(`Could not cancel: ${error.message ?? error}`, { autoClose: 5000 });
          });
        }
      }
    ]
  });
  return new Promise<IJob>(resolve => {
    const finish = (last: IJob) => {
      model.jobChanged.disconnect(onJob);
      const type = last.state === 'done' ? 'success' : last.state === 'cancelled' ? 'warning' : 'error';
      Notification.update({
        id,
        message: describeJob(last, what),
        type,
        progress: last.state === 'done' ? 1 : undefined,
        autoClose: last.state === 'failed' ? false : 6000,
        actions: []
      });
      resolve(last);
    };
    const onJob = (_: DevicesModel, updated: IJob) => {
      if (updated.id !== job.id) {
        return;
      }
      if (isJobFinished(updated)) {
        finish(updated);
        return;
      }
      Notification.update({
        id,
        message: describeJob(updated, what),
        type: 'in-progress',
        progress: jobProgress(updated)
      });
    };
    model.jobChanged.connect(onJob);
    const known = model.getJob(job.id) ?? job;
    if (isJobFinished(known)) {
      finish(known);
    }
  });
}
