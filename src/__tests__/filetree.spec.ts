/**
 * The "Files" section of the Devices sidebar: lazy tree, actions with their
 * dialogs, pull into the workspace as a server job with progress, drop to
 * push, refresh when a push to the shown board ends.
 */
import { MimeData } from '@lumino/coreutils';

import { IJob } from '../api';
import { bytesToBase64 } from '../filesapi';
import {
  checkName,
  CONTENTS_MIME,
  DeviceFilesPanel,
  formatMtime,
  joinDevicePath
} from '../widgets/filetree';
import {
  answerDialog,
  device,
  FakeFs,
  flush,
  job,
  MTIME,
  setup,
  waitFor
} from './filesfixtures';

const rows = (panel: DeviceFilesPanel) =>
  Array.from(panel.node.querySelectorAll('.jp-RemoteDevice-fileRow')).map(
    r => (r as HTMLElement).dataset.path
  );

const rowNode = (panel: DeviceFilesPanel, path: string) =>
  panel.node.querySelector(
    `.jp-RemoteDevice-fileRow[data-path="${path}"]`
  ) as HTMLElement;

const clickAction = (panel: DeviceFilesPanel, path: string, action: string) =>
  (
    rowNode(panel, path).querySelector(
      `:scope > .jp-RemoteDevice-fileItem .jp-RemoteDevice-fileAction-${action}`
    ) as HTMLButtonElement
  ).click();

describe('helpers', () => {
  it('joins device paths and checks names', () => {
    expect(joinDevicePath('', 'a.txt')).toBe('a.txt');
    expect(joinDevicePath('x/y/', 'a.txt')).toBe('x/y/a.txt');
    expect(checkName('ok.py')).toBeNull();
    expect(checkName('  ')).toMatch(/empty/);
    expect(checkName('a/b')).toMatch(/not a valid name/);
    expect(checkName('..')).toMatch(/not a valid name/);
  });

  it('formats mtimes: time today, date otherwise', () => {
    const now = new Date(2024, 5, 7, 12, 0, 0).getTime();
    expect(formatMtime(new Date(2024, 5, 7, 9, 5).getTime() / 1000, now)).toBe(
      '09:05'
    );
    expect(
      formatMtime(new Date(2023, 11, 31, 23, 59).getTime() / 1000, now)
    ).toBe('2023-12-31 23:59');
    expect(formatMtime(null)).toBe('');
  });

  it('base64-encodes binary data of any size', () => {
    const data = new Uint8Array(100000);
    for (let i = 0; i < data.length; i++) {
      data[i] = (i * 7) & 255;
    }
    const back = atob(bytesToBase64(data));
    expect(back.length).toBe(data.length);
    expect(Array.from(back, c => c.charCodeAt(0))).toEqual(Array.from(data));
    expect(bytesToBase64(new Uint8Array([0, 255, 1]))).toBe('AP8B');
  });
});

