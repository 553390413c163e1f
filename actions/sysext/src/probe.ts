import { stripAnsi } from '../../lib/vm/verdict.js';

/**
 * The probe that runs inside the booted guest: a oneshot unit started after systemd-sysext,
 * printing its findings to the kernel log (so they reach the serial console whatever a getty
 * does to /dev/console), each line tagged with a per-run nonce the image cannot guess. It checks
 * that the extension is merged (merging it itself, and saying so, when the boot did not), runs
 * probe-command, and, where systemd-sysupdate exists in the merged guest, lets it read the
 * `.transfer` file and verify SHA256SUMS and its signature from the host's loopback server.
 */
export interface ProbeSpec {
  nonce: string;
  name: string;
  version: string;
  /** The image file name in /var/lib/extensions/. */
  file: string;
  /** Shell command run with sh in the guest after the merge; must exit 0. Empty: none. */
  probeCommand: string;
  /** Run the systemd-sysupdate check (the transfer files are installed in /etc/sysupdate.d/). */
  sysupdate: boolean;
  /** The signature is checked by sysupdate (false: SHA256SUMS is unsigned, --verify=no). */
  signed: boolean;
}

export const PROBE_DIR = 'etc/keel-sysext-probe';
export const PROBE_UNIT = 'keel-sysext-probe.service';
/** The guest's address on QEMU's user network; the host is 10.0.2.2 there. */
export const GUEST_ADDRESS = '10.0.2.15/24';

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function probeUnit(): string {
  return [
    '[Unit]',
    'Description=Keel sysext boot probe (test disk only)',
    'After=systemd-sysext.service local-fs.target systemd-udevd.service',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=/bin/sh /${PROBE_DIR}/probe.sh`,
    'StandardOutput=journal',
    'StandardError=journal',
    '',
  ].join('\n');
}

export function probeScript(p: ProbeSpec): string {
  const M = `keel-sysext-${p.nonce}`;
  return `#!/bin/sh
# Keel sysext boot probe: written into a throw-away test disk, never shipped.
M=${shQuote(M)}
NAME=${shQuote(p.name)}
VERSION=${shQuote(p.version)}
say() { printf '%s: %s\\n' "$M" "$*" > /dev/kmsg; }
show() { head -n 40 | while IFS= read -r l; do say "| $l"; done; }
pass() { say "PASS $*"; exit 0; }
fail() { say "FAIL $*"; exit 1; }
${p.sysupdate ? netUpFunction() : ''}
say "START $NAME $VERSION"
REL=/usr/lib/extension-release.d/extension-release.$NAME
if [ -f "$REL" ]; then
  say "MERGED at boot"
else
  say "not merged at boot; running systemd-sysext merge"
  out=$(SYSTEMD_LOG_LEVEL=debug systemd-sysext merge 2>&1); rc=$?
  printf '%s\\n' "$out" | grep -i -e "$NAME" -e ignor -e "not match" -e fail | show
  [ -f "$REL" ] || fail "the extension did not merge (systemd-sysext merge exit $rc): $(printf '%s\\n' "$out" | grep -i -e "$NAME" -e "not match" -e fail | tail -n 1)"
  say "MERGED by the probe"
fi
systemd-sysext status 2>&1 | show
systemd-sysext status 2>/dev/null | grep -q -e "$NAME" || fail "systemd-sysext status does not list $NAME"
${
  p.probeCommand
    ? `out=$(sh /${PROBE_DIR}/probe-command 2>&1); rc=$?
printf '%s\\n' "$out" | show
[ "$rc" = 0 ] || fail "probe-command exited $rc: $(printf '%s\\n' "$out" | tail -n 1)"
say "PROBE-COMMAND ok"`
    : 'say "PROBE-COMMAND none"'
}
${p.sysupdate ? sysupdateCheck(p) : 'say "SYSUPDATE skipped: not requested"'}
pass "$NAME $VERSION merged$([ -f /${PROBE_DIR}/probe-command ] && echo ', probe-command exited 0')"
`;
}

function sysupdateCheck(p: ProbeSpec): string {
  return `SU=/usr/lib/systemd/systemd-sysupdate
if [ ! -x "$SU" ]; then
  say "SYSUPDATE skipped: no systemd-sysupdate in the guest"
elif ! command -v ip >/dev/null 2>&1; then
  say "SYSUPDATE skipped: no ip tool to configure the guest network"
else
  net_up /sys/class/net
  out=$("$SU" --verify=${p.signed ? 'yes' : 'no'} list 2>&1); rc=$?
  printf '%s\\n' "$out" | show
  [ "$rc" = 0 ] || fail "systemd-sysupdate list exited $rc: $(printf '%s\\n' "$out" | tail -n 1)"
  printf '%s\\n' "$out" | grep -q -F -e "$VERSION" || fail "systemd-sysupdate list does not show version $VERSION"
  say "SYSUPDATE ok: the transfer parsed, ${p.signed ? 'SHA256SUMS.gpg verified, ' : ''}version $VERSION listed"
fi`;
}

/**
 * The shell function `net_up NETDIR` brings the guest's first network device up with
 * GUEST_ADDRESS, or calls `fail`. udev renames the kernel's eth0 to a predictable name
 * (enp0s2) at a moment of its own, under TCG sometimes seconds after the probe starts; a name
 * read before the rename no longer exists. So each attempt waits for udev to settle, reads the
 * name again and retries, and the address is added only once.
 */
export function netUpFunction(): string {
  const address = GUEST_ADDRESS;
  const ip = address.split('/')[0];
  return `net_up() {
  dev=""; err="no network device in $1"
  for i in $(seq 1 30); do
    command -v udevadm >/dev/null 2>&1 && udevadm settle --timeout=5 >/dev/null 2>&1
    dev=$(ls "$1" | grep -v '^lo$' | head -n 1)
    if [ -n "$dev" ]; then
      err=$(ip link set "$dev" up 2>&1) &&
        { ip -o addr show dev "$dev" 2>/dev/null | grep -q -F " ${ip}/" ||
          err=$(ip addr add ${address} dev "$dev" 2>&1); } && return 0
    fi
    sleep 1
  done
  fail "cannot configure the network device \${dev:-(none)}: $err"
}`;
}

/** What the console said about the probe. */
export interface ProbeReport {
  started: boolean;
  merged?: 'at boot' | 'by the probe';
  probeCommand?: 'ok' | 'none';
  sysupdate?: string;
  lines: string[];
}

/** Reads the probe's tagged lines from console lines. */
export function probeReport(nonce: string, lines: string[]): ProbeReport {
  const tag = `keel-sysext-${nonce}: `;
  const r: ProbeReport = { started: false, lines: [] };
  for (const raw of lines) {
    const line = stripAnsi(raw);
    const i = line.indexOf(tag);
    if (i < 0) continue;
    const msg = line.slice(i + tag.length).trim();
    r.lines.push(msg);
    if (msg.startsWith('START ')) r.started = true;
    else if (msg === 'MERGED at boot') r.merged = 'at boot';
    else if (msg === 'MERGED by the probe') r.merged = 'by the probe';
    else if (msg === 'PROBE-COMMAND ok') r.probeCommand = 'ok';
    else if (msg === 'PROBE-COMMAND none') r.probeCommand = 'none';
    else if (msg.startsWith('SYSUPDATE ')) r.sysupdate = msg.slice('SYSUPDATE '.length);
  }
  return r;
}

/** The verdict patterns: only the probe decides success; its FAIL line (or a boot failure) fails. */
export function probePatterns(nonce: string): { pass: RegExp; fail: RegExp } {
  return { pass: new RegExp(`keel-sysext-${nonce}: PASS .*`), fail: new RegExp(`keel-sysext-${nonce}: FAIL .*`) };
}
