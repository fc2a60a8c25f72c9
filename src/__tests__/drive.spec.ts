/**
 * BoardDrive: the board's files as a JupyterLab Contents drive over the files
 * API (an in-memory board behind IFilesApi): get, save (whole and chunked),
 * rename, delete, new untitled, copy, checkpoints, notebooks bound to their
 * board, and last_modified from the board's mtime.
 */
import { ContentsManager } from '@jupyterlab/services';

import { BoardDrive, drivePath, parseDrivePath } from '../drive';
import { device, FakeFs, MTIME, setup } from './filesfixtures';

function drive(fs: FakeFs) {
  const { model, panel } = setup(fs, [device('a')]);
  panel.dispose();
  return { model, drive: new BoardDrive({ model, api: fs }) };
}

const text = (data: Uint8Array | undefined) =>
  new TextDecoder().decode(data ?? new Uint8Array());

describe('drive paths', () => {
  it('map board:<id>/<path> both ways', () => {
    expect(drivePath('a', 'x/main.py')).toBe('board:a/x/main.py');
    expect(drivePath('a', '')).toBe('board:a');
    expect(parseDrivePath('board:a/x/main.py')).toEqual({
      deviceId: 'a',
      path: 'x/main.py'
    });
    expect(parseDrivePath('a/x')).toEqual({ deviceId: 'a', path: 'x' });
    expect(parseDrivePath('board:a')).toEqual({ deviceId: 'a', path: '' });
    expect(parseDrivePath('')).toBeNull();
    expect(parseDrivePath('Other:a/x')).toBeNull();
  });
});

