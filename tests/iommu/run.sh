#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# run.sh — boot the IOMMU test VM (tests/iommu/images.sh) in QEMU/TCG with an
# emulated Intel IOMMU and two NICs on one hub, and report the verdict
# of its /payload/test.sh (shared/notes/iommu-under-qemu.md has the why of
# every option below).
#
# Usage:
#   tests/iommu/run.sh [--images DIR] [--timeout SECS] [--log FILE]
#                      [--results FILE] [--mem MB] [--append "..."] [--quiet]
#
# The serial console goes to FILE (default IMAGES/console.log) and, unless
# --quiet, to stdout.  Lines "ZCD-RESULT ..." are copied to the results file
# (default IMAGES/results.txt).  Exit status: 0 only when the VM printed
# "ZCD-IOMMU-TEST: PASS"; 1 otherwise (then the last 80 console lines are
# printed); 2 on a usage or setup error.
#
# Options:
#   --images DIR     where vmlinuz and initrd.cpio.gz are (default build/iommu/images)
#   --timeout SECS   QEMU is killed after this (default 600)
#   --log FILE       console log
#   --results FILE   ZCD-RESULT lines
#   --mem MB         VM memory (default 2048)
#   --append STR     more kernel parameters (zcd.KEY=VALUE reaches test.sh as ZCD_KEY)
#   --quiet          do not stream the console
#   -h, --help       this text
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IMAGES=$REPO_ROOT/build/iommu/images
TIMEOUT=600
LOG=
RESULTS=
MEM=2048
APPEND=
QUIET=0

usage() { sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "run.sh: error: $*" >&2; exit 2; }

while (($#)); do
	case $1 in
	--images) IMAGES=${2:?}; shift ;;
	--timeout) TIMEOUT=${2:?}; shift ;;
	--log) LOG=${2:?}; shift ;;
	--results) RESULTS=${2:?}; shift ;;
	--mem) MEM=${2:?}; shift ;;
	--append) APPEND=${2?}; shift ;;
	--quiet) QUIET=1 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
	shift
done
LOG=${LOG:-$IMAGES/console.log}
RESULTS=${RESULTS:-$IMAGES/results.txt}
for f in vmlinuz initrd.cpio.gz; do
	[[ -f $IMAGES/$f ]] || die "$IMAGES/$f missing (run tests/iommu/images.sh)"
done
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: apt-get install qemu-system-x86"

# q35 + intel-iommu (interrupt remapping needs the split irqchip; caching
# mode lets the emulated IOMMU see every mapping change; 48-bit addresses,
# as real IOMMUs have, because zcdemux's IOVAs are its virtual addresses);
# the two NICs in fixed slots so that the VM knows which is which: an
# e1000e (82574L) for DPDK's net_e1000_em, an e1000 (82540EM) for the
# kernel to send from.  Not an e1000 for DPDK: QEMU's 82540EM model stops
# receiving for good once its ring has been full (its trace shows
# RDH == RDT while the PMD waits for a descriptor that is never written),
# with a 32-descriptor ring within a few hundred frames.  EPYC without MWAIT.
args=(-accel tcg -machine q35,kernel-irqchip=split -cpu EPYC,-monitor -m "$MEM" -smp 2
	-nodefaults -display none -monitor none -no-reboot
	-device intel-iommu,intremap=on,caching-mode=on,aw-bits=48
	-netdev hubport,id=p1,hubid=0 -device e1000e,netdev=p1,bus=pcie.0,addr=0x4
	-netdev hubport,id=p2,hubid=0 -device e1000,netdev=p2,bus=pcie.0,addr=0x5
	-kernel "$IMAGES/vmlinuz" -initrd "$IMAGES/initrd.cpio.gz"
	-append "console=ttyS0 intel_iommu=on iommu=strict quiet loglevel=4 $APPEND"
	-serial "file:$LOG")

start=$(date +%s)
: >"$LOG"
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 "${args[@]}" 2>"$LOG.qemu-stderr" &
qemu=$!
if ((!QUIET)); then
	tail -n +1 -f "$LOG" --pid=$qemu &
fi
status=0
wait $qemu || status=$?
sleep 0.2
grep -a 'ZCD-RESULT' "$LOG" | sed 's/^.*ZCD-RESULT/ZCD-RESULT/' >"$RESULTS" || true
elapsed=$(($(date +%s) - start))
if grep -aq '^ZCD-IOMMU-TEST: PASS' "$LOG"; then
	echo "run.sh: PASS in ${elapsed}s ($(wc -l <"$RESULTS") result lines in $RESULTS)"
	exit 0
fi
verdict=$(grep -a '^ZCD-IOMMU-TEST: FAIL' "$LOG" | head -n 1 || true)
((status == 124)) && verdict="timed out after ${TIMEOUT}s"
echo "===== last console lines ($LOG) ====="
tail -n 80 "$LOG"
[[ -s $LOG.qemu-stderr ]] && { echo "===== qemu stderr ====="; tail -n 20 "$LOG.qemu-stderr"; }
echo "run.sh: FAIL: ${verdict:-QEMU exited ($status) without a verdict} (${elapsed}s)"
exit 1
