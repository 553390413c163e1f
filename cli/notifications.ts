import type { NtfyMessage } from '../emulators/ntfy/index.js';

/**
 * The promotion notice among the messages ntfy received (smoke-boot.yml's promote job, last
 * step): titled `Promoted: <image>`, first line `<stable> → <digest>`. Undefined when none.
 */
export function promotionNotice(messages: NtfyMessage[], image: string, digest: string): NtfyMessage | undefined {
  return messages.find(
    (m) => m.title === `Promoted: ${image}` && (m.message.split('\n')[0] ?? '').endsWith(` → ${digest}`),
  );
}
