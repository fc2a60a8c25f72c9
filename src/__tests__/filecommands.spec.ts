/**
 * The board's file actions as commands: pull, rename, delete and new folder
 * run on the path given in their args, on the row under the context menu or
 * on the focused row, and are disabled while no board is connected.
 */
import { CommandRegistry } from '@lumino/commands';

import { addFileCommands, FileCommandIDs } from '../filecommands';
import { translationBundle } from '../pick';
import {
  answerDialog,
  device,
  FakeFs,
  flush,
  job,
  setup,
  waitFor
} from './filesfixtures';

function fakeApp(hit: () => HTMLElement | undefined) {
  const items: { command: string; selector: string }[] = [];
  const app = {
    commands: new CommandRegistry(),
    contextMenu: { addItem: (item: any) => items.push(item) },
    contextMenuHitTest: (test: (node: HTMLElement) => boolean) => {
      for (let n = hit() ?? null; n; n = n.parentElement) {
        if (test(n)) {
          return n;
        }
      }
      return undefined;
    }
  };
  return { app: app as any, items };
}

describe('file commands', () => {
  afterEach(() => {
    document.body.innerHTML = '';
  });

  it('act on the args, the context-menu row or the focused row', async () => {
    const fs = new FakeFs({ 'a.txt': 'a', 'd/b.txt': 'b' }, ['d']);
    const { model, panel, pulls } = setup(fs, [
      device('a', { status: 'online' })
    ]);
    let hit: HTMLElement | undefined;
    const { app, items } = fakeApp(() => hit);
    addFileCommands(app, panel, translationBundle());
    expect(items.map(i => i.command)).toEqual([
      FileCommandIDs.pull,
      FileCommandIDs.rename,
      FileCommandIDs.remove,
      FileCommandIDs.newFolder,
      FileCommandIDs.refresh
    ]);
    expect(items[0].selector).toBe(
      '.jp-RemoteDevice-files .jp-RemoteDevice-fileRow'
    );
    await model.refresh();
    expect(app.commands.isEnabled(FileCommandIDs.pull)).toBe(false);
    model.handleMessage({ type: 'device', device: device('a') });
    await flush();
    expect(app.commands.isEnabled(FileCommandIDs.pull)).toBe(true);
    expect(app.commands.label(FileCommandIDs.pull)).toBe('Pull to Workspace…');

    // args: pull with a destination, no dialog
    const pulled = app.commands.execute(FileCommandIDs.pull, {
      path: 'a.txt',
      dest: 'ws/a.txt'
    });
    await waitFor(() => pulls.length === 1, 'the pull');
    expect(pulls[0]).toEqual(['a', 'a.txt', 'ws/a.txt']);
    model.handleMessage({
      type: 'job',
      job: job('pull1', { kind: 'pull', state: 'done', dest: 'ws/a.txt' })
    });
    expect(await pulled).toBe('ws/a.txt');

    // context menu on a row: delete that row (a folder: recursive)
    hit = panel.node.querySelector(
      '.jp-RemoteDevice-fileRow[data-path="d"] .jp-RemoteDevice-fileName'
    ) as HTMLElement;
    const removed = app.commands.execute(FileCommandIDs.remove);
    expect(await answerDialog(true)).toContain('and everything in it');
    expect(await removed).toBe(true);
    expect(fs.calls).toContain('remove d true');

    // the focused row: rename it
    hit = undefined;
    const item = panel.node.querySelector(
      '.jp-RemoteDevice-fileRow[data-path="a.txt"] .jp-RemoteDevice-fileItem'
    ) as HTMLElement;
    item.focus();
    const renamed = app.commands.execute(FileCommandIDs.rename);
    await answerDialog(true, 'b.txt');
    expect(await renamed).toBe('b.txt');
    expect(fs.calls).toContain('rename a.txt b.txt');

    // new folder next to a file goes into the file's folder (here the root)
    const made = app.commands.execute(FileCommandIDs.newFolder, {
      parent: ''
    });
    await answerDialog(true, 'models');
    expect(await made).toBe('models');
    // nothing targeted: pull does nothing
    item.blur();
    expect(await app.commands.execute(FileCommandIDs.pull)).toBeNull();
    model.dispose();
    panel.dispose();
  });
});
