#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# images.sh — build the boot images for a test on a Linux VM with an emulated
# Intel IOMMU and two NICs (shared/notes/iommu-under-qemu.md): the e1000e is
# bound to vfio-pci for a DPDK program, the e1000 stays with the kernel to
# send frames to it over QEMU's hub.
#
# Usage:
#   tests/iommu/images.sh [--out DIR] [--cache DIR] [--payload DIR]...
#                         [--dpdk-pmds "bus_pci ..."] [--kernel-version VER]
#
# Writes to OUT (default build/iommu/images):
#   vmlinuz         the Debian kernel (the one linux-image-amd64 depends on)
#   kernel-version  e.g. 6.1.0-56-amd64
#   initrd.cpio.gz  busybox + vfio/e1000 modules + DPDK's runtime and plugins
#                   + every payload tree, under /payload, with the shared
#                   libraries its programs need; /init runs /payload/test.sh
#
# The packaging functions are tests/xen/images.sh's (sourced); downloads are
# cached in CACHE (default build/xen/cache, shared with the Xen test).
#
# Options:
#   --out DIR            output directory
#   --cache DIR          download/extract cache
#   --payload DIR        tree copied to /payload (repeatable, merged)
#   --dpdk-pmds LIST     DPDK plugins (default: bus_pci bus_vdev mempool_ring net_e1000)
#   --kernel-version VER use linux-image-VER
#   -h, --help           this text
set -euo pipefail

IOMMU_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../xen/images.sh
. "$IOMMU_DIR/../xen/images.sh"
SCRIPT_DIR=$IOMMU_DIR

# The DMA path: vfio-pci and the IOMMU type1 driver for DPDK, e1000 for the
# kernel's sending NIC, pktgen for bench/pktgen/zcd-pktgen.sh.  Dependencies
# come from each module's modinfo.
VM_BOOT_MODULES=(irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci e1000 pktgen)
DPDK_PMDS="bus_pci bus_vdev mempool_ring net_e1000"
OUT=$REPO_ROOT/build/iommu/images
PAYLOADS=()

usage() { sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$IOMMU_DIR/images.sh"; }

parse_iommu_args() {
	while (($#)); do
		case $1 in
		--out) OUT=$(abspath "${2:?--out needs a directory}"); shift ;;
		--cache) CACHE=$(abspath "${2:?--cache needs a directory}"); shift ;;
		--payload) PAYLOADS+=("$(abspath "${2:?--payload needs a directory}")"); shift ;;
		--dpdk-pmds) DPDK_PMDS=${2?}; shift ;;
		--kernel-version) KVER=${2:?}; shift ;;
		-h|--help) usage; exit 0 ;;
		*) usage >&2; die "unknown argument: $1" ;;
		esac
		shift
	done
	local d
	for d in ${PAYLOADS[@]+"${PAYLOADS[@]}"}; do
		[[ -d $d ]] || die "payload directory does not exist: $d"
	done
}

build_vm() {
	local img=$STAGING/vm m p
	log "building the VM image"
	make_base "$img"
	for m in "${VM_BOOT_MODULES[@]}"; do add_kmod "$m" "$img" /etc/zcd/modules-boot; done
	add_dpdk "$img"
	install -m 755 "$IOMMU_DIR/image/init" "$img/init"
	for p in ${PAYLOADS[@]+"${PAYLOADS[@]}"}; do copy_payload "$p" "$img"; done
	finish_image "$img" "$OUT/initrd.cpio.gz"
}

iommu_main() {
	parse_iommu_args "$@"
	check_tools
	resolve_kernel_version
	# Only the kernel package: a tree of its own, so that the Xen test's
	# extraction (which has more packages) is not redone every time.
	ROOT=$CACHE/root-kernel
	STAGING=$OUT/staging
	MODDIR_REL=/lib/modules/$KVER
	mkdir -p "$CACHE"
	exec {lock_fd}>"$CACHE/.lock"
	flock "$lock_fd" || die "cannot lock $CACHE/.lock"
	fetch_debs "linux-image-$KVER"
	extract_debs "linux-image-$KVER"
	[[ -d $ROOT$MODDIR_REL/kernel ]] || die "linux-image-$KVER has no $MODDIR_REL"
	mkdir -p "$OUT" "$STAGING"
	cp "$ROOT/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
	echo "$KVER" >"$OUT/kernel-version"
	build_vm
	echo "$KVER"
}

iommu_main "$@"
