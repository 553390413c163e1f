// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { qemuArgs, tcgCodePatchFault } from '../../actions/lib/vm/qemu.js';

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

describe('tcgCodePatchFault', () => {
  const oops = '[    1.33] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n[    1.33] RIP: 0010:enqueue_timer+0xa5/0x100\n';
  it('is the int3 oops under TCG only', () => {
    expect(tcgCodePatchFault('tcg', oops)).toBe(true);
    expect(tcgCodePatchFault('kvm', oops)).toBe(false);
    expect(tcgCodePatchFault('tcg', '[    1.33] Oops: general protection fault: 0000 [#1] SMP\n')).toBe(false);
    expect(tcgCodePatchFault('tcg', 'Kernel panic - not syncing: VFS: Unable to mount root fs\n')).toBe(false);
  });
});
