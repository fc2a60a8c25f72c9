/**
 * Recording and dataset helpers: file names, the Record button's label, what a
 * finished recording says, dataset labels and paths.
 */
import { recordingLabel, recordingPath, recordingSummary } from '../recording';
import { cleanLabel, datasetPath } from '../widgets/dataset';

const when = new Date(2026, 11, 2, 3, 4, 5, 6);

describe('recordings', () => {
  it('names files by board and time, with the format’s extension', () => {
    expect(recordingPath('clips', 'my board', 'mp4', when)).toBe(
      'clips/my_board-20261202-030405.mp4'
    );
    expect(recordingPath('', 'b', 'webm', when)).toBe('b-20261202-030405.webm');
    expect(recordingPath('', 'b', 'mjpeg', when)).toBe('b-20261202-030405.avi');
    expect(recordingPath('x', 'b', 'frames', when)).toBe('x/b-20261202-030405');
  });

  it('shows elapsed time and size while recording', () => {
    expect(recordingLabel({ duration_s: 72.9, bytes_done: 2048 })).toMatch(
      /^01:12 · 2(\.0)? ?(kB|KB|KiB)$/
    );
    expect(recordingLabel({})).toMatch(/^00:00 · /);
  });

  it('says how a recording ended', () => {
    const base = {
      id: 'j',
      kind: 'record',
      bytes_done: 1000,
      bytes_total: 0,
      files_done: 1,
      files_total: 1,
      rate: 0,
      error: null,
      verified: null,
      frames: 30,
      duration_s: 1.5,
      path: 'a.mp4'
    } as const;
    expect(
      recordingSummary({ ...base, state: 'done', stopped_by: 'stop' })
    ).toMatch(/^Saved a\.mp4: 30 frames, 1\.5 s/);
    expect(
      recordingSummary({ ...base, state: 'done', stopped_by: 'board-lost' })
    ).toContain('board was lost');
    expect(
      recordingSummary({ ...base, state: 'failed', error: 'no frame arrived' })
    ).toBe('Recording failed: no frame arrived');
  });
});

describe('datasets', () => {
  it('accepts folder-safe labels only', () => {
    expect(cleanLabel(' cup ')).toBe('cup');
    expect(cleanLabel('red-ball_2')).toBe('red-ball_2');
    for (const bad of ['', 'a/b', '..', '.hidden', 'x'.repeat(65), 'a\\b']) {
      expect(cleanLabel(bad)).toBeNull();
    }
  });

  it('saves into dataset/<label>/ below the folder', () => {
    expect(datasetPath('work', 'cup', 7, when)).toBe(
      'work/dataset/cup/cup_20261202-030405-006_0007.jpg'
    );
    expect(datasetPath('', 'red ball', 1, when)).toBe(
      'dataset/red ball/red_ball_20261202-030405-006_0001.jpg'
    );
  });
});
