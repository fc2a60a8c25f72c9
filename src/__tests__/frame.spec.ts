/**
 * Camera frame parsing, snapshot names, add-device validation, version.
 */
import {
  encodeFrame,
  parseFrame,
  parseResolution,
  snapshotName,
  toBase64
} from '../frame';
import { splitHostPort, validateAddDevice } from '../widgets/adddialog';
import { describeJob, jobProgress } from '../widgets/jobs';
import { FRONTEND_VERSION } from '../version';

declare const require: (path: string) => any;
const pkg = require('../../package.json');

describe('camera frames', () => {
  it('parses header and image', () => {
    const image = new Uint8Array([0xff, 0xd8, 1, 2, 3, 0xff, 0xd9]);
    const header = {
      seq: 7,
      captured_at: 1700000000.25,
      width: 640,
      height: 480,
      format: 'jpeg'
    };
    const frame = parseFrame(encodeFrame(header, image));
    expect(frame.header).toEqual(header);
    expect(Array.from(frame.image)).toEqual(Array.from(image));
  });

  it('rejects malformed messages', () => {
    expect(() => parseFrame(new ArrayBuffer(2))).toThrow();
    const bad = new Uint8Array(8);
    new DataView(bad.buffer).setUint32(0, 100, false);
    expect(() => parseFrame(bad.buffer)).toThrow();
  });

  it('names snapshots <board>-<YYYYmmdd-HHMMSS>.jpg', () => {
    const d = new Date(2026, 10, 23, 9, 5, 7);
    expect(snapshotName('demo-board', d)).toBe(
      'demo-board-20261123-090507.jpg'
    );
    expect(snapshotName('my board/1', d)).toBe(
      'my_board_1-20261123-090507.jpg'
    );
  });

  it('base64-encodes bytes', () => {
    expect(toBase64(new Uint8Array([104, 105]))).toBe('aGk=');
    const big = new Uint8Array(100000).fill(65);
    expect(atob(toBase64(big)).length).toBe(100000);
  });

  it('parses resolutions', () => {
    expect(parseResolution('1280x720')).toEqual([1280, 720]);
    expect(parseResolution('bogus')).toEqual([640, 480]);
  });
});

describe('add device validation', () => {
  it('accepts addresses and host names', () => {
    expect(
      validateAddDevice({ host: '192.168.1.42', port: '18861', name: '' })
    ).toEqual({});
    expect(
      validateAddDevice({ host: 'board.local', port: '18812', name: 'cam' })
    ).toEqual({});
    expect(validateAddDevice({ host: '::1', port: '1', name: '' })).toEqual({});
  });

  it('explains what is wrong', () => {
    expect(
      validateAddDevice({ host: '', port: '18861', name: '' }).host
    ).toMatch(/address/);
    expect(
      validateAddDevice({ host: 'http://x', port: '18861', name: '' }).host
    ).toBeTruthy();
    expect(
      validateAddDevice({ host: '300.1.1.1', port: '18861', name: '' }).host
    ).toMatch(/0–255/);
    expect(
      validateAddDevice({ host: 'a b', port: '18861', name: '' }).host
    ).toBeTruthy();
    expect(
      validateAddDevice({ host: 'x', port: 'abc', name: '' }).port
    ).toBeTruthy();
    expect(
      validateAddDevice({ host: 'x', port: '70000', name: '' }).port
    ).toMatch(/65535/);
  });

  it('splits host:port', () => {
    expect(splitHostPort('10.0.0.2:18812')).toEqual({
      host: '10.0.0.2',
      port: '18812'
    });
    expect(splitHostPort('[::1]:18861')).toEqual({
      host: '::1',
      port: '18861'
    });
    expect(splitHostPort('board.local')).toEqual({ host: 'board.local' });
  });
});

describe('jobs', () => {
  const base = {
    id: 'j',
    kind: 'push',
    state: 'running' as const,
    bytes_done: 50,
    bytes_total: 200,
    files_done: 1,
    files_total: 4,
    rate: 1024,
    error: null,
    verified: null
  };
  it('describes progress and outcome', () => {
    expect(jobProgress(base)).toBe(0.25);
    expect(describeJob(base, 'x')).toMatch(
      /Pushing x .*1\/4 files.*1\.0 kB\/s/
    );
    expect(
      describeJob({ ...base, state: 'done', verified: true }, 'x')
    ).toMatch(/sha256 verified/);
    expect(
      describeJob({ ...base, state: 'failed', error: 'disk full' }, 'x')
    ).toMatch(/disk full/);
  });
});

describe('version', () => {
  it('matches package.json', () => {
    expect(FRONTEND_VERSION).toBe(pkg.version);
  });
});
