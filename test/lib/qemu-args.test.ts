// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { qemuArgs } from '../../actions/lib/vm/qemu.js';

/** How a drive reaches QEMU: a test boot never changes its disk unless the caller asks. */
describe('qemuArgs drives', () => {
  const drives = (d: Parameters<typeof qemuArgs>[0]['drives']) =>
    qemuArgs({ accel: 'tcg', memoryMiB: 512, cpus: 1, drives: d }).filter((a) => a.startsWith('file='));

  it('boots on a throw-away overlay by default, keeps writes when persistent, refuses them when read-only', () => {
    expect(
      drives([
        { file: '/d/a.img', format: 'raw', interface: 'virtio' },
        { file: '/d/b.img', format: 'raw', interface: 'virtio', persistent: true },
        { file: '/d/c.img', format: 'qcow2', interface: 'ide', readonly: true },
      ]),
    ).toEqual([
      'file=/d/a.img,format=raw,if=virtio,snapshot=on,cache=unsafe,discard=unmap',
      'file=/d/b.img,format=raw,if=virtio,snapshot=off,cache=unsafe,discard=unmap',
      'file=/d/c.img,format=qcow2,if=ide,readonly=on,cache=unsafe,discard=unmap',
    ]);
  });
});
