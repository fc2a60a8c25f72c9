/**
 * What the board's file actions ask and tell the user: new folder, rename,
 * delete (confirmed), pull into the workspace (a server job, followed in a
 * notification), push. The Files panel's buttons and keys, and the
 * `remote-device:files-*` commands (filecommands.ts) all come here.
 */
import {
  Dialog,
  InputDialog,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { Contents } from '@jupyterlab/services';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';

import { IJob } from '../api';
import { DeviceFilesModel, joinDevicePath } from '../filesmodel';
import { followJob } from './jobs';

import { TRANSLATION_DOMAIN } from '../pick';

/** Check a single file/folder name typed by the user; null when fine. */
export function checkName(
  name: string,
  trans: TranslationBundle = nullTranslator.load(TRANSLATION_DOMAIN)
): string | null {
  const n = name.trim();
  if (!n) {
    return trans.__('The name is empty.');
  }
  if (n === '.' || n === '..' || /[/\\\0]/.test(n)) {
    return trans.__(
      '"%1" is not a valid name (no slashes, not "." or "..").',
      n
    );
  }
  return null;
}

function errorText(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

export namespace FileActions {
  export interface IOptions {
    files: DeviceFilesModel;
    /** The workspace contents manager (to warn before a pull replaces a file). */
    contents?: Contents.IManager | null;
    /** The file browser's current folder ('' = workspace root). */
    currentFolder?: () => string;
    /** Called with the workspace path once a pull is done (e.g. refresh the file browser). */
    onPulled?: (path: string) => void;
    translator?: ITranslator | null;
  }
}

export class FileActions {
  constructor(options: FileActions.IOptions) {
    this.files = options.files;
    this._contents = options.contents ?? null;
    this._currentFolder = options.currentFolder ?? (() => '');
    this._onPulled = options.onPulled ?? (() => undefined);
    this.trans = (options.translator ?? nullTranslator).load(
      TRANSLATION_DOMAIN
    );
  }

  readonly files: DeviceFilesModel;
  readonly trans: TranslationBundle;

  private get _boardName(): string {
    return this.files.deviceName || this.trans.__('the board');
  }

  /** Ask for a name and make a folder inside `parent`. */
  async newFolder(parent = ''): Promise<string | null> {
    if (!this.files.deviceId) {
      return null;
    }
    const trans = this.trans;
    const result = await InputDialog.getText({
      title: trans.__('New folder on the board'),
      label: parent
        ? trans.__('Name (in /%1)', parent)
        : trans.__('Name (in the board’s root)'),
      text: 'untitled-folder'
    });
    if (!result.button.accept || result.value === null) {
      return null;
    }
    const bad = checkName(result.value, trans);
    if (bad) {
      await showErrorMessage(trans.__('New folder'), bad);
      return null;
    }
    try {
      return await this.files.mkdir(parent, result.value.trim());
    } catch (error) {
      await showErrorMessage(
        trans.__('Could not make the folder'),
        errorText(error)
      );
      return null;
    }
  }

  /** Ask for a new name and rename an entry. */
  async rename(path: string): Promise<string | null> {
    if (!this.files.deviceId) {
      return null;
    }
    const trans = this.trans;
    const name = PathExt.basename(path);
    const result = await InputDialog.getText({
      title: trans.__('Rename %1', name),
      label: trans.__('New name'),
      text: name
    });
    if (
      !result.button.accept ||
      result.value === null ||
      result.value.trim() === name
    ) {
      return null;
    }
    const bad = checkName(result.value, trans);
    if (bad) {
      await showErrorMessage(trans.__('Rename'), bad);
      return null;
    }
    try {
      return await this.files.rename(path, result.value.trim());
    } catch (error) {
      await showErrorMessage(
        trans.__('Could not rename %1', name),
        errorText(error)
      );
      return null;
    }
  }

  /** Confirm, then delete a file or (with everything in it) a folder. */
  async remove(path: string, type?: 'file' | 'directory'): Promise<boolean> {
    if (!this.files.deviceId) {
      return false;
    }
    const trans = this.trans;
    const isDir = (type ?? this.files.entry(path)?.type) === 'directory';
    const name = PathExt.basename(path);
    const ok = await showDialog({
      title: isDir
        ? trans.__('Delete folder on the board')
        : trans.__('Delete file on the board'),
      body: isDir
        ? trans.__(
            'Delete the folder "%1" and everything in it from %2? This cannot be undone.',
            path,
            this._boardName
          )
        : trans.__(
            'Delete "%1" from %2? This cannot be undone.',
            path,
            this._boardName
          ),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.warnButton({ label: trans.__('Delete') })
      ]
    });
    if (!ok.button.accept) {
      return false;
    }
    try {
      await this.files.remove(path, isDir);
      return true;
    } catch (error) {
      await showErrorMessage(
        trans.__('Could not delete %1', name),
        errorText(error)
      );
      return false;
    }
  }

  /**
   * Pull a board file or folder into the workspace (a server job), asking
   * for the workspace path unless `saveAs` is given. Resolves with the
   * workspace path once the job is done, or null.
   */
  async pull(path: string, saveAs?: string): Promise<string | null> {
    if (!this.files.deviceId) {
      return null;
    }
    const trans = this.trans;
    const name = PathExt.basename(path);
    const isDir = this.files.entry(path)?.type === 'directory';
    let target = saveAs;
    if (target === undefined) {
      const folder = this._currentFolder();
      const result = await InputDialog.getText({
        title: isDir
          ? trans.__('Pull %1 (folder) to the workspace', name)
          : trans.__('Pull %1 to the workspace', name),
        label: trans.__('Save as (workspace path)'),
        text: folder ? PathExt.join(folder, name) : name
      });
      if (!result.button.accept || !result.value) {
        return null;
      }
      target = result.value.replace(/^\/+/, '');
      if (!isDir && !(await this._mayReplace(target))) {
        return null;
      }
    }
    let job: IJob;
    try {
      job = await this.files.pull(path, target);
    } catch (error) {
      await showErrorMessage(
        trans.__('Could not pull %1', name),
        errorText(error)
      );
      return null;
    }
    const last = await followJob(
      this.files.model,
      job,
      trans.__('%1 to %2', name, target),
      trans
    );
    if (last.state !== 'done') {
      return null;
    }
    const where = last.dest ?? target;
    this._onPulled(where);
    return where;
  }

  /** Push workspace paths into a board folder (what a drop does). */
  async push(sources: string[], folder: string): Promise<IJob[]> {
    if (!this.files.deviceId) {
      return [];
    }
    const trans = this.trans;
    const board = this._boardName;
    const started = await this.files.push(sources, folder);
    const jobs: Promise<IJob>[] = [];
    for (const s of started) {
      const base = PathExt.basename(s.source);
      if (s.job) {
        jobs.push(
          followJob(
            this.files.model,
            s.job,
            trans.__('%1 to %2:%3', base, board, s.dest),
            trans
          )
        );
      } else {
        await showErrorMessage(
          trans.__('Could not push %1', base),
          errorText(s.error)
        );
      }
    }
    return Promise.all(jobs);
  }

  /** True unless `target` exists in the workspace and the user keeps it. */
  private async _mayReplace(target: string): Promise<boolean> {
    if (!this._contents) {
      return true;
    }
    try {
      const existing = await this._contents.get(target, { content: false });
      if (existing.type === 'directory') {
        return true; // the file goes into the folder
      }
    } catch {
      return true; // not there
    }
    const trans = this.trans;
    const ok = await showDialog({
      title: trans.__('Replace %1?', target),
      body: trans.__(
        '%1 already exists in the workspace. Replace it with the board’s copy?',
        target
      ),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.warnButton({ label: trans.__('Replace') })
      ]
    });
    return ok.button.accept;
  }

  private _contents: Contents.IManager | null;
  private _currentFolder: () => string;
  private _onPulled: (path: string) => void;
}

export { joinDevicePath };
