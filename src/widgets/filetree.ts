/**
 * "Files" section of the Devices sidebar: the connected board's `--root` as a
 * lazily expanded tree (DeviceFilesModel), with Pull to workspace, Delete, New
 * folder, Rename (FileActions), Refresh, the transfers in progress, and
 * drag-and-drop from the file browser (a push job).
 */
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { Contents } from '@jupyterlab/services';
import {
  fileIcon,
  folderIcon,
  LabIcon,
  newFolderIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import type { Drag } from '@lumino/dragdrop';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { IJob } from '../api';
import { IFileEntry, IFilesApi } from '../filesapi';
import {
  DeviceFilesModel,
  ITransfer,
  joinDevicePath,
  parentOf
} from '../filesmodel';
import { Format } from '../format';
import { DevicesModel } from '../model';
import { checkName, FileActions } from './fileactions';
import { h } from './dom';
import { renderTransfers } from './transfers';

export { checkName, joinDevicePath };
export type { ITransfer };

/** The mime type the JupyterLab file browser puts the dragged paths under. */
export const CONTENTS_MIME = 'application/x-jupyter-icontents';

export namespace DeviceFilesPanel {
  export interface IOptions {
    model: DevicesModel;
    /** The files model (made here when not given). */
    files?: DeviceFilesModel;
    /** The actions with their dialogs (made here when not given). */
    actions?: FileActions;
    /** The workspace contents manager. */
    contents?: Contents.IManager | null;
    /** The file browser's current folder ('' = workspace root). */
    currentFolder?: () => string;
    /** REST calls (tests pass a fake). */
    api?: IFilesApi;
    /** Milliseconds a finished transfer stays visible. */
    keepFinishedMs?: number;
    /** Called with the workspace path of each finished pull. */
    onPulled?: (path: string) => void;
    /** Open a board file (double-click, Enter); without it those pull the file. */
    openFile?: (path: string) => void;
    translator?: ITranslator | null;
  }
}

/** Format a modification time (epoch seconds) compactly. */
export function formatMtime(
  mtime: number | null | undefined,
  now = Date.now()
): string {
  if (mtime === null || mtime === undefined || !isFinite(mtime)) {
    return '';
  }
  const d = new Date(mtime * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const today = new Date(now);
  if (
    d.getFullYear() === today.getFullYear() &&
    d.getMonth() === today.getMonth() &&
    d.getDate() === today.getDate()
  ) {
    return time;
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

const DRAG_EVENTS = ['lm-dragenter', 'lm-dragover', 'lm-dragleave', 'lm-drop'];

export class DeviceFilesPanel extends Widget {
  constructor(options: DeviceFilesPanel.IOptions) {
    super();
    this._model = options.model;
    this.files =
      options.files ??
      new DeviceFilesModel({
        model: options.model,
        api: options.api,
        keepFinishedMs: options.keepFinishedMs
      });
    this.actions =
      options.actions ??
      new FileActions({
        files: this.files,
        contents: options.contents,
        currentFolder: options.currentFolder,
        onPulled: options.onPulled,
        translator: options.translator
      });
    this._trans = this.actions.trans;
    this._openFile = options.openFile ?? null;
    this.id = 'jp-remote-device-files';
    this.addClass('jp-RemoteDevice-files');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', this._trans.__('Files on the board'));
    this.files.changed.connect(this._render, this);
    this.files.transfersChanged.connect(this._renderTransfers, this);
    this._render();
  }

  readonly files: DeviceFilesModel;
  readonly actions: FileActions;

  /** The board whose files are shown (null when none is connected). */
  get deviceId(): string | null {
    return this.files.deviceId;
  }

  /** Show another connected board. */
  setDevice(id: string | null): void {
    this.files.setDevice(id);
  }

  /** Entries of a loaded folder (undefined when not loaded). */
  entries(path: string): ReadonlyArray<IFileEntry> | undefined {
    return this.files.entries(path);
  }

  get transfers(): ReadonlyArray<ITransfer> {
    return this.files.transfers;
  }

  load(path: string): Promise<void> {
    return this.files.load(path);
  }

  refresh(): Promise<void> {
    return this.files.refresh();
  }

  toggle(path: string): Promise<void> {
    return this.files.toggle(path);
  }

  newFolder(parent = ''): Promise<string | null> {
    return this.actions.newFolder(parent);
  }

  rename(path: string): Promise<string | null> {
    return this.actions.rename(path);
  }

  remove(path: string, type?: 'file' | 'directory'): Promise<boolean> {
    return this.actions.remove(path, type);
  }

  pull(path: string, saveAs?: string): Promise<string | null> {
    return this.actions.pull(path, saveAs);
  }

  push(sources: string[], folder: string): Promise<IJob[]> {
    return this.actions.push(sources, folder);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.files.changed.disconnect(this._render, this);
    this.files.transfersChanged.disconnect(this._renderTransfers, this);
    super.dispose();
  }

  /** Handle the Lumino drag events (drop from the file browser). */
  handleEvent(event: Event): void {
    switch (event.type) {
      case 'lm-dragenter':
      case 'lm-dragover': {
        const e = event as Drag.Event;
        if (!this.deviceId || !e.mimeData.hasData(CONTENTS_MIME)) {
          return;
        }
        e.preventDefault();
        e.stopPropagation();
        e.dropAction = e.proposedAction === 'none' ? 'none' : e.proposedAction;
        this._setDropTarget(this._dropFolderNode(e.target as HTMLElement));
        break;
      }
      case 'lm-dragleave': {
        const e = event as Drag.Event;
        const related = e.relatedTarget as HTMLElement | null;
        if (!related || !this.node.contains(related)) {
          this._setDropTarget(null);
        }
        break;
      }
      case 'lm-drop': {
        const e = event as Drag.Event;
        if (!this.deviceId || !e.mimeData.hasData(CONTENTS_MIME)) {
          return;
        }
        e.preventDefault();
        e.stopPropagation();
        const target = this._dropFolderNode(e.target as HTMLElement);
        const folder = target?.dataset.path ?? '';
        this._setDropTarget(null);
        const paths = e.mimeData.getData(CONTENTS_MIME);
        e.dropAction = e.proposedAction;
        const list: string[] = Array.isArray(paths)
          ? paths
          : typeof paths === 'string'
            ? [paths]
            : [];
        if (list.length) {
          void this.push(list, folder);
        }
        break;
      }
      default:
        break;
    }
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    for (const type of DRAG_EVENTS) {
      this.node.addEventListener(type, this);
    }
  }

  protected onBeforeDetach(msg: Message): void {
    for (const type of DRAG_EVENTS) {
      this.node.removeEventListener(type, this);
    }
    super.onBeforeDetach(msg);
  }

  /** The folder node a drop at `el` goes into (the tree root node for ''). */
  private _dropFolderNode(el: HTMLElement | null): HTMLElement | null {
    const item = el?.closest?.(
      '.jp-RemoteDevice-fileRow'
    ) as HTMLElement | null;
    if (item && this.node.contains(item)) {
      if (item.dataset.type === 'directory') {
        return item;
      }
      return item.parentElement?.closest(
        '.jp-RemoteDevice-fileRow, .jp-RemoteDevice-fileTree'
      ) as HTMLElement | null;
    }
    return this.node.querySelector('.jp-RemoteDevice-fileTree');
  }

  private _setDropTarget(node: HTMLElement | null): void {
    for (const el of Array.from(
      this.node.querySelectorAll('.jp-mod-dropTarget')
    )) {
      if (el !== node) {
        el.classList.remove('jp-mod-dropTarget');
      }
    }
    node?.classList.add('jp-mod-dropTarget');
  }

  private _button(
    label: string | LabIcon,
    cls: string,
    title: string,
    onClick: () => void
  ): HTMLButtonElement {
    const btn = h(
      'button',
      {
        type: 'button',
        class: `jp-Button jp-mod-small jp-mod-minimal jp-RemoteDevice-fileAction ${cls}`,
        title,
        'aria-label': title
      },
      typeof label === 'string'
        ? label
        : label.element({
            tag: 'span',
            className: 'jp-RemoteDevice-fileActionIcon'
          })
    ) as HTMLButtonElement;
    btn.addEventListener('click', event => {
      event.stopPropagation();
      onClick();
    });
    return btn;
  }

  /** Rebuild the DOM (a few dozen rows at most in practice). */
  private _render(): void {
    if (this.isDisposed) {
      return;
    }
    const trans = this._trans;
    const node = this.node;
    const connected = this._model.connectedDevices;
    this.setHidden(connected.length === 0);
    const scroll = node.scrollTop;
    // Keep the keyboard focus on the same entry across renders.
    const active = document.activeElement as HTMLElement | null;
    const focusPath =
      active && node.contains(active)
        ? ((active.closest('.jp-RemoteDevice-fileRow') as HTMLElement | null)
            ?.dataset.path ?? null)
        : null;
    node.textContent = '';
    const deviceId = this.files.deviceId;
    node.dataset.deviceId = deviceId ?? '';
    const header = h(
      'div',
      { class: 'jp-RemoteDevice-filesHeader' },
      h('span', { class: 'jp-RemoteDevice-filesTitle' }, trans.__('Files'))
    );
    if (connected.length > 1) {
      const select = h('select', {
        class: 'jp-RemoteDevice-filesDevice',
        'aria-label': trans.__('Board whose files are shown')
      }) as HTMLSelectElement;
      for (const d of connected) {
        const opt = h('option', { value: d.id }, d.name) as HTMLOptionElement;
        opt.selected = d.id === deviceId;
        select.appendChild(opt);
      }
      select.addEventListener('change', () => this.setDevice(select.value));
      header.appendChild(select);
    } else if (connected.length === 1) {
      header.appendChild(
        h(
          'span',
          {
            class: 'jp-RemoteDevice-filesDeviceName',
            title: connected[0].name
          },
          connected[0].name
        )
      );
    }
    const tools = h('span', { class: 'jp-RemoteDevice-filesTools' });
    tools.appendChild(
      this._button(
        newFolderIcon,
        'jp-RemoteDevice-files-mkdir',
        trans.__('New folder in the board’s root'),
        () => void this.newFolder('')
      )
    );
    tools.appendChild(
      this._button(
        refreshIcon,
        'jp-RemoteDevice-files-refresh',
        trans.__('Reload the board’s files'),
        () => void this.refresh()
      )
    );
    header.appendChild(tools);
    node.appendChild(header);
    const transfers = h('div', { class: 'jp-RemoteDevice-transfers' });
    node.appendChild(transfers);
    this._transfersNode = transfers;
    this._renderTransfers();
    if (!deviceId) {
      node.appendChild(
        h(
          'div',
          { class: 'jp-RemoteDevice-filesEmpty' },
          trans.__('Connect a board to browse its files.')
        )
      );
      return;
    }
    const tree = h('ul', {
      class: 'jp-RemoteDevice-fileTree',
      role: 'tree',
      'data-path': '',
      title: trans.__(
        'Drop files from the file browser here to push them to the board'
      )
    });
    this._renderFolder(tree, '', 0);
    node.appendChild(tree);
    node.scrollTop = scroll;
    if (focusPath !== null) {
      const item = tree.querySelector(
        `.jp-RemoteDevice-fileRow[data-path="${CSS.escape(focusPath)}"] > .jp-RemoteDevice-fileItem`
      ) as HTMLElement | null;
      item?.focus();
    }
  }

  private _note(cls: string, depth: number, text: string): HTMLElement {
    return h(
      'li',
      { class: cls, role: 'none', style: `padding-left: ${8 + depth * 14}px` },
      text
    );
  }

  private _renderFolder(
    container: HTMLElement,
    path: string,
    depth: number
  ): void {
    const trans = this._trans;
    const error = this.files.error(path);
    const entries = this.files.entries(path);
    if (error) {
      container.appendChild(
        this._note('jp-RemoteDevice-filesError', depth, error)
      );
    }
    if (!entries) {
      if (this.files.isLoading(path)) {
        container.appendChild(
          this._note(
            'jp-RemoteDevice-filesLoading',
            depth,
            trans.__('Loading…')
          )
        );
      }
      return;
    }
    if (entries.length === 0 && !error) {
      container.appendChild(
        this._note(
          'jp-RemoteDevice-filesEmpty',
          depth,
          path
            ? trans.__('(empty folder)')
            : trans.__('No files yet. Drop files here from the file browser.')
        )
      );
    }
    for (const entry of entries) {
      container.appendChild(this._row(path, entry, depth));
    }
  }

  private _row(parent: string, entry: IFileEntry, depth: number): HTMLElement {
    const trans = this._trans;
    const path = joinDevicePath(parent, entry.name);
    const isDir = entry.type === 'directory';
    const expanded = isDir && this.files.isExpanded(path);
    const li = h('li', {
      class: `jp-RemoteDevice-fileRow${isDir ? ' jp-mod-directory' : ''}`,
      role: 'treeitem',
      'data-path': path,
      'data-name': entry.name,
      'data-type': entry.type,
      'aria-expanded': isDir ? String(expanded) : undefined
    });
    const item = h(
      'div',
      {
        class: 'jp-RemoteDevice-fileItem',
        style: `padding-left: ${4 + depth * 14}px`,
        tabindex: '0'
      },
      h(
        'span',
        { class: 'jp-RemoteDevice-fileTwisty', 'aria-hidden': 'true' },
        isDir ? (expanded ? '▾' : '▸') : ''
      ),
      (isDir ? folderIcon : fileIcon).element({
        tag: 'span',
        className: 'jp-RemoteDevice-fileIcon'
      }),
      h('span', { class: 'jp-RemoteDevice-fileName', title: path }, entry.name),
      h(
        'span',
        { class: 'jp-RemoteDevice-fileSize' },
        isDir ? '' : Format.bytes(entry.size)
      ),
      h(
        'span',
        {
          class: 'jp-RemoteDevice-fileMtime',
          title: entry.mtime
            ? new Date(entry.mtime * 1000).toLocaleString()
            : undefined
        },
        formatMtime(entry.mtime)
      )
    );
    const actions = h('span', { class: 'jp-RemoteDevice-fileActions' });
    const add = (label: string, cls: string, title: string, fn: () => void) =>
      actions.appendChild(this._button(label, cls, title, fn));
    if (isDir) {
      add(
        '+',
        'jp-RemoteDevice-fileAction-mkdir',
        trans.__('New folder in %1', entry.name),
        () => void this.newFolder(path)
      );
    }
    add(
      '⤓',
      'jp-RemoteDevice-fileAction-pull',
      trans.__('Pull %1 to the workspace', entry.name),
      () => void this.pull(path)
    );
    add(
      '✎',
      'jp-RemoteDevice-fileAction-rename',
      trans.__('Rename %1', entry.name),
      () => void this.rename(path)
    );
    add(
      '✕',
      'jp-RemoteDevice-fileAction-delete',
      trans.__('Delete %1', entry.name),
      () => void this.remove(path, entry.type)
    );
    item.appendChild(actions);
    if (isDir) {
      item.addEventListener('click', () => void this.toggle(path));
    } else {
      item.addEventListener('dblclick', () => this._open(path));
    }
    // Keyboard: Enter/Space opens a folder or a file, F2 renames, Delete deletes.
    item.addEventListener('keydown', event => {
      if (event.target !== item) {
        return;
      }
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        if (isDir) {
          void this.toggle(path);
        } else {
          this._open(path);
        }
      } else if (event.key === 'F2') {
        event.preventDefault();
        void this.rename(path);
      } else if (event.key === 'Delete') {
        event.preventDefault();
        void this.remove(path, entry.type);
      }
    });
    li.appendChild(item);
    if (expanded) {
      const group = h('ul', {
        class: 'jp-RemoteDevice-fileGroup',
        role: 'group'
      });
      this._renderFolder(group, path, depth + 1);
      li.appendChild(group);
    }
    return li;
  }

  private _renderTransfers(): void {
    const node = this._transfersNode;
    if (!node || this.isDisposed) {
      return;
    }
    renderTransfers(node, this.files.transfers, this._trans, key =>
      this.files.dismiss(key)
    );
  }

  /** Open a file: in an editor when the page can, else pull it. */
  private _open(path: string): void {
    if (this._openFile) {
      this._openFile(path);
    } else {
      void this.pull(path);
    }
  }

  private _model: DevicesModel;
  private _openFile: ((path: string) => void) | null;
  private _trans: TranslationBundle;
  private _transfersNode: HTMLElement | null = null;
}

export { parentOf };
