/**
 * Small shared pieces of the commands: the extension's translation bundle and
 * the board picker dialog.
 */
import { InputDialog, showErrorMessage } from '@jupyterlab/apputils';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';

import { IDevice } from './api';

export const TRANSLATION_DOMAIN = 'jupyter_remote_device';

/** The extension's translation bundle. */
export function translationBundle(
  translator?: ITranslator | null
): TranslationBundle {
  return (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
}

function deviceLabel(d: IDevice): string {
  return `${d.name} — ${d.host}:${d.port} (${d.status})`;
}

/** Ask the user for one board among `candidates` (InputDialog.getItem). */
export async function pickDevice(
  title: string,
  candidates: ReadonlyArray<IDevice>,
  emptyMessage: string,
  trans: TranslationBundle = translationBundle()
): Promise<IDevice | null> {
  if (candidates.length === 0) {
    await showErrorMessage(title, emptyMessage);
    return null;
  }
  const labels = candidates.map(deviceLabel);
  const result = await InputDialog.getItem({
    title,
    label: trans.__('Board'),
    items: labels,
    current: 0
  });
  if (!result.button.accept || result.value === null) {
    return null;
  }
  const index = labels.indexOf(result.value);
  return index >= 0 ? candidates[index] : null;
}
