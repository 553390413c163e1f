// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { GrubBootWatch } from '../../actions/lib/vm/iso.js';
import { consoleFixture, firstVerdict } from '../harness/console.js';

// Serial consoles captured here: OVMF booting Keel's own ISO from CD-ROM, before (no video
// driver in grub.cfg) and after `insmod all_video`.

describe('GrubBootWatch (UEFI firmware → GRUB → default entry)', () => {
  it("fails an ISO whose GRUB boots in blind mode, naming GRUB's error", () => {
    const v = firstVerdict(new GrubBootWatch(), consoleFixture('grub-ovmf-blind-mode.serial'));
    expect(v).toMatchObject({ kind: 'fail', line: 'error: no suitable video mode found.' });
  });

  it('gives no console verdict for a clean GRUB boot, and remembers the entry it booted', () => {
    const w = new GrubBootWatch();
    expect(firstVerdict(w, consoleFixture('grub-ovmf-all-video.serial'))).toBeUndefined();
    expect(w.entry).toBe('os (live)');
  });

  it('passes only once the monitor shows the CPU in kernel space after "Booting"', async () => {
    const w = new GrubBootWatch();
    const asked: string[] = [];
    const regs = (rip: string) => async (cmd: string) => {
      asked.push(cmd);
      return `RAX=0000000000000000 RBX=0000000000000001\nRIP=${rip} RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\n`;
    };
    // Before GRUB says "Booting", the monitor is not even asked.
    expect(await w.probe(regs('ffffffff81000000'))).toBeUndefined();
    expect(asked).toEqual([]);
    firstVerdict(w, consoleFixture('grub-ovmf-all-video.serial'));
    // Firmware / GRUB / EFI stub addresses are not the kernel.
    expect(await w.probe(regs('000000007e5a1234'))).toBeUndefined();
    expect(await w.probe(regs('ffffffff8a2b3c4d'))).toMatchObject({
      kind: 'pass',
      line: "GRUB booted `os (live)'; the kernel is running (RIP ffffffff8a2b3c4d)",
    });
    expect(asked).toEqual(['info registers', 'info registers']);
  });
});
