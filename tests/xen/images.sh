#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# images.sh — build the boot images for running a test on a real Xen 4.17 host
# inside QEMU/TCG (see shared/notes/xen-under-qemu.md for why each piece is
# needed).
#
# Usage:
#   tests/xen/images.sh [--out DIR] [--cache DIR]
#                       [--dom0-payload DIR]... [--domU-payload DIR]...
#                       [--dpdk] [--dpdk-pmds "bus_vdev mempool_ring ..."]
#                       [--dom0-modules "mod ..."] [--domU-modules "mod ..."]
#                       [--kernel-version VER] [--refresh]
#
# Writes to OUT (default build/xen/images):
#   xen             the hypervisor, uncompressed (QEMU -kernel wants the ELF)
#   vmlinuz         the Debian kernel, used for dom0 and for every PV guest
#   kernel-version  e.g. 6.1.0-56-amd64; build modules with
#                   make -C /usr/src/linux-headers-$(cat OUT/kernel-version)
#   dom0.cpio.gz    busybox + Xen toolstack + modules + dom0 payload; it also
#                   holds /boot/vmlinuz and /boot/domU.cpio.gz for `xl create`
#   domU.cpio.gz    busybox + xenstore tools + libxen + modules + domU payload
#   staging/        the unpacked trees of both images (for inspection)
#
# Downloads (apt-get download, Debian's archive only) are cached in CACHE
# (default build/xen/cache) and never repeated unless --refresh is given.
#
# Payloads: every --dom0-payload / --domU-payload tree is copied to /payload in
# that image.  Shared libraries needed by every ELF file in it are added from
# this host (the payload is built here), and in-tree kernel modules that a
# payload *.ko depends on are added (and loaded at boot).  The dom0 /init runs
# /payload/test.sh once Xen services are up; the domU /init runs
# /payload/guest.sh.  See tests/xen/README.md for the whole interface.
#
# Options:
#   --out DIR            output directory (default build/xen/images)
#   --cache DIR          download/extract cache (default build/xen/cache)
#   --dom0-payload DIR   tree copied to dom0:/payload (repeatable, merged)
#   --domU-payload DIR   tree copied to domU:/payload (repeatable, merged)
#   --dpdk               add DPDK's runtime to dom0: the PMD plugin directory
#                        with the drivers from --dpdk-pmds (both *.so and
#                        *.so.N names) and their libraries
#   --dpdk-pmds LIST     plugin short names (default: bus_vdev mempool_ring
#                        net_pcap net_null net_ring net_af_packet net_tap)
#   --dom0-modules LIST  extra in-tree modules to include in dom0 (not loaded)
#   --domU-modules LIST  extra in-tree modules to include in domU (not loaded)
#   --kernel-version VER use linux-image-VER instead of what linux-image-amd64
#                        depends on
#   --refresh            download the packages again
#   -h, --help           this text
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

XEN_VER=4.17
MULTIARCH=x86_64-linux-gnu
# Packages whose files go into the images.  The libxen* runtime is taken from
# the archive (same version as the tools) so that a fresh machine without
# libxen-dev can still build the images; glibc and friends come from the host.
XEN_DEBS=("xen-hypervisor-$XEN_VER-amd64" "xen-utils-$XEN_VER" xenstore-utils
	"libxenmisc$XEN_VER" libxencall1 libxenevtchn1 libxenforeignmemory1
	libxengnttab1 libxenstore4 libxentoollog1 libxentoolcore1
	libxendevicemodel1 libxenhypfs1 libyajl2)
# Toolstack binaries dom0 needs (from /usr/lib/xen-4.17/bin).
DOM0_XEN_TOOLS=(xl xenstored xenconsoled xen-init-dom0 xenconsole lsevtchn
	xenstore-control xen-diag)
# Kernel modules loaded at boot, dependencies are added automatically.
DOM0_BOOT_MODULES=(xen-evtchn xen-gntalloc xen-gntdev xen-privcmd xenfs tun veth)
DOMU_BOOT_MODULES=(xen-evtchn xen-gntalloc xen-gntdev xen-privcmd xenfs tun)
# Included but left for `modprobe` by the test.
DOM0_EXTRA_MODULES=(pktgen)
DOMU_EXTRA_MODULES=()
# libxen runtime for guest programs (libxengnttab/libxenevtchn/libxenstore
# users) and what they need.
DOMU_LIBS=(libxengnttab.so.1 libxenevtchn.so.1 libxenstore.so.4
	libxentoolcore.so.1 libxentoollog.so.1 libxencall.so.1
	libxenforeignmemory.so.1 libxendevicemodel.so.1 "libxenctrl.so.$XEN_VER")
