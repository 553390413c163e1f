import net from 'node:net';

/** A minimal QMP client: capabilities handshake, one command, its return. */
export async function qmpCommand(
  socketPath: string,
  command: string,
  args?: Record<string, unknown>,
  timeoutMs = 10_000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let buf = '';
    let stage = 0;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`QMP ${command} timed out`));
    }, timeoutMs);
    const done = (err: Error | undefined, v?: unknown) => {
      clearTimeout(timer);
      sock.end();
      if (err) reject(err);
      else resolve(v);
    };
    sock.on('error', (e) => done(e));
    sock.on('data', (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc?: string }; event?: string };
        if (msg.event) continue;
        if (stage === 0 && msg.QMP) {
          stage = 1;
          sock.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
        } else if (stage === 1) {
          if (msg.error) return done(new Error(`QMP capabilities: ${msg.error.desc}`));
          stage = 2;
          sock.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`);
        } else if (stage === 2) {
          if (msg.error) return done(new Error(`QMP ${command}: ${msg.error.desc}`));
          return done(undefined, msg.return);
        }
      }
    });
  });
}
