/** Job helpers shared by the model and the widgets, and the model's job tracking. */
import { ApiError, IDevicesApi, IJob } from './api';

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

export namespace JobTracker {
  export interface IOptions {
    /** Where a job is polled from. */
    api: Pick<IDevicesApi, 'getJob'>;
    /** Period in ms of job polling when job events do not arrive. */
    pollInterval: number;
    /** Whether the events socket (which carries job updates) is open. */
    eventsOpen: () => boolean;
    /** Called with each merged job update. */
    onChange: (job: IJob) => void;
  }
}

/**
 * The jobs the model follows: merges updates (events, REST or polling) and
 * polls running jobs whose events stopped arriving.
 */
export class JobTracker {
  constructor(options: JobTracker.IOptions) {
    this._api = options.api;
    this._pollInterval = options.pollInterval;
    this._eventsOpen = options.eventsOpen;
    this._onChange = options.onChange;
  }

  get(id: string): IJob | undefined {
    return this._jobs.get(id);
  }

  /** Merge a job update (from events, REST or polling). */
  handle(job: IJob): void {
    const previous = this._jobs.get(job.id);
    if (previous && isJobFinished(previous) && !isJobFinished(job)) {
      // A late progress message after the end: ignore.
      return;
    }
    const merged: IJob = { ...previous, ...job };
    if (!merged.device && previous?.device) {
      merged.device = previous.device;
    }
    this._jobs.set(job.id, merged);
    this._seen.set(job.id, Date.now());
    this._onChange(merged);
    this.schedulePoll();
  }

  /** Poll running jobs whose events stopped arriving. */
  schedulePoll(): void {
    if (this._timer !== null || this._isDisposed) {
      return;
    }
    const running = [...this._jobs.values()].filter(j => !isJobFinished(j));
    if (running.length === 0) {
      return;
    }
    this._timer = setTimeout(() => {
      this._timer = null;
      const now = Date.now();
      const stale = [...this._jobs.values()].filter(
        j =>
          !isJobFinished(j) &&
          (!this._eventsOpen() ||
            now - (this._seen.get(j.id) ?? 0) >= this._pollInterval)
      );
      Promise.all(
        stale.map(j =>
          this._api
            .getJob(j.id)
            .then(job => this.handle(job))
            .catch(error => {
              if ((error as ApiError).status === 404) {
                this.handle({
                  ...j,
                  state: 'failed',
                  error: j.error ?? 'The job is gone from the server.'
                });
              }
            })
        )
      ).finally(() => this.schedulePoll());
    }, this._pollInterval);
  }

  dispose(): void {
    this._isDisposed = true;
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _api: Pick<IDevicesApi, 'getJob'>;
  private _pollInterval: number;
  private _eventsOpen: () => boolean;
  private _onChange: (job: IJob) => void;
  private _jobs = new Map<string, IJob>();
  private _seen = new Map<string, number>();
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _isDisposed = false;
}
