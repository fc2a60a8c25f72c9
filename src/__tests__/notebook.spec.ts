import { connectLine } from '../notebook';

describe('silent %connect', () => {
  it('builds the line from metadata.remote_device', () => {
    expect(
      connectLine({ name: 'cam', host: '192.168.1.42', port: 18861 })
    ).toBe('%connect 192.168.1.42:18861');
    expect(connectLine({ host: 'board.local' })).toBe('%connect board.local');
    expect(connectLine({ host: '::1', port: 18812 })).toBe(
      '%connect [::1]:18812'
    );
  });

  it('refuses anything that is not an address', () => {
    expect(connectLine(null)).toBeNull();
    expect(connectLine({})).toBeNull();
    expect(connectLine({ host: 'x; import os' })).toBeNull();
    expect(connectLine({ host: 'a\n%disconnect' })).toBeNull();
  });
});
