/**
 * The transfers list of the Files section: one row per push or pull job
 * started from there, with a progress bar, its state, and Dismiss for the
 * failed ones.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { ITransfer } from '../filesmodel';
import { Format } from '../format';
import { h } from './dom';

function statusText(t: ITransfer, trans: TranslationBundle): string {
  switch (t.state) {
    case 'running':
      return t.total
        ? trans.__('%1 of %2', Format.bytes(t.done), Format.bytes(t.total))
        : trans.__('starting…');
    case 'done':
      return trans.__('done');
    case 'cancelled':
      return trans.__('cancelled');
    default:
      return trans.__('failed: %1', t.error ?? trans.__('unknown error'));
  }
}

/** Replace the content of `node` with a row per transfer. */
export function renderTransfers(
  node: HTMLElement,
  transfers: ReadonlyArray<ITransfer>,
  trans: TranslationBundle,
  dismiss: (key: string) => void
): void {
  node.textContent = '';
  for (const t of transfers) {
    const fraction =
      t.state === 'done' ? 1 : t.total > 0 ? Math.min(1, t.done / t.total) : 0;
    const progress = h('progress', {
      class: 'jp-RemoteDevice-transferBar',
      max: '1',
      value: String(fraction)
    });
    const label =
      t.kind === 'pull'
        ? trans.__('Pull %1', t.label)
        : trans.__('Push %1', t.label);
    const row = h(
      'div',
      {
        class: `jp-RemoteDevice-transfer jp-mod-${t.state}`,
        'data-kind': t.kind,
        'data-state': t.state,
        'data-job': t.jobId,
        title: t.error ?? undefined
      },
      h('div', { class: 'jp-RemoteDevice-transferLabel' }, label),
      progress,
      h(
        'div',
        { class: 'jp-RemoteDevice-transferStatus' },
        statusText(t, trans)
      )
    );
    if (t.state === 'failed') {
      const title = trans.__('Hide this message');
      const btn = h(
        'button',
        {
          type: 'button',
          class:
            'jp-Button jp-mod-small jp-mod-minimal jp-RemoteDevice-fileAction jp-RemoteDevice-transferDismiss',
          title,
          'aria-label': title
        },
        trans.__('Dismiss')
      );
      btn.addEventListener('click', event => {
        event.stopPropagation();
        dismiss(t.key);
      });
      row.appendChild(btn);
    }
    node.appendChild(row);
  }
}
