/**
 * Push and pull jobs shown with JupyterLab's Notification API: progress while
 * running, a Cancel action (DELETE jobs/{id}), the outcome at the end.
 */
import { Notification } from '@jupyterlab/apputils';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { IJob } from '../api';
import { Format } from '../format';
import { DevicesModel, isJobFinished, jobProgress } from '../model';
import { TRANSLATION_DOMAIN } from '../pick';

export { jobProgress };

function defaultTrans(): TranslationBundle {
  return nullTranslator.load(TRANSLATION_DOMAIN);
}

export function describeJob(
  job: IJob,
  what: string,
  trans: TranslationBundle = defaultTrans()
): string {
  const files =
    job.files_total > 1
      ? trans.__(' — %1/%2 files', job.files_done, job.files_total)
      : '';
  const bytes = job.bytes_total
    ? trans.__(
        ' — %1 of %2',
        Format.bytes(job.bytes_done),
        Format.bytes(job.bytes_total)
      )
    : '';
  const pull = job.kind === 'pull';
  switch (job.state) {
    case 'done': {
      const size = job.bytes_total ? ` (${Format.bytes(job.bytes_total)})` : '';
      const verified = job.verified ? trans.__(', sha256 verified') : '';
      return pull
        ? trans.__('Pulled %1%2%3%4.', what, files, size, verified)
        : trans.__('Pushed %1%2%3%4.', what, files, size, verified);
    }
    case 'failed': {
      const error = job.error ?? trans.__('unknown error');
      return pull
        ? trans.__('Pull of %1 failed: %2', what, error)
        : trans.__('Push of %1 failed: %2', what, error);
    }
    case 'cancelled':
      return pull
        ? trans.__('Pull of %1 cancelled.', what)
        : trans.__('Push of %1 cancelled.', what);
    default: {
      const rate = job.rate ? trans.__(' at %1', Format.rate(job.rate)) : '';
      return pull
        ? trans.__('Pulling %1%2%3%4', what, bytes, files, rate)
        : trans.__('Pushing %1%2%3%4', what, bytes, files, rate);
    }
  }
}

/**
 * Follow one job in a notification until it ends. Resolves with the last
 * state of the job.
 */
export function followJob(
  model: DevicesModel,
  job: IJob,
  what: string,
  trans: TranslationBundle = defaultTrans()
): Promise<IJob> {
  let cancelled = false;
  let latest: IJob = model.getJob(job.id) ?? job;
  const id = Notification.emit(
    describeJob(latest, what, trans),
    'in-progress',
    {
      autoClose: false,
      progress: jobProgress(latest),
      actions: [
        {
          label: trans.__('Cancel'),
          caption: trans.__('Stop this transfer'),
          callback: event => {
            event.preventDefault();
            if (cancelled || isJobFinished(latest)) {
              return;
            }
            cancelled = true;
            model.cancelJob(job.id).catch(error => {
              Notification.error(
                trans.__('Could not cancel: %1', error.message ?? error),
                { autoClose: 5000 }
              );
            });
          }
        }
      ]
    }
  );
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
        message: describeJob(latest, what, trans),
        type,
        progress: latest.state === 'done' ? 1 : undefined,
        autoClose: latest.state === 'failed' ? false : 8000,
        actions: []
      });
    } else {
      Notification.update({
        id,
        message: describeJob(latest, what, trans),
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
