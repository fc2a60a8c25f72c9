/**
 * The connection doctor in the UI: "Why?" next to a failed connect runs
 * `POST devices/{id}/diagnose` (or `POST diagnose` for an address) and shows every
 * step — name, route, TCP, protocol, TLS, token, version — with what it found and
 * what to check.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { jsonBody, requestAPI } from '../api';

export interface IDiagnosisStep {
  step: string;
  ok: boolean | null;
  message: string;
  hint?: string;
}

export interface IDiagnosis {
  ok: boolean;
  kind?: string | null;
  steps: IDiagnosisStep[];
}

export interface IDiagnoseTarget {
  /** A listed board (its host, port and saved token). */
  id?: string;
  host?: string;
  port?: number;
  token?: string;
}

const STEP_LABELS: { [step: string]: string } = {
  resolve: 'Name',
  route: 'Route',
  tcp: 'Port',
  protocol: 'Protocol',
  tls: 'Encryption',
  auth: 'Token',
  version: 'Version'
};

export function diagnose(target: IDiagnoseTarget): Promise<IDiagnosis> {
  if (target.id) {
    return requestAPI<IDiagnosis>(
      `devices/${encodeURIComponent(target.id)}/diagnose`,
      jsonBody('POST', target.token ? { token: target.token } : {})
    );
  }
  return requestAPI<IDiagnosis>(
    'diagnose',
    jsonBody('POST', {
      host: target.host,
      port: target.port ?? 18861,
      ...(target.token ? { token: target.token } : {})
    })
  );
}

/** The report as a list: one row per step (✓ found fine, ✗ the problem, – not checked). */
export function renderDiagnosis(report: IDiagnosis): HTMLElement {
  const list = document.createElement('ol');
  list.className = 'jp-RemoteDevice-diagnosis';
  for (const s of report.steps) {
    const li = document.createElement('li');
    const state = s.ok === true ? 'ok' : s.ok === false ? 'failed' : 'skipped';
    li.className = `jp-RemoteDevice-diagnosis-step jp-mod-${state}`;
    li.dataset.step = s.step;
    const mark = document.createElement('span');
    mark.className = 'jp-RemoteDevice-diagnosis-mark';
    mark.textContent = s.ok === true ? '✓' : s.ok === false ? '✗' : '–';
    mark.setAttribute('aria-label', state);
    const label = document.createElement('strong');
    label.textContent = `${STEP_LABELS[s.step] ?? s.step}: `;
    const msg = document.createElement('span');
    msg.className = 'jp-RemoteDevice-diagnosis-message';
    msg.textContent = s.message;
    li.append(mark, label, msg);
    if (s.hint) {
      const hint = document.createElement('div');
      hint.className = 'jp-RemoteDevice-diagnosis-hint';
      hint.textContent = s.hint;
      li.appendChild(hint);
    }
    list.appendChild(li);
  }
  return list;
}

/** Run the doctor and show its report in a dialog (the body fills in when it answers). */
export async function showDiagnosis(
  title: string,
  target: IDiagnoseTarget
): Promise<IDiagnosis | null> {
  const body = new Widget();
  body.addClass('jp-RemoteDevice-diagnosisBody');
  body.node.textContent = 'Checking the connection step by step…';
  const result = diagnose(target).then(
    report => {
      body.node.textContent = '';
      const summary = document.createElement('p');
      summary.className = 'jp-RemoteDevice-diagnosis-summary';
      const failed = report.steps.find(s => s.ok === false);
      summary.textContent = report.ok
        ? 'Every step works: the board can be reached and it accepts this server.'
        : `The connection fails at: ${STEP_LABELS[failed?.step ?? ''] ?? failed?.step ?? 'an unknown step'}.`;
      body.node.append(summary, renderDiagnosis(report));
      return report;
    },
    error => {
      body.node.textContent = `The check itself failed: ${(error as Error)?.message ?? error}`;
      return null;
    }
  );
  await showDialog({
    title,
    body,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
  return result;
}

/**
 * A failed connect's message with "Why?" beside OK; "Why?" runs the doctor.
 */
export async function showConnectError(
  title: string,
  message: string,
  target: IDiagnoseTarget,
  whyTitle?: string
): Promise<void> {
  const choice = await showDialog({
    title,
    body: message,
    buttons: [
      Dialog.createButton({
        label: 'Why?',
        caption: 'Check the connection step by step',
        className: 'jp-RemoteDevice-why'
      }),
      Dialog.okButton()
    ],
    defaultButton: 1
  });
  if (choice.button.label === 'Why?') {
    await showDiagnosis(whyTitle ?? `Why: ${title}`, target);
  }
}
