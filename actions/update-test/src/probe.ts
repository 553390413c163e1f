/**
 * The probe update-test adds to the previous release's deployment, as a local change in its
 * /etc (a unit enabled in /etc/systemd/system and its script and expectations in
 * /etc/keel-update-test/). Being a local /etc change, the 3-way merge carries it into the
 * candidate's deployment: that it runs there is part of what boot 2 proves.
 *
 * It runs after multi-user.target on every boot whose kernel command line says
 * `keel.update-test=N` (the host adds that for test boots only; the deployment's own kernel
 * arguments never have it), reports `key=value` markers on the kernel log (which the kernel
 * prints on the serial console the host watches, whatever userspace does with the console),
 * and ends the boot itself:
 *   1 (previous):  checks the booted commit; changes /etc (a file the image ships and a new one)
 *                  and writes /var; pulls the candidate's commit from the repository on the
 *                  second disk (`ostree pull-local`) and stages it (`ostree admin deploy
 *                  --stage`); reboots, so ostree-finalize-staged.service writes the boot entries
 *                  at shutdown, the way `bootc upgrade` + reboot does.
 *   2 (candidate): checks the booted commit, that the /etc changes and the /var data survived,
 *                  lists failed units and the /etc drift; with rollback, makes the previous
 *                  deployment the default again (`ostree admin set-default 1`) and reboots.
 *   3 (previous):  checks the booted commit and the /var data; powers off at once.
 */

export const PROBE_DIR = '/etc/keel-update-test';
export const PROBE_UNIT = 'keel-update-test.service';
/** Label of the filesystem that carries the candidate's ostree repository (at /repo). */
export const CANDIDATE_LABEL = 'keel-candidate';

export interface ProbeExpect {
  nonce: string;
  previous: string;
  candidate: string;
  stateroot: string;
  token: string;
  rollback: boolean;
}

export const UNIT_TEXT = `[Unit]
Description=Keel update-test probe
Documentation=https://github.com/keel-project/keel/tree/main/actions/update-test
After=multi-user.target
ConditionKernelCommandLine=keel.update-test

[Service]
Type=oneshot
ExecStart=/bin/sh ${PROBE_DIR}/probe.sh
`;

export function expectEnv(e: ProbeExpect): string {
  for (const [k, v] of Object.entries(e)) {
    if (!/^[A-Za-z0-9._-]+$/.test(String(v))) throw new Error(`probe expectation ${k} is not plain: ${String(v)}`);
  }
  return [
    `NONCE=${e.nonce}`,
    `PREVIOUS=${e.previous}`,
    `CANDIDATE=${e.candidate}`,
    `STATEROOT=${e.stateroot}`,
    `TOKEN=${e.token}`,
    `ROLLBACK=${e.rollback}`,
    `CANDIDATE_LABEL=${CANDIDATE_LABEL}`,
    '',
  ].join('\n');
}