describe('DeviceFilesPanel', () => {
  afterEach(() => {
    document.body.innerHTML = '';
  });

  it('is hidden until a board is connected, then lists its root (folders first)', async () => {
    const fs = new FakeFs({ 'b.txt': 'bbb', 'a.py': 'print(1)\n' }, ['lib']);
    const { model, panel } = setup(fs, [device('a', { status: 'online' })]);
    await model.refresh();
    expect(panel.isHidden).toBe(true);
    expect(fs.calls).toEqual([]);
    model.handleMessage({ type: 'device', device: device('a') });
    await flush();
    expect(panel.isHidden).toBe(false);
    expect(panel.deviceId).toBe('a');
    expect(fs.calls).toEqual(['list a ']);
    expect(rows(panel)).toEqual(['lib', 'a.py', 'b.txt']);
    const a = rowNode(panel, 'a.py');
    expect(a.querySelector('.jp-RemoteDevice-fileSize')!.textContent).toBe(
      '9 B'
    );
    expect(a.querySelector('.jp-RemoteDevice-fileMtime')!.textContent).toBe(
      formatMtime(MTIME)
    );
    expect(
      panel.node.querySelector('.jp-RemoteDevice-filesDeviceName')!.textContent
    ).toBe('board-a');
    // Disconnected: hidden again.
    model.handleMessage({
      type: 'device',
      device: device('a', { status: 'online' })
    });
    expect(panel.isHidden).toBe(true);
    expect(panel.deviceId).toBeNull();
    model.dispose();
    panel.dispose();
  });

  it('expands folders lazily and collapses them', async () => {
    const fs = new FakeFs({ 'lib/x.py': 'x', 'lib/sub/y.py': 'yy' }, [
      'lib',
      'lib/sub'
    ]);
    const { model, panel } = setup(fs);
    await model.refresh();
    await flush();
    expect(rows(panel)).toEqual(['lib']);
    expect(rowNode(panel, 'lib').getAttribute('aria-expanded')).toBe('false');
    (
      rowNode(panel, 'lib').querySelector(
        '.jp-RemoteDevice-fileItem'
      ) as HTMLElement
    ).click();
    await flush();
    expect(rows(panel)).toEqual(['lib', 'lib/sub', 'lib/x.py']);
    expect(rowNode(panel, 'lib').getAttribute('aria-expanded')).toBe('true');
    // Keyboard: Enter on the focused folder collapses it and keeps the focus.
    const libItem = rowNode(panel, 'lib').querySelector(
      '.jp-RemoteDevice-fileItem'
    ) as HTMLElement;
    libItem.focus();
    libItem.dispatchEvent(
      new KeyboardEvent('keydown', { key: 'Enter', bubbles: true })
    );
    await flush();
    expect(rows(panel)).toEqual(['lib']);
    expect(document.activeElement).toBe(
      rowNode(panel, 'lib').querySelector('.jp-RemoteDevice-fileItem')
    );
    await panel.toggle('lib');
    // Loaded once: expanding again does not list again.
    expect(fs.calls.filter(c => c === 'list a lib')).toHaveLength(1);
    await panel.toggle('lib/sub');
    expect(rows(panel)).toEqual(['lib', 'lib/sub', 'lib/sub/y.py', 'lib/x.py']);
    // Refresh reloads every open folder.
    fs.files.set('lib/sub/z.py', new Uint8Array(3));
    (
      panel.node.querySelector(
        '.jp-RemoteDevice-files-refresh'
      ) as HTMLButtonElement
    ).click();
    await flush();
    expect(rows(panel)).toContain('lib/sub/z.py');
    model.dispose();
    panel.dispose();
  });

  it('deletes a file after confirming, a folder recursively, and nothing on cancel', async () => {
    const fs = new FakeFs({ 'a.txt': 'a', 'd/in.txt': 'i' }, ['d']);
    const { model, panel } = setup(fs);
    await model.refresh();
    await flush();
    clickAction(panel, 'a.txt', 'delete');
    const text = await answerDialog(false);
    expect(text).toContain('Delete "a.txt" from board-a');
    await flush();
    expect(fs.files.has('a.txt')).toBe(true);
    clickAction(panel, 'a.txt', 'delete');
    await answerDialog(true);
    await waitFor(() => !rows(panel).includes('a.txt'), 'a.txt to go');
    expect(fs.calls).toContain('remove a.txt false');
    clickAction(panel, 'd', 'delete');
    expect(await answerDialog(true)).toContain('and everything in it');
    await waitFor(() => rows(panel).length === 0, 'd to go');
    expect(fs.calls).toContain('remove d true');
    expect(fs.files.size).toBe(0);
    expect(panel.node.textContent).toContain('No files yet');
    model.dispose();
    panel.dispose();
  });

  it('makes folders and renames entries through input dialogs', async () => {
    const fs = new FakeFs({ 'old.py': 'x' });
    const { model, panel } = setup(fs);
    await model.refresh();
    await flush();
    (
      panel.node.querySelector(
        '.jp-RemoteDevice-files-mkdir'
      ) as HTMLButtonElement
    ).click();
    await answerDialog(true, 'models');
    await waitFor(() => rows(panel).includes('models'), 'the new folder');
    expect(fs.calls).toContain('mkdir models');
    clickAction(panel, 'models', 'mkdir');
    await answerDialog(true, 'v1');
    await waitFor(
      () => rows(panel).includes('models/v1'),
      'the nested folder (parent expanded)'
    );
    // A bad name is refused before any request.
    clickAction(panel, 'old.py', 'rename');
    await answerDialog(true, 'a/b.py');
    expect(await answerDialog(false)).toMatch(/not a valid name/);
    expect(fs.calls.some(c => c.startsWith('rename'))).toBe(false);
    clickAction(panel, 'old.py', 'rename');
    await answerDialog(true, 'new.py');
    await waitFor(() => rows(panel).includes('new.py'), 'the renamed file');
    expect(fs.calls).toContain('rename old.py new.py');
    clickAction(panel, 'models/v1', 'rename');
    await answerDialog(true, 'v2');
    await waitFor(
      () => rows(panel).includes('models/v2'),
      'the renamed folder'
    );
    model.dispose();
    panel.dispose();
  });

  it('pulls a file as a server job (no bytes through the page), with a progress bar', async () => {
    const fs = new FakeFs({ 'data.bin': '\u0000binary\u00ff data' });
    const { model, panel, pulls, saved } = setup(fs);
    await model.refresh();
    await flush();
    clickAction(panel, 'data.bin', 'pull');
    const dialog = await waitFor(
      () =>
        document.querySelector('.jp-Dialog input') as HTMLInputElement | null,
      'dialog'
    );
    // Prefilled with the file browser's folder.
    expect(dialog.value).toBe('work/data.bin');
    await answerDialog(true, 'work/copy.bin');
    await waitFor(() => pulls.length === 1, 'the pull request');
    expect(pulls[0]).toEqual(['a', 'data.bin', 'work/copy.bin']);
    // The same through the API, which resolves when the job is done.
    const done = panel.pull('data.bin', 'work/copy.bin');
    await waitFor(() => pulls.length === 2, 'the second pull');
    const id = 'pull1';
    const bar = await waitFor(
      () =>
        panel.node.querySelector(
          `.jp-RemoteDevice-transfer[data-kind="pull"][data-job="${id}"]`
        ) as HTMLElement | null,
      'the transfer row'
    );
    expect(bar.dataset.state).toBe('running');
    expect(bar.textContent).toContain('Pull data.bin → work/copy.bin');
    // Progress and the end come from the job (events or polling).
    model.handleMessage({
      type: 'job',
      job: job(id, { kind: 'pull', bytes_done: 8, bytes_total: 16 })
    });
    const progress = () =>
      panel.node
        .querySelector(`[data-job="${id}"] progress`)!
        .getAttribute('value');
    expect(progress()).toBe('0.5');
    for (const j of ['pull1', 'pull2']) {
      model.handleMessage({
        type: 'job',
        job: job(j, {
          kind: 'pull',
          state: 'done',
          bytes_done: 16,
          bytes_total: 16,
          verified: true,
          dest: 'work/copy.bin'
        })
      });
    }
    expect(await done).toBe('work/copy.bin');
    expect(progress()).toBe('1');
    expect(saved).toEqual([]); // nothing went through the contents API
    // Finished transfers go away by themselves.
    await waitFor(
      () => !panel.node.querySelector('.jp-RemoteDevice-transfer'),
      'the row to go'
    );
    model.dispose();
    panel.dispose();
  });

  it('asks before a pull replaces a workspace file; a failed pull stays listed', async () => {
    const fs = new FakeFs({ 'a.txt': 'a' });
    const { model, panel, pulls } = setup(fs, [device('a')], {
      'work/a.txt': 'file'
    });
    await model.refresh();
    await flush();
    clickAction(panel, 'a.txt', 'pull');
    await answerDialog(true, 'work/a.txt');
    expect(await answerDialog(false)).toContain('already exists');
    await flush();
    expect(pulls).toEqual([]);
    clickAction(panel, 'a.txt', 'pull');
    await answerDialog(true, 'work/a.txt');
    await answerDialog(true);
    await waitFor(() => pulls.length === 1, 'the pull');
    model.handleMessage({
      type: 'job',
      job: job('pull1', {
        kind: 'pull',
        state: 'failed',
        error: 'The Jupyter workspace has no space left for a.txt'
      })
    });
    const row = await waitFor(
      () =>
        panel.node.querySelector(
          '.jp-RemoteDevice-transfer[data-state="failed"]'
        ) as HTMLElement | null,
      'the failed row'
    );
    expect(row.textContent).toContain('no space left');
    (
      row.querySelector('.jp-RemoteDevice-transferDismiss') as HTMLElement
    ).click();
    expect(panel.node.querySelector('.jp-RemoteDevice-transfer')).toBeNull();
    model.dispose();
    panel.dispose();
  });

  it('pulls a whole folder with one job', async () => {
    const fs = new FakeFs({ 'd/a.txt': 'aaa', 'd/s/b.txt': 'bb' }, [
      'd',
      'd/s'
    ]);
    const { model, panel, pulls, saved } = setup(fs);
    await model.refresh();
    await flush();
    expect(
      rowNode(panel, 'd').querySelector('.jp-RemoteDevice-fileAction-pull')
    ).not.toBeNull();
    const done = panel.pull('d', 'work/d2');
    await waitFor(() => pulls.length === 1, 'the pull');
    expect(pulls).toEqual([['a', 'd', 'work/d2']]);
    model.handleMessage({
      type: 'job',
      job: job('pull1', {
        kind: 'pull',
        state: 'done',
        files_done: 2,
        files_total: 2,
        bytes_done: 5,
        bytes_total: 5,
        dest: 'work/d2'
      })
    });
    expect(await done).toBe('work/d2');
    expect(saved).toEqual([]);
    const row = panel.node.querySelector(
      '.jp-RemoteDevice-transfer[data-kind="pull"]'
    ) as HTMLElement;
    expect(row.dataset.state).toBe('done');
    expect(row.textContent).toContain('d → work/d2');
    // A pull does not change the board: no reload of its files.
    expect(fs.calls.filter(c => c.startsWith('list')).length).toBe(1);
    model.dispose();
    panel.dispose();
  });

  it('pushes what is dropped from the file browser into the folder under the mouse', async () => {
    const fs = new FakeFs({ 'd/x': 'x' }, ['d']);
    const { model, panel, pushes } = setup(fs);
    await model.refresh();
    await flush();
    const drop = (target: Element, paths: string[]) => {
      const mimeData = new MimeData();
      mimeData.setData(CONTENTS_MIME, paths);
      const event = new Event('lm-drop', {
        bubbles: true,
        cancelable: true
      }) as any;
      event.mimeData = mimeData;
      event.proposedAction = 'move';
      event.dropAction = 'none';
      target.dispatchEvent(event);
      return event;
    };
    const over = new Event('lm-dragover', {
      bubbles: true,
      cancelable: true
    }) as any;
    over.mimeData = new MimeData();
    over.mimeData.setData(CONTENTS_MIME, ['notes/a.txt']);
    over.proposedAction = 'move';
    over.dropAction = 'none';
    rowNode(panel, 'd')
      .querySelector('.jp-RemoteDevice-fileName')!
      .dispatchEvent(over);
    expect(over.defaultPrevented).toBe(true);
    expect(over.dropAction).toBe('move');
    expect(rowNode(panel, 'd').classList.contains('jp-mod-dropTarget')).toBe(
      true
    );
    const ev = drop(
      rowNode(panel, 'd').querySelector('.jp-RemoteDevice-fileName')!,
      ['notes/a.txt', 'pics']
    );
    expect(ev.defaultPrevented).toBe(true);
    expect(panel.node.querySelector('.jp-mod-dropTarget')).toBeNull();
    await waitFor(() => pushes.length === 2, 'two pushes');
    expect(pushes).toEqual([
      ['a', 'notes/a.txt', 'd/a.txt'],
      ['a', 'pics', 'd/pics']
    ]);
    // Dropping on the tree background pushes into the root.
    drop(panel.node.querySelector('.jp-RemoteDevice-fileTree')!, ['b.txt']);
    await waitFor(() => pushes.length === 3, 'a third push');
    await flush();
    expect(pushes[2]).toEqual(['a', 'b.txt', 'b.txt']);
    // Each push has a progress bar that follows the job events.
    const bars = panel.node.querySelectorAll(
      '.jp-RemoteDevice-transfer[data-kind="push"]'
    );
    expect(bars.length).toBe(3);
    model.handleJob({ ...(model.getJob('job1') as IJob), bytes_done: 5 });
    const bar1 = panel.node.querySelector(
      '.jp-RemoteDevice-transfer[data-kind="push"] progress'
    ) as HTMLProgressElement;
    expect(bar1.getAttribute('value')).toBe('0.5');
    // The job ends: the tree reloads and shows the new file.
    fs.files.set('d/a.txt', new Uint8Array(10));
    await panel.toggle('d');
    const listsBefore = fs.calls.filter(c => c === 'list a d').length;
    model.handleJob({
      ...(model.getJob('job1') as IJob),
      state: 'done',
      bytes_done: 10,
      verified: true
    });
    await waitFor(
      () => fs.calls.filter(c => c === 'list a d').length > listsBefore,
      'a reload of d'
    );
    await flush();
    expect(rows(panel)).toContain('d/a.txt');
    expect(
      (
        panel.node.querySelector(
          '.jp-RemoteDevice-transfer[data-state="done"]'
        ) as HTMLElement
      ).textContent
    ).toContain('a.txt → d/a.txt');
    model.dispose();
    panel.dispose();
  });

  it('reloads when a push ends even if the job lost its device (ended before the POST reply)', async () => {
    const fs = new FakeFs({});
    const { model, panel } = setup(fs);
    await model.refresh();
    await flush();
    const before = fs.calls.length;
    fs.files.set('new.txt', new Uint8Array(4));
    const job: IJob = {
      id: 'other',
      kind: 'push',
      state: 'done',
      bytes_done: 4,
      bytes_total: 4,
      files_done: 1,
      files_total: 1,
      rate: null,
      error: null,
      verified: true
    };
    model.handleJob(job);
    model.handleJob(job);
    await flush();
    expect(fs.calls.length).toBe(before + 1);
    expect(rows(panel)).toEqual(['new.txt']);
    // A job of another board does not reload this one.
    model.handleJob({ ...job, id: 'b-job', device: 'b' });
    await flush();
    expect(fs.calls.length).toBe(before + 1);
    model.dispose();
    panel.dispose();
  });

  it('ignores drags that do not come from the file browser', async () => {
    const fs = new FakeFs({});
    const { model, panel, pushes } = setup(fs);
    await model.refresh();
    await flush();
    const event = new Event('lm-dragover', {
      bubbles: true,
      cancelable: true
    }) as any;
    event.mimeData = new MimeData();
    event.mimeData.setData('text/plain', 'x');
    panel.node.querySelector('.jp-RemoteDevice-fileTree')!.dispatchEvent(event);
    expect(event.defaultPrevented).toBe(false);
    expect(pushes).toEqual([]);
    model.dispose();
    panel.dispose();
  });

  it('offers a board picker when several boards are connected', async () => {
    const fs = new FakeFs({ 'a.txt': 'a' });
    const { model, panel } = setup(fs, [device('a'), device('b')]);
    await model.refresh();
    await flush();
    const select = panel.node.querySelector(
      'select.jp-RemoteDevice-filesDevice'
    ) as HTMLSelectElement;
    expect(Array.from(select.options).map(o => o.textContent)).toEqual([
      'board-a',
      'board-b'
    ]);
    select.value = 'b';
    select.dispatchEvent(new Event('change'));
    await flush();
    expect(panel.deviceId).toBe('b');
    expect(fs.calls).toContain('list b ');
    model.dispose();
    panel.dispose();
  });

  it('shows a listing error in the tree', async () => {
    const fs = new FakeFs({});
    fs.list = async () => {
      throw Object.assign(new Error('The board is not connected'), {
        status: 409,
        reason: 'not-connected'
      });
    };
    const { model, panel } = setup(fs);
    await model.refresh();
    await flush();
    expect(
      panel.node.querySelector('.jp-RemoteDevice-filesError')!.textContent
    ).toBe('The board is not connected');
    model.dispose();
    panel.dispose();
  });
});
