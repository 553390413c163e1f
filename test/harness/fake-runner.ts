import type { CommandRunner, RunOptions, RunResult } from '../../actions/lib/exec.js';
import { displayArgv } from '../../actions/lib/exec.js';

/**
 * A command runner for the hops' table tests: records every call (argv and options) and answers
 * from `play`, which plays the tool (returns stdout, a full result, or throws like a failing
 * tool). `which` finds only the tools named in `tools` (default: every tool).
 */
export interface Call {
  cmd: string;
  args: string[];
  opts: RunOptions;
}

export type Play = (call: Call) => string | RunResult | Promise<string | RunResult>;

export interface FakeRunner extends CommandRunner {
  calls: Call[];
  /** Each call as one display line (`cmd arg …`), for table assertions. */
  lines(): string[];
}

export function fakeRunner(play?: Play, opts: { tools?: string[] } = {}): FakeRunner {
  const calls: Call[] = [];
  return {
    calls,
    lines: () => calls.map((c) => displayArgv(c.cmd, c.args)),
    which: (cmd) => (!opts.tools || opts.tools.includes(cmd) ? `/usr/bin/${cmd}` : undefined),
    async run(cmd, args, o = {}) {
      const call = { cmd, args, opts: o };
      calls.push(call);
      if (!play) throw new Error(`unexpected command: ${displayArgv(cmd, args)}`);
      const r = await play(call);
      return typeof r === 'string' ? { code: 0, stdout: Buffer.from(r), stderr: '' } : r;
    },
  };
}