DPDK_PMDS_DEFAULT="bus_vdev mempool_ring net_pcap net_null net_ring net_af_packet net_tap"

OUT=$REPO_ROOT/build/xen/images
CACHE=$REPO_ROOT/build/xen/cache
DOM0_PAYLOADS=()
DOMU_PAYLOADS=()
WITH_DPDK=0
DPDK_PMDS=$DPDK_PMDS_DEFAULT
KVER=
REFRESH=0

die() { echo "images.sh: error: $*" >&2; exit 1; }
warn() { echo "images.sh: warning: $*" >&2; }
log() { echo "images.sh: $*" >&2; }
usage() { sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

abspath() { # the absolute form of a path given relative to the caller's cwd
	case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac
}

parse_args() {
	while (($#)); do
		case $1 in
		--out) OUT=$(abspath "${2:?--out needs a directory}"); shift ;;
		--cache) CACHE=$(abspath "${2:?--cache needs a directory}"); shift ;;
		--dom0-payload) DOM0_PAYLOADS+=("$(abspath "${2:?--dom0-payload needs a directory}")"); shift ;;
		--domU-payload|--domu-payload) DOMU_PAYLOADS+=("$(abspath "${2:?--domU-payload needs a directory}")"); shift ;;
		--dpdk) WITH_DPDK=1 ;;
		--dpdk-pmds) DPDK_PMDS=${2?}; WITH_DPDK=1; shift ;;
		--dom0-modules) read -ra m <<<"${2?}"; DOM0_EXTRA_MODULES+=("${m[@]}"); shift ;;
		--domU-modules|--domu-modules) read -ra m <<<"${2?}"; DOMU_EXTRA_MODULES+=("${m[@]}"); shift ;;
		--kernel-version) KVER=${2:?}; shift ;;
		--refresh) REFRESH=1 ;;
		-h|--help) usage; exit 0 ;;
		*) usage >&2; die "unknown argument: $1" ;;
		esac
		shift
	done
	local d
	for d in "${DOM0_PAYLOADS[@]}" "${DOMU_PAYLOADS[@]}"; do
		[[ -d $d ]] || die "payload directory does not exist: $d"
	done
}

