# shellcheck shell=bash
# Shared helpers of the base bootstrap (build_files/base/, run on the build host against a
# rootfs directory) and of the staged image build (build_files/[0-9][0-9]-*/, run inside the
# build container against /). Every function takes the root it works on as its first argument,
# so one implementation of each bootc layout rule serves both.
#
# Sourced, never executed. Callers run with `set -euo pipefail`.

log() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'ERROR: %s\n' "$*" >&2
	exit 1
}

# Runs a command inside ROOT: directly when ROOT is /, through chroot otherwise.
in_root() {
	local root=$1
	shift
	if [ "$root" = / ]; then "$@"; else chroot "$root" "$@"; fi
}

# Prints the kernel versions (directory names) under ROOT/usr/lib/modules, one per line.
kernel_dirs() {
	local root=$1 d
	[ -d "$root/usr/lib/modules" ] || return 0
	for d in "$root"/usr/lib/modules/*/; do
		[ -d "$d" ] || continue
		d=${d%/}
		printf '%s\n' "${d##*/}"
	done
}

# bootc/ostree read the kernel from /usr/lib/modules/<kver>/vmlinuz, never from /boot. Debian's
# linux-image packages install /boot/vmlinuz-<kver> (+ config, System.map): move them to the
# canonical place and drop what Debian's hooks generated under /boot (initrd.img-*, the
# top-level /vmlinuz and /initrd.img symlinks), which a bootc system would mask anyway.
relocate_kernel() {
	local root=$1 f kver
	for f in "$root"/boot/vmlinuz-*; do
		[ -e "$f" ] || continue
		kver=${f##*/vmlinuz-}
		[ -d "$root/usr/lib/modules/$kver" ] || die "kernel image $f has no module tree /usr/lib/modules/$kver"
		log "moving /boot/vmlinuz-$kver to /usr/lib/modules/$kver/vmlinuz"
		mv -f "$f" "$root/usr/lib/modules/$kver/vmlinuz"
		if [ -e "$root/boot/config-$kver" ]; then mv -f "$root/boot/config-$kver" "$root/usr/lib/modules/$kver/config"; fi
		if [ -e "$root/boot/System.map-$kver" ]; then mv -f "$root/boot/System.map-$kver" "$root/usr/lib/modules/$kver/System.map"; fi
	done
	rm -f "$root"/vmlinuz "$root"/vmlinuz.old "$root"/initrd.img "$root"/initrd.img.old
	find "$root/boot" -mindepth 1 -delete
}

# Prints the one kernel version of ROOT, or fails naming what it found. bootc supports exactly
# one kernel per image, and its directory must hold vmlinuz.
single_kernel() {
	local root=$1 kvers n
	kvers=$(kernel_dirs "$root")
	n=$(printf '%s' "$kvers" | grep -c . || true) # grep -c exits 1 when it counts 0 lines; 0 is an answer here
	[ "$n" -eq 1 ] || die "expected exactly one kernel directory under /usr/lib/modules, found $n: $(printf '%s ' $kvers)"
	[ -f "$root/usr/lib/modules/$kvers/vmlinuz" ] || die "/usr/lib/modules/$kvers/vmlinuz is missing"
	printf '%s\n' "$kvers"
}

# Writes the initramfs of KVER to the path bootc/ostree read (/usr/lib/modules/<kver>/initramfs.img):
# generic (the build container is not the machine that boots), with the ostree module when the
# image ships ostree (dracut never adds it on its own; without it ostree-prepare-root is missing
# and a deployment cannot switch root). Fails when dracut fails: an image without a correct
# initramfs does not boot, so there is nothing to fall back to.
generate_initramfs() {
	local root=$1 kver=$2 out listing add=()
	out=/usr/lib/modules/$kver/initramfs.img
	if [ -x "$root/usr/bin/ostree" ]; then
		[ -d "$root/usr/lib/dracut/modules.d/98ostree" ] ||
			die "ostree is installed but the dracut ostree module is missing (install ostree-boot)"
		add=(--add ostree)
	fi
	log "dracut: generic initramfs for $kver → $out ${add[*]}"
	in_root "$root" dracut --force --no-hostonly --no-hostonly-cmdline --reproducible \
		"${add[@]}" --kver "$kver" "$out"
	[ -s "$root$out" ] || die "dracut produced no $out"
	if [ ${#add[@]} -gt 0 ]; then
		# (the listing is captured first: `lsinitrd | grep -q` dies of SIGPIPE under pipefail)
		listing=$(in_root "$root" lsinitrd "$out")
		grep -q 'ostree-prepare-root' <<<"$listing" ||
			die "$out lacks ostree-prepare-root although the ostree module was requested"
	fi
	chmod 0644 "$root$out"
	log "initramfs $(du -h "$root$out" | cut -f1)"
}

# The directories and links under /var that tmpfiles.d declares in ROOT (one path per line).
tmpfiles_var_paths() {
	local root=$1 f files=()
	for f in "$root"/usr/lib/tmpfiles.d/*.conf "$root"/etc/tmpfiles.d/*.conf; do
		if [ -f "$f" ]; then files+=("$f"); fi
	done
	[ ${#files[@]} -gt 0 ] || return 0
	awk '$1 !~ /^#/ && $2 ~ /^\/var(\/|$)/ { print $2 }' "${files[@]}" | sort -u
}

# dpkg's database is package state that belongs to the image, not to the machine: bootc
# images keep it under /usr (like rpm's /usr/lib/sysimage/rpm) and only a tmpfiles.d link
# lives in /var. dpkg and apt keep working through the link (in derived builds too).
relocate_dpkg_db() {
	local root=$1
	if [ -L "$root/var/lib/dpkg" ]; then return 0; fi
	[ -d "$root/var/lib/dpkg" ] || return 0
	[ ! -e "$root/usr/lib/sysimage/dpkg" ] || die "both /var/lib/dpkg and /usr/lib/sysimage/dpkg exist"
	log "relocating the dpkg database to /usr/lib/sysimage/dpkg"
	mkdir -p "$root/usr/lib/sysimage"
	mv "$root/var/lib/dpkg" "$root/usr/lib/sysimage/dpkg"
	ln -s ../../usr/lib/sysimage/dpkg "$root/var/lib/dpkg"
	mkdir -p "$root/usr/lib/tmpfiles.d"
	printf '%s\n' '# The dpkg database lives in the image (/usr); /var only links to it.' \
		'L /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg' >"$root/usr/lib/tmpfiles.d/dpkg-sysimage.conf"
}

# The /var policy of a bootc image: /var is machine state, seeded only at first install, so the
# image ships nothing there but empty directories and links that tmpfiles.d declares (it
# recreates them on every boot). Removes package caches, apt lists, logs, Debian's helper state
# and everything else that is not a directory or a declared link; fails if anything remains.
tidy_var() {
	local root=$1 p declared leftovers
	relocate_dpkg_db "$root"
	rm -f "$root"/usr/lib/sysimage/dpkg/*-old
	# Caches and logs: contents go, the directories stay.
	find "$root/var/cache" "$root/var/log" -mindepth 1 ! -type d -delete
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
	rm -rf "$root"/var/lib/systemd/deb-systemd-helper-enabled "$root"/var/lib/systemd/deb-systemd-user-helper-enabled
	declared=$(tmpfiles_var_paths "$root")
	# Every other non-directory is per-machine state a package left behind (ucf hashes, pam
	# markers, the journal catalog, debconf answers, dpkg backups): first boot regenerates it.
	while IFS= read -r -d '' p; do
		p=${p#"$root"}
		p=/${p#/}
		if [ -L "$root$p" ] && printf '%s\n' "$declared" | grep -qxF "$p"; then continue; fi
		rm -f "$root$p"
	done < <(find "$root/var" -mindepth 1 ! -type d -print0)
	leftovers=$(find "$root/var" -mindepth 1 ! -type d ! -type l)
	[ -z "$leftovers" ] || die "files left under /var: $leftovers"
	declare_var_dirs "$root"
}

# Every directory the image still ships under /var gets a tmpfiles.d line (mode and numeric
# owner as built), so systemd-tmpfiles recreates it on each boot and nothing in /var depends on
# the image's copy, which bootc applies only at first provisioning (bootc lint: var-tmpfiles).
declare_var_dirs() {
	local root=$1 conf=$1/usr/lib/tmpfiles.d/keel-var.conf declared p m u g
	rm -f "$conf"
	declared=$(tmpfiles_var_paths "$root")
	mkdir -p "$root/usr/lib/tmpfiles.d"
	{
		echo "# Generated by build_files/lib/common.sh (declare_var_dirs): the directories this image"
		echo "# ships under /var, recreated by systemd-tmpfiles on every boot."
		while read -r p m u g; do
			if printf '%s\n' "$declared" | grep -qxF "/var/$p"; then continue; fi
			printf 'd /var/%s %s %s %s -\n' "$p" "$m" "$u" "$g"
		done < <(find "$root/var" -mindepth 1 -type d -printf '%P %m %U %G\n' | LC_ALL=C sort)
	} >"$conf"
}
