/** Job helpers shared by the model and the widgets. */
import { IJob } from './api';

const FINISHED: ReadonlySet<string> = new Set(['done', 'failed', 'cancelled']);

export function isJobFinished(job: IJob): boolean {
  return FINISHED.has(job.state);
}

/** Progress of a job between 0 and 1 (bytes, else files). */
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