check_tools() {
	local t missing=()
	for t in apt-get apt-cache dpkg-deb readelf objcopy cpio gzip ldconfig find sort flock; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	((${#missing[@]} == 0)) || die "missing host tools: ${missing[*]} (apt-get install binutils cpio)"
	[[ -x /bin/busybox ]] || die "/bin/busybox missing: apt-get install busybox-static"
	# A dynamic busybox would need its libraries; only busybox-static is used.
	if readelf -l /bin/busybox | grep -q 'Requesting program interpreter'; then
		die "/bin/busybox is dynamically linked: apt-get install busybox-static"
	fi
}

# --- packages ---------------------------------------------------------------

# The kernel ABI name that linux-image-amd64 currently depends on, e.g.
# 6.1.0-56-amd64.  Module builds must use the headers of exactly this one.
resolve_kernel_version() {
	if [[ -z $KVER ]]; then
		local dep
		dep=$(apt-cache depends linux-image-amd64 2>/dev/null |
			sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n1) || true
		if [[ -z $dep && -s $CACHE/kernel-version ]]; then
			dep=$(<"$CACHE/kernel-version")
			warn "apt-cache cannot resolve linux-image-amd64 (no 'apt-get update'?); using cached $dep"
		fi
		[[ -n $dep ]] || die "cannot resolve linux-image-amd64's kernel: run 'apt-get update' first"
		KVER=$dep
	fi
	if [[ ! -d /usr/src/linux-headers-$KVER ]]; then
		warn "/usr/src/linux-headers-$KVER is missing: kernel modules for the images" \
			"cannot be built until 'apt-get install linux-headers-$KVER'"
	fi
}

# apt-get download each package unless a .deb of it is already cached.
# Downloads go through a temporary directory so that an interrupted download
# never leaves a half .deb behind that a later run would trust.
fetch_debs() {
	local debs=$CACHE/debs pkg want=()
	mkdir -p "$debs"
	for pkg in "$@"; do
		if ((REFRESH)) || ! compgen -G "$debs/${pkg}_*.deb" >/dev/null; then
			want+=("$pkg")
		fi
	done
	((${#want[@]})) || return 0
	for pkg in "${want[@]}"; do
		apt-cache show "$pkg" >/dev/null 2>&1 ||
			die "apt does not know package '$pkg' (run 'apt-get update'; is it in Debian 12?)"
	done
	log "downloading ${want[*]}"
	local tmp
	tmp=$(mktemp -d "$CACHE/download.XXXXXX")
	# APT::Sandbox::User=root: the _apt user cannot write into our cache.
	if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "${want[@]}" >&2); then
		rm -rf "$tmp"
		die "apt-get download failed for: ${want[*]} (is Debian's archive reachable?)"
	fi
	for pkg in "${want[@]}"; do
		compgen -G "$tmp/${pkg}_*.deb" >/dev/null || { rm -rf "$tmp"; die "apt-get download produced no .deb for $pkg"; }
		rm -f "$debs/${pkg}_"*.deb
	done
	mv "$tmp"/*.deb "$debs/"
	rmdir "$tmp"
}

# Extract all cached .debs into one tree ($ROOT).  A stamp lists the .debs it
# was made from; any change re-extracts from scratch so no stale file stays.
extract_debs() {
	local stamp=$ROOT/.extracted-from want deb pkg
	want=$(for pkg in "$@"; do basename "$(compgen -G "$CACHE/debs/${pkg}_*.deb" | head -n1)"; done)
	if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
		return 0
	fi
	log "extracting packages into $ROOT"
	rm -rf "$ROOT"
	mkdir -p "$ROOT"
	for deb in $want; do
		dpkg-deb -x "$CACHE/debs/$deb" "$ROOT" || die "dpkg-deb -x $deb failed (corrupt download? try --refresh)"
	done
	echo "$want" >"$stamp"
}

# --- copying files with their dependencies ----------------------------------

# mirror SRCROOT REL IMG: copy SRCROOT/REL to IMG/REL keeping symlinks as
# symlinks (and following them), so that library and plugin name chains such
# as librte_net_pcap.so -> .so.23 -> .so.23.0 look in the image as on the host.
mirror() {
	local src=$1 rel=$2 img=$3 target dir
	rel=/${rel#/}
	[[ -e $img$rel || -L $img$rel ]] && return 0
	dir=$(dirname "$rel")
	# Resolve directory symlinks on the source side (e.g. the host's /lib ->
	# usr/lib) so that we copy real paths; the image has the same usrmerge
	# links, so the file still appears under both names.
	if [[ $src == / ]]; then
		dir=$(readlink -f "$dir")
		rel=${dir%/}/$(basename "$rel")
		[[ -e $img$rel || -L $img$rel ]] && return 0
	fi
	mkdir -p "$img$dir"
	if [[ -L $src$rel ]]; then
		target=$(readlink "$src$rel")
		ln -s "$target" "$img$rel"
		case $target in
		/*) mirror "$src" "$target" "$img" ;;
		*) mirror "$src" "$dir/$target" "$img" ;;
		esac
	elif [[ -f $src$rel ]]; then
		cp -p "$src$rel" "$img$rel"
	else
		die "cannot copy $src$rel: not a file"
	fi
}

is_elf() { [[ -f $1 && $(head -c 4 "$1" 2>/dev/null) == $'\x7fELF' ]]; }

# Directories searched for a NEEDED library after any RUNPATH: the extracted
# packages first (the Xen libraries must match the Xen tools), then the host.
lib_search_dirs() {
	local d
	for d in /usr/lib/$MULTIARCH /lib/$MULTIARCH /usr/lib/xen-$XEN_VER/lib/$MULTIARCH; do
		echo "$ROOT$d"
	done
	for d in /lib/$MULTIARCH /usr/lib/$MULTIARCH /usr/lib/xen-$XEN_VER/lib/$MULTIARCH /lib64 /usr/lib64; do
		echo "$d"
	done
}

# Where to look for a library: RUNPATH dirs inside the image ($ORIGIN of a
# payload program), the default dirs, then other RUNPATH dirs.  Default dirs
# come before a host RUNPATH so that the library also gets its default-path
# name in the image: dpdk-testpmd finds the PMDs through its RUNPATH, but a
# PMD that EAL dlopen()s needs its sibling PMDs under /usr/lib/<multiarch>
# (as on the host, where those names are symlinks into the plugin dir).
lib_search_order() {
	local img=$1 d
	shift
	for d in "$@"; do [[ $d == "$img"/* ]] && echo "${d%/}"; done
	lib_search_dirs
	for d in "$@"; do [[ $d != "$img"/* ]] && echo "${d%/}"; done
	return 0
}

# add_lib SONAME IMG [RUNPATH_DIR...]: copy a library and, recursively, its
# dependencies into IMG.  RUNPATH dirs are absolute paths on this host (a
# payload's $ORIGIN already points into IMG: such a library is there).
declare -A LIB_DONE=()
add_lib() {
	local soname=$1 img=$2 d path=
	shift 2
	[[ -n ${LIB_DONE[$img:$soname]:-} ]] && return 0
	while read -r d; do
		if [[ -e $d/$soname ]]; then
			path=$d/$soname
			break
		fi
	done < <(lib_search_order "$img" "$@")
	[[ -n $path ]] || die "shared library $soname not found on this host or in the Xen packages" \
		"(install the Debian package that ships it)"
	LIB_DONE[$img:$soname]=1
	case $path in
	"$img"/*) add_elf_deps "$img" "${path#"$img"}" "$img" ;;
	"$ROOT"/*) mirror "$ROOT" "${path#"$ROOT"}" "$img"; add_elf_deps "$ROOT" "${path#"$ROOT"}" "$img" ;;
	*) mirror / "$path" "$img"; add_elf_deps / "$path" "$img" ;;
	esac
}

# add_elf_deps SRCROOT REL IMG: the interpreter and NEEDED libraries of an ELF
# file (read from its dynamic section, no execution), recursively.
add_elf_deps() {
	local src=$1 rel=$2 img=$3 file interp needed runpath=() p origin
	file=$(readlink -f "$src/$rel")
	interp=$(readelf -lW "$file" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
	[[ -n $interp ]] && mirror / "$interp" "$img"
	origin=$(dirname "$rel")
	while read -r p; do
		for p in ${p//:/ }; do
			runpath+=("${p//\$ORIGIN/$src$origin}")
		done
	done < <(readelf -dW "$file" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p')
	for needed in $(readelf -dW "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		add_lib "$needed" "$img" ${runpath[@]+"${runpath[@]}"}
	done
}

# --- kernel modules -----------------------------------------------------------

MODDIR_REL=

# The .ko file of module NAME in the kernel package ('-' and '_' are the same).
find_kmod() {
	local name=${1//-/_} f
	while read -r f; do
		local b=${f##*/}
		b=${b%.ko}
		[[ ${b//-/_} == "$name" ]] && { echo "${f#"$ROOT"}"; return 0; }
	done < <(find "$ROOT$MODDIR_REL/kernel" -name '*.ko')
	return 1
}

kmod_depends() { # the depends= field of a .ko's .modinfo section
	objcopy -O binary --only-section=.modinfo "$1" /dev/stdout 2>/dev/null |
		tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '
}

# add_kmod NAME IMG LOADLIST: copy a module and its dependencies; when
# LOADLIST is given, append them (dependencies first) to that boot load list.
add_kmod() {
	local name=$1 img=$2 list=${3:-} rel dep
	rel=$(find_kmod "$name") || die "kernel module $name is not in linux-image-$KVER"
	for dep in $(kmod_depends "$ROOT$rel"); do
		add_kmod "$dep" "$img" "$list"
	done
	mirror "$ROOT" "$rel" "$img"
	if [[ -n $list ]] && ! grep -qxF "$rel" "$img$list" 2>/dev/null; then
		echo "$rel" >>"$img$list"
	fi
}

# --- image assembly -----------------------------------------------------------

# A usrmerged skeleton (as on Debian 12, so host paths such as /lib/x86_64-
# linux-gnu/libc.so.6 resolve the same way) with static busybox and its applets.
make_base() {
	local img=$1 applet
	rm -rf "$img"
	mkdir -p "$img"/{usr/bin,usr/sbin,usr/lib/$MULTIARCH,usr/lib64,proc,sys,dev,run,var,tmp,etc,root,payload}
	ln -s usr/bin "$img/bin"
	ln -s usr/sbin "$img/sbin"
	ln -s usr/lib "$img/lib"
	ln -s usr/lib64 "$img/lib64"
	cp /bin/busybox "$img/usr/bin/busybox"
	for applet in $(/bin/busybox --list-full); do
		applet=/${applet#/}
		# usrmerge: /sbin/x and /bin/x live in /usr/sbin and /usr/bin.
		case $applet in /bin/*|/sbin/*) applet=/usr$applet ;; esac
		[[ -e $img$applet || -L $img$applet ]] || ln -s /usr/bin/busybox "$img$applet"
	done
	# The kernel opens /dev/console before /init runs; without the node init
	# would start with no stdout (devtmpfs is mounted only later by /init).
	mknod -m 600 "$img/dev/console" c 5 1 || die "mknod /dev/console failed (run as root)"
	mknod -m 666 "$img/dev/null" c 1 3
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$img/etc/passwd"
	printf 'root:x:0:\ntty:x:5:\n' >"$img/etc/group"
	printf '/usr/lib/%s\n/usr/lib/xen-%s/lib/%s\n' "$MULTIARCH" "$XEN_VER" "$MULTIARCH" >"$img/etc/ld.so.conf"
	mkdir -p "$img/etc/zcd" "$img$MODDIR_REL"
	echo "$KVER" >"$img/etc/zcd/kernel-version"
	: >"$img/etc/zcd/modules-boot"
	# glibc dlopen()s libgcc_s for pthread_cancel and thread exit (xl aborts
	# without it); no NEEDED entry names it.
	add_lib libgcc_s.so.1 "$img"
}

# copy_payload DIR IMG: the tree to /payload plus what its programs need.
copy_payload() {
	local dir=$1 img=$2 f rel dep
	log "payload $dir -> $(basename "$img"):/payload"
	cp -a "$dir/." "$img/payload/"
	while IFS= read -r -d '' f; do
		rel=${f#"$img"}
		if [[ $f == *.ko ]]; then
			# A payload module may use symbols of in-tree modules: ship and
			# load those at boot so that a plain `insmod /payload/x.ko` works.
			for dep in $(kmod_depends "$f"); do
				add_kmod "$dep" "$img" /etc/zcd/modules-boot
			done
		elif is_elf "$f"; then
			add_elf_deps "$img" "$rel" "$img"
		fi
	done < <(find "$img/payload" -type f -print0)
}

# DPDK's EAL dlopen()s every *.so in its plugin directory (only the *.so
# names; the *.so.23 names are what NEEDED entries and the *.so links point
# to), so the directory is mirrored with both names for the chosen drivers.
add_dpdk() {
	local img=$1 pmddir pmd rel
	pmddir=$(compgen -G "/usr/lib/$MULTIARCH/dpdk/pmds-*" | head -n1) ||
		die "no DPDK plugin directory /usr/lib/$MULTIARCH/dpdk/pmds-*: apt-get install dpdk"
	for pmd in $DPDK_PMDS; do
		rel=$pmddir/librte_$pmd.so
		[[ -e $rel ]] || die "DPDK plugin $rel missing (apt-get install librte-${pmd//_/-}23?)"
		mirror / "$rel" "$img"
		add_elf_deps / "$rel" "$img"
		log "dpdk plugin $(basename "$rel")"
	done
}

build_domU() {
	local img=$STAGING/domU m p
	log "building domU image"
	make_base "$img"
	for m in "${DOMU_BOOT_MODULES[@]}"; do add_kmod "$m" "$img" /etc/zcd/modules-boot; done
	for m in ${DOMU_EXTRA_MODULES[@]+"${DOMU_EXTRA_MODULES[@]}"}; do add_kmod "$m" "$img"; done
	add_xenstore_tools "$img"
	for m in "${DOMU_LIBS[@]}"; do add_lib "$m" "$img"; done
	install -m 755 "$SCRIPT_DIR/image/domU-init" "$img/init"
	for p in ${DOMU_PAYLOADS[@]+"${DOMU_PAYLOADS[@]}"}; do copy_payload "$p" "$img"; done
	finish_image "$img" "$OUT/domU.cpio.gz"
}

add_xenstore_tools() {
	local img=$1 f
	# xenstore-read/-write/-ls/... are one multi-call binary (hard links).
	for f in "$ROOT"/usr/bin/xenstore*; do
		[[ -L $f ]] && continue # xenstore-control: a Debian wrapper script link
		mirror "$ROOT" "${f#"$ROOT"}" "$img"
	done
	add_elf_deps "$ROOT" /usr/bin/xenstore "$img"
}

build_dom0() {
	local img=$STAGING/dom0 m p t
	log "building dom0 image"
	make_base "$img"
	for m in "${DOM0_BOOT_MODULES[@]}"; do add_kmod "$m" "$img" /etc/zcd/modules-boot; done
	for m in ${DOM0_EXTRA_MODULES[@]+"${DOM0_EXTRA_MODULES[@]}"}; do add_kmod "$m" "$img"; done
	for t in "${DOM0_XEN_TOOLS[@]}"; do
		[[ -f $ROOT/usr/lib/xen-$XEN_VER/bin/$t ]] || die "xen-utils-$XEN_VER has no $t"
		mirror "$ROOT" "/usr/lib/xen-$XEN_VER/bin/$t" "$img"
		add_elf_deps "$ROOT" "/usr/lib/xen-$XEN_VER/bin/$t" "$img"
	done
	add_xenstore_tools "$img"
	# Guests boot the same kernel with their own initramfs, both from dom0's /boot.
	mkdir -p "$img/boot"
	cp "$OUT/vmlinuz" "$img/boot/vmlinuz"
	cp "$OUT/domU.cpio.gz" "$img/boot/domU.cpio.gz"
	# dom0_mem is fixed on Xen's command line: xl must not balloon dom0.
	mkdir -p "$img/etc/xen"
	printf 'autoballoon="off"\n' >"$img/etc/xen/xl.conf"
	install -m 755 "$SCRIPT_DIR/image/dom0-init" "$img/init"
	install -m 644 "$SCRIPT_DIR/image/zcd-lib.sh" "$img/usr/lib/zcd-lib.sh"
	install -m 755 "$SCRIPT_DIR/image/zcd-guest-logs" "$img/usr/bin/zcd-guest-logs"
	((WITH_DPDK)) && add_dpdk "$img"
	for p in ${DOM0_PAYLOADS[@]+"${DOM0_PAYLOADS[@]}"}; do copy_payload "$p" "$img"; done
	finish_image "$img" "$OUT/dom0.cpio.gz"
}

# ld.so.cache (faster start-up, finds /usr/lib/xen-4.17/lib) and the archive.
finish_image() {
	local img=$1 out=$2
	ldconfig -r "$img" 2>/dev/null || warn "ldconfig -r $img failed; relying on default library paths"
	# The archive's "." entry sets the root's mode: without it / stays
	# world-writable (tmpfs default) and DPDK's EAL refuses to load plugins.
	chmod 755 "$img"
	(cd "$img" && find . -print0 | LC_ALL=C sort -z |
		cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) |
		gzip -n -6 >"$out.tmp" || die "creating $out failed"
	mv "$out.tmp" "$out"
	log "wrote $out ($(du -h "$out" | cut -f1), $(find "$img" -type f | wc -l) files)"
}

main() {
	parse_args "$@"
	check_tools
	resolve_kernel_version
	ROOT=$CACHE/root
	STAGING=$OUT/staging
	MODDIR_REL=/lib/modules/$KVER
	local debs=("${XEN_DEBS[@]}" "linux-image-$KVER")
	mkdir -p "$CACHE"
	# Several builds may share one cache: one at a time downloads/extracts.
	exec {lock_fd}>"$CACHE/.lock"
	flock "$lock_fd" || die "cannot lock $CACHE/.lock"
	fetch_debs "${debs[@]}"
	extract_debs "${debs[@]}"
	echo "$KVER" >"$CACHE/kernel-version"
	# The deb ships no modules.dep: dependencies are read from each .ko.
	[[ -d $ROOT$MODDIR_REL/kernel ]] || die "linux-image-$KVER has no $MODDIR_REL"
	mkdir -p "$OUT" "$STAGING"
	gzip -dc "$ROOT/boot/xen-$XEN_VER-amd64.gz" >"$OUT/xen.tmp" || die "cannot gunzip the hypervisor"
	mv "$OUT/xen.tmp" "$OUT/xen"
	cp "$ROOT/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
	echo "$KVER" >"$OUT/kernel-version"
	build_domU
	build_dom0
	log "kernel $KVER; modules build with: make -C /usr/src/linux-headers-$KVER M=\$PWD modules"
	echo "$KVER"
}

# Sourced (tests/iommu/images.sh reuses the functions above): define only.
[[ ${BASH_SOURCE[0]} != "$0" ]] || main "$@"