export const PROBE_SCRIPT = `#!/bin/sh
# Keel update-test probe (written by the update-test action). See actions/update-test/README.md.
set -u
. ${PROBE_DIR}/expect.env
BOOT=$(sed -n 's/.*keel\\.update-test=\\([1-3]\\).*/\\1/p' /proc/cmdline)
say() { printf 'keel-update-test[%s] boot=%s %s\\n' "$NONCE" "\${BOOT:-0}" "$*" >/dev/kmsg; }
plain() { printf '%s' "$*" | tr -c 'A-Za-z0-9._:+~,/=-' '_'; }
fail() {
  say "error=$(plain "$*")"
  say done=fail
  systemctl --no-block poweroff
  exit 1
}
# Long steps (a pull under TCG) print a heartbeat so the host does not take silence for a hang.
beat() {
  "$@" >/tmp/keel-update-test.out 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 20
    kill -0 "$pid" 2>/dev/null && say "working=$(plain "$1 $2")"
  done
  wait "$pid"
}
status_first() { ostree admin status 2>/dev/null | sed -n "s/^$1 [^ ]* \\([0-9a-f]\\{64\\}\\)\\.[0-9]*.*/\\1/p" | head -n 1; }
[ -n "$BOOT" ] || fail "no keel.update-test=N on the kernel command line"
booted=$(status_first '\\*')
say "booted=\${booted:-unknown}"
. /usr/lib/os-release
say "os-version=$(plain "\${VERSION:-\${VERSION_ID:-}}") os-id=$(plain "\${ID:-}")"
if [ -r /usr/lib/keel/image-info.env ]; then
  say "image-version=$(plain "$(sed -n 's/^IMAGE_VERSION=//p' /usr/lib/keel/image-info.env)")"
fi
failed=$(systemctl --failed --plain --no-legend --no-pager 2>/dev/null | awk '{print $1}' | tr '\\n' ',' | sed 's/,$//')
say "failed-units=$(plain "\${failed:-none}")"
case $BOOT in
1)
  [ "$booted" = "$PREVIOUS" ] || fail "booted \${booted:-nothing}, expected the previous release $PREVIOUS"
  printf 'keel-update-test-%s\\n' "$TOKEN" >/etc/hostname || fail "cannot change /etc/hostname"
  printf '%s\\n' "$TOKEN" >${PROBE_DIR}/local-change || fail "cannot write ${PROBE_DIR}/local-change"
  mkdir -p /var/lib/keel-update-test && printf '%s\\n' "$TOKEN" >/var/lib/keel-update-test/data || fail "cannot write /var"
  sync
  say "etc-changed=yes var-written=yes"
  mkdir -p /run/keel-candidate
  mount -o ro "/dev/disk/by-label/$CANDIDATE_LABEL" /run/keel-candidate || fail "cannot mount the candidate disk"
  beat ostree pull-local --repo=/ostree/repo /run/keel-candidate/repo "$CANDIDATE" || fail "ostree pull-local: $(tail -n 3 /tmp/keel-update-test.out)"
  say "pulled=$CANDIDATE"
  beat ostree admin deploy --stage --os="$STATEROOT" "$CANDIDATE" || fail "ostree admin deploy --stage: $(tail -n 3 /tmp/keel-update-test.out)"
  umount /run/keel-candidate
  say "staged=$(ostree admin status | sed -n 's/^  [^ ]* \\([0-9a-f]\\{64\\}\\)\\.[0-9]* (staged).*/\\1/p')"
  say done=ok
  systemctl --no-block reboot
  ;;
2)
  [ "$booted" = "$CANDIDATE" ] || fail "booted \${booted:-nothing}, expected the candidate $CANDIDATE"
  etc=no
  [ "$(cat ${PROBE_DIR}/local-change 2>/dev/null)" = "$TOKEN" ] && [ "$(cat /etc/hostname 2>/dev/null)" = "keel-update-test-$TOKEN" ] && etc=yes
  var=no
  [ "$(cat /var/lib/keel-update-test/data 2>/dev/null)" = "$TOKEN" ] && var=yes
  say "etc-kept=$etc var-kept=$var"
  say "etc-drift=$(ostree admin config-diff 2>/dev/null | awk '{print $1}' | sort | uniq -c | awk '{printf "%s:%s,", $2, $1}' | sed 's/,$//')"
  if [ "$ROLLBACK" = true ]; then
    ostree admin set-default 1 >/dev/null 2>&1 || fail "ostree admin set-default 1 failed"
    say "rollback-default=$(status_first '[* ]')"
    say done=ok
    systemctl --no-block reboot --force
  else
    say done=ok
    systemctl --no-block poweroff --force
  fi
  ;;
3)
  [ "$booted" = "$PREVIOUS" ] || fail "booted \${booted:-nothing}, expected the previous release $PREVIOUS"
  var=no
  [ "$(cat /var/lib/keel-update-test/data 2>/dev/null)" = "$TOKEN" ] && var=yes
  say "var-kept=$var"
  say done=ok
  # The last boot: nothing on the disk is read again, so no need to wait for services to stop.
  sync
  systemctl poweroff --force --force
  ;;
esac
`;

/** What the probe reported in one boot: its markers as key → value (the last value wins). */
export type ProbeReport = Map<string, string>;

/** Collects the probe's markers of one boot from console lines. */
export class ProbeMarkers {
  readonly report: ProbeReport = new Map();
  private readonly re: RegExp;

  constructor(nonce: string, boot: number) {
    this.re = new RegExp(`keel-update-test\\[${nonce}\\] boot=${boot} (.*)$`);
  }

  feed(line: string): void {
    const m = this.re.exec(line);
    if (!m) return;
    for (const kv of m[1]!.trim().split(/ +/)) {
      const i = kv.indexOf('=');
      if (i > 0) this.report.set(kv.slice(0, i), kv.slice(i + 1));
    }
  }
}
