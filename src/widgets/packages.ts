/**
 * "Install package on device…": pip on the board as a job (`POST devices/{id}/packages`).
 * Names and workspace `.whl` files (pushed first, so a board without network installs
 * them); the job's pip log streams into a tab, and a notification tells how it ended.
 */
import {
  Dialog,
  MainAreaWidget,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IJob, jsonBody, requestAPI } from '../api';

export interface IPipJob extends IJob {
  log?: string;
  step?: string;
  exit_code?: number | null;
  packages?: string[];
}

/** Split what the user typed into pip arguments (names or .whl paths). */
export function parsePackages(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map(s => s.trim())
    .filter(s => s.length > 0);
}

class InstallBody extends Widget {
  constructor(deviceName: string, prefill: string) {
    super();
    this.addClass('jp-RemoteDevice-installBody');
    const label = document.createElement('label');
    label.textContent = `Packages to install on ${deviceName} (names like numpy==1.24, or .whl files in the workspace):`;
    this.input = document.createElement('textarea');
    this.input.className = 'jp-mod-styled jp-RemoteDevice-installInput';
    this.input.rows = 3;
    this.input.value = prefill;
    this.input.placeholder = 'requests   wheels/mylib-1.0-py3-none-any.whl';
    label.appendChild(this.input);
    const upgrade = document.createElement('label');
    this.upgrade = document.createElement('input');
    this.upgrade.type = 'checkbox';
    upgrade.append(this.upgrade, ' Upgrade if installed');
    const offline = document.createElement('label');
    this.noIndex = document.createElement('input');
    this.noIndex.type = 'checkbox';
    offline.append(
      this.noIndex,
      ' Only the wheels given here (no package index: for boards without network)'
    );
    const note = document.createElement('p');
    note.className = 'jp-RemoteDevice-installNote';
    note.textContent =
      'For a board without network, download wheels for it here first, e.g. ' +
      '`pip download --only-binary=:all: --platform linux_armv7l --python-version 3.8 -d wheels PKG`.';
    this.node.append(label, upgrade, offline, note);
  }

  getValue(): { packages: string[]; upgrade: boolean; no_index: boolean } {
    return {
      packages: parsePackages(this.input.value),
      upgrade: this.upgrade.checked,
      no_index: this.noIndex.checked
    };
  }

  readonly input: HTMLTextAreaElement;
  readonly upgrade: HTMLInputElement;
  readonly noIndex: HTMLInputElement;
}

/** The tab with a pip job's state and log. */
export class PipLogView extends Widget {
  constructor() {
    super();
    this.addClass('jp-RemoteDevice-pipLog');
    this._state = document.createElement('div');
    this._state.className = 'jp-RemoteDevice-pipLog-state';
    this._log = document.createElement('pre');
    this._log.className = 'jp-RemoteDevice-pipLog-text';
    this.node.append(this._state, this._log);
  }

  update_(job: IPipJob): void {
    const what =
      job.state === 'running'
        ? job.step === 'pushing'
          ? `pushing wheels (${job.files_done}/${job.files_total})`
          : job.step === 'installing'
            ? 'pip is running on the board…'
            : 'checking pip and free space on the board…'
        : job.state === 'done'
          ? 'installed'
          : job.state === 'cancelled'
            ? 'cancelled'
            : `failed: ${job.error ?? 'unknown error'}`;
    this._state.textContent = what;
    this._state.dataset.state = job.state;
    this._log.textContent = job.log ?? '';
    this._log.scrollTop = this._log.scrollHeight;
  }

  private _state: HTMLElement;
  private _log: HTMLElement;
}

export async function askAndInstall(options: {
  deviceId: string;
  deviceName: string;
  prefill?: string[];
  open: (widget: MainAreaWidget<PipLogView>) => void;
}): Promise<IPipJob | null> {
  const body = new InstallBody(
    options.deviceName,
    (options.prefill ?? []).join(' ')
  );
  const result = await showDialog({
    title: `Install package on ${options.deviceName}`,
    body,
    focusNodeSelector: 'textarea',
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Install' })]
  });
  if (!result.button.accept) {
    return null;
  }
  const value = body.getValue();
  if (!value.packages.length) {
    Notification.warning(
      'Nothing to install: give a package name or a .whl file.',
      { autoClose: 4000 }
    );
    return null;
  }
  let job: IPipJob;
  try {
    job = await requestAPI<IPipJob>(
      `devices/${encodeURIComponent(options.deviceId)}/packages`,
      jsonBody('POST', value)
    );
  } catch (error) {
    Notification.error(
      `Cannot install on ${options.deviceName}: ${(error as Error).message}`,
      {
        autoClose: false
      }
    );
    return null;
  }
  const view = new PipLogView();
  const panel = new MainAreaWidget({ content: view });
  panel.id = `jp-RemoteDevice-pip-${job.id}`;
  panel.title.label = `pip on ${options.deviceName}`;
  panel.title.closable = true;
  view.update_(job);
  options.open(panel);
  return follow(job, view, options.deviceName);
}

async function follow(
  job: IPipJob,
  view: PipLogView,
  deviceName: string
): Promise<IPipJob> {
  const what = (job.packages ?? []).join(', ');
  while (job.state === 'running') {
    await new Promise(resolve => setTimeout(resolve, 700));
    try {
      job = await requestAPI<IPipJob>(`jobs/${encodeURIComponent(job.id)}`);
    } catch {
      continue; // the server restarts or the job was trimmed: keep trying briefly
    }
    if (!view.isDisposed) {
      view.update_(job);
    }
  }
  if (job.state === 'done') {
    Notification.success(`Installed on ${deviceName}: ${what}`, {
      autoClose: 5000
    });
  } else if (job.state === 'failed') {
    Notification.error(`pip on ${deviceName} failed: ${job.error}`, {
      autoClose: false
    });
  }
  return job;
}