describe('BoardDrive', () => {
  it('reads files and folders with the board mtime', async () => {
    const fs = new FakeFs({ 'main.py': 'print(1)\n', 'lib/u.py': 'u' }, [
      'lib'
    ]);
    const { model, drive: d } = drive(fs);
    await model.refresh();
    const root = await d.get('');
    expect((root.content as any[]).map(m => m.path)).toEqual(['a']);
    const dir = await d.get('a');
    expect(dir.type).toBe('directory');
    expect((dir.content as any[]).map(m => [m.path, m.type])).toEqual([
      ['a/lib', 'directory'],
      ['a/main.py', 'file']
    ]);
    const file = await d.get('a/main.py', { type: 'file', format: 'text' });
    expect(file).toMatchObject({
      name: 'main.py',
      path: 'a/main.py',
      type: 'file',
      format: 'text',
      content: 'print(1)\n',
      mimetype: 'text/x-python',
      last_modified: new Date(MTIME * 1000).toISOString()
    });
    const meta = await d.get('a/main.py', { content: false });
    expect(meta.content).toBeNull();
    fs.files.set('bin.dat', new Uint8Array([0xff, 0xfe, 0]));
    const bin = await d.get('a/bin.dat');
    expect(bin.format).toBe('base64');
    expect(bin.content).toBe('//4A');
    await expect(d.get('a/bin.dat', { format: 'text' })).rejects.toThrow(
      /not UTF-8/
    );
    await expect(d.get('a/missing.py')).rejects.toMatchObject({ status: 404 });
    await expect(d.get('zz/main.py')).rejects.toMatchObject({
      reason: 'not-connected'
    });
    model.dispose();
  });

  it('saves through the board upload (text, base64, chunks) and reports the new mtime', async () => {
    const fs = new FakeFs({ 'main.py': 'old' });
    const { model, drive: d } = drive(fs);
    await model.refresh();
    const changes: string[] = [];
    d.fileChanged.connect((_, c) =>
      changes.push(`${c.type} ${c.newValue?.path}`)
    );
    const saved = await d.save('a/main.py', {
      type: 'file',
      format: 'text',
      content: 'new text'
    });
    expect(text(fs.files.get('main.py'))).toBe('new text');
    expect(saved.last_modified).toBe(
      new Date(fs.mtimes.get('main.py')! * 1000).toISOString()
    );
    expect(saved.last_modified > new Date(MTIME * 1000).toISOString()).toBe(
      true
    );
    await d.save('a/img.png', {
      type: 'file',
      format: 'base64',
      content: btoa('\x89PNG')
    });
    expect(Array.from(fs.files.get('img.png')!)).toEqual([0x89, 80, 78, 71]);
    // the file browser's chunked upload: one board write at the end
    const uploads = () =>
      fs.calls.filter(c => c.startsWith('upload big')).length;
    await d.save('a/big.txt', {
      type: 'file',
      format: 'text',
      content: 'aa',
      chunk: 1
    } as any);
    await d.save('a/big.txt', {
      type: 'file',
      format: 'text',
      content: 'bb',
      chunk: 2
    } as any);
    expect(uploads()).toBe(0);
    await d.save('a/big.txt', {
      type: 'file',
      format: 'text',
      content: 'cc',
      chunk: -1
    } as any);
    expect(uploads()).toBe(1);
    expect(text(fs.files.get('big.txt'))).toBe('aabbcc');
    expect(changes).toEqual([
      'save a/main.py',
      'save a/img.png',
      'save a/big.txt'
    ]);
    model.dispose();
  });

  it('renames, deletes, copies and makes untitled files on the board', async () => {
    const fs = new FakeFs({ 'a.py': 'A', 'd/x.txt': 'x' }, ['d']);
    const { model, drive: d } = drive(fs);
    await model.refresh();
    const renamed = await d.rename('a/a.py', 'a/b.py');
    expect(renamed.path).toBe('a/b.py');
    expect(fs.calls).toContain('rename a.py b.py');
    await expect(d.rename('a/b.py', 'other/b.py')).rejects.toThrow();
    const copy = await d.copy('a/b.py', 'a/d');
    expect(copy.path).toBe('a/d/b-Copy1.py');
    expect(text(fs.files.get('d/b-Copy1.py'))).toBe('A');
    const untitled = await d.newUntitled({
      path: 'a/d',
      type: 'file',
      ext: '.py'
    });
    expect(untitled.path).toBe('a/d/untitled.py');
    const again = await d.newUntitled({
      path: 'a/d',
      type: 'file',
      ext: '.py'
    });
    expect(again.path).toBe('a/d/untitled1.py');
    const folder = await d.newUntitled({ path: 'a', type: 'directory' });
    expect(folder.path).toBe('a/Untitled Folder');
    await d.delete('a/d');
    expect(fs.calls).toContain('remove d true');
    await d.delete('a/b.py');
    expect(fs.calls).toContain('remove b.py false');
    await expect(d.delete('a')).rejects.toThrow();
    model.dispose();
  });

  it('keeps one checkpoint per file in the page and restores it to the board', async () => {
    const fs = new FakeFs({ 'main.py': 'v1' });
    const { model, drive: d } = drive(fs);
    await model.refresh();
    expect(await d.listCheckpoints('a/main.py')).toEqual([]);
    const cp = await d.createCheckpoint('a/main.py');
    expect(await d.listCheckpoints('a/main.py')).toEqual([cp]);
    await d.save('a/main.py', { type: 'file', format: 'text', content: 'v2' });
    await d.restoreCheckpoint('a/main.py', cp.id);
    expect(text(fs.files.get('main.py'))).toBe('v1');
    await expect(d.restoreCheckpoint('a/main.py', 'nope')).rejects.toThrow();
    await d.deleteCheckpoint('a/main.py', cp.id);
    expect(await d.listCheckpoints('a/main.py')).toEqual([]);
    model.dispose();
  });

  it('binds a notebook read from a board to that board', async () => {
    const fs = new FakeFs({
      'nb.ipynb': JSON.stringify({
        cells: [],
        metadata: { kernelspec: { name: 'python3', display_name: 'Python 3' } },
        nbformat: 4,
        nbformat_minor: 5
      })
    });
    const { model, drive: d } = drive(fs);
    await model.refresh();
    const nb = await d.get('a/nb.ipynb');
    expect(nb.type).toBe('notebook');
    expect(nb.format).toBe('json');
    expect((nb.content as any).metadata.kernelspec.name).toBe('remote-device');
    expect((nb.content as any).metadata.remote_device).toEqual({
      name: 'board-a',
      host: '127.0.0.1',
      port: 18861
    });
    await d.save('a/nb.ipynb', {
      type: 'notebook',
      format: 'json',
      content: nb.content
    });
    expect(
      JSON.parse(text(fs.files.get('nb.ipynb'))).metadata.remote_device.name
    ).toBe('board-a');
    const fresh = await d.newUntitled({ path: 'a', type: 'notebook' });
    expect(fresh.path).toBe('a/untitled.ipynb');
    expect(
      JSON.parse(text(fs.files.get('untitled.ipynb'))).metadata.kernelspec.name
    ).toBe('remote-device');
    model.dispose();
  });

  it('plugs into a ContentsManager as the board: drive', async () => {
    const fs = new FakeFs({ 'main.py': 'x = 1\n' });
    const { model, drive: d } = drive(fs);
    await model.refresh();
    const manager = new ContentsManager();
    manager.addDrive(d);
    const m = await manager.get('board:a/main.py', {
      format: 'text',
      type: 'file'
    });
    expect(m.path).toBe('board:a/main.py');
    expect(m.content).toBe('x = 1\n');
    await manager.save('board:a/main.py', {
      type: 'file',
      format: 'text',
      content: 'x = 2\n'
    });
    expect(text(fs.files.get('main.py'))).toBe('x = 2\n');
    manager.dispose();
    model.dispose();
  });
});
