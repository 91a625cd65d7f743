#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# run.sh — boot Xen 4.17 + PV dom0 in QEMU/TCG with images from images.sh and
# report the verdict of the dom0 /payload/test.sh.
#
# Usage:
#   tests/xen/run.sh [--images DIR] [--timeout SECS] [--log FILE]
#                    [--results FILE] [--mem MB] [--smp N] [--dom0-mem SIZE]
#                    [--dom0-args "zcd.key=value ..."] [--xen-args "..."] [--cpu MODEL]
#                    [--quiet] [--interactive]
#
# The serial console (Xen, dom0 and, at the end, every guest's console log
# printed by dom0) is written to FILE (default IMAGES/console.log) and, unless
# --quiet, streamed to stdout.  Lines "ZCD-RESULT ..." are copied to the
# results file (default IMAGES/results.txt), without anything before the
# "ZCD-RESULT" word.
#
# Exit status: 0 only when dom0 printed "ZCD-XEN-TEST: PASS" (and no FAIL);
# 1 on FAIL, on a QEMU exit without a verdict or on the time-out (then the last
# 80 console lines are printed); 2 on a usage or setup error.
#
# Options:
#   --images DIR      where xen, vmlinuz, dom0.cpio.gz are (default build/xen/images)
#   --timeout SECS    overall limit, QEMU is killed after it (default 600)
#   --log FILE        console log (default IMAGES/console.log)
#   --results FILE    ZCD-RESULT lines (default IMAGES/results.txt)
#   --mem MB          machine memory (default 2048)
#   --smp N           virtual CPUs (default 2)
#   --dom0-mem SIZE   Xen dom0_mem (default 1024M)
#   --dom0-args STR   extra dom0 kernel parameters; zcd.KEY=VALUE words become
#                     ZCD_KEY=VALUE in test.sh's environment
#   --xen-args STR    extra Xen command-line options
#   --cpu MODEL       QEMU -cpu (default EPYC,-monitor,-smap,-smep)
#   --quiet           do not stream the console (still logged)
#   --interactive     serial console on this terminal and a dom0 shell at the
#                     end (no verdict checking; Ctrl-a x quits QEMU)
#   -h, --help        this text
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

IMAGES=$REPO_ROOT/build/xen/images
TIMEOUT=600
LOG=
RESULTS=
MEM=2048
SMP=2
DOM0_MEM=1024M
DOM0_ARGS=
XEN_ARGS=
CPU=EPYC,-monitor,-smap,-smep
QUIET=0
INTERACTIVE=0
# Time the dom0 test needs after the boot and for printing logs at the end;
# test.sh is stopped inside dom0 this much before the overall limit so that
# the guest logs still reach the console.
BOOT_MARGIN=90
# After "ZCD-XEN-TEST: END" QEMU should exit by itself (reboot + -no-reboot).
EXIT_GRACE=30

die() { echo "run.sh: error: $*" >&2; exit 2; }
log() { echo "run.sh: $*" >&2; }
usage() { sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }

parse_args() {
	while (($#)); do
		case $1 in
		--images) IMAGES=$(abspath "${2:?}"); shift ;;
		--timeout) TIMEOUT=${2:?}; shift ;;
		--log) LOG=$(abspath "${2:?}"); shift ;;
		--results) RESULTS=$(abspath "${2:?}"); shift ;;
		--mem) MEM=${2:?}; shift ;;
		--smp) SMP=${2:?}; shift ;;
		--dom0-mem) DOM0_MEM=${2:?}; shift ;;
		--dom0-args) DOM0_ARGS=${2?}; shift ;;
		--xen-args) XEN_ARGS=${2?}; shift ;;
		--cpu) CPU=${2:?}; shift ;;
		--quiet) QUIET=1 ;;
		--interactive) INTERACTIVE=1 ;;
		-h|--help) usage; exit 0 ;;
		*) usage >&2; die "unknown argument: $1" ;;
		esac
		shift
	done
	if ! [[ $TIMEOUT =~ ^[0-9]+$ ]] || ((TIMEOUT < 60)); then
		die "--timeout must be a number of seconds >= 60"
	fi
	LOG=${LOG:-$IMAGES/console.log}
	RESULTS=${RESULTS:-$IMAGES/results.txt}
}

check_inputs() {
	command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: apt-get install qemu-system-x86"
	local f
	for f in xen vmlinuz dom0.cpio.gz; do
		[[ -s $IMAGES/$f ]] || die "$IMAGES/$f missing: build it with tests/xen/images.sh --out $IMAGES"
	done
	# QEMU's multiboot -initrd list is comma-separated, module arguments
	# space-separated: such characters in a path would split it.
	[[ $IMAGES != *[,\ ]* ]] || die "image path must not contain commas or spaces: $IMAGES"
	mkdir -p "$(dirname "$LOG")" "$(dirname "$RESULTS")"
}

# The command line from the notes: TCG only (Xen dies under KVM here);
# -monitor avoids a GP fault in Xen's idle loop (MWAIT), -smap,-smep a dom0
# crash at its first bounce frame.  Xen reboots when dom0 reboots and
# -no-reboot turns that into QEMU exiting.
qemu_cmd() {
	local test_timeout=$((TIMEOUT - BOOT_MARGIN))
	((test_timeout >= 30)) || test_timeout=30
	# spec-ctrl=eager-fpu: with Xen's default lazy FPU switching (on AMD CPU
	# models) userspace FPU/SIMD state gets corrupted under TCG as soon as a
	# guest runs beside dom0: `xl create` then fails at random ("unable to XZ
	# decompress kernel") or segfaults.  Eager switching avoids the #NM path.
	local xen_cmdline="dom0_mem=$DOM0_MEM,max:$DOM0_MEM spec-ctrl=eager-fpu console=com1 com1=115200 loglvl=warning guest_loglvl=warning $XEN_ARGS"
	local dom0_cmdline="console=hvc0 quiet loglevel=4 zcd.timeout=$test_timeout $DOM0_ARGS"
	((INTERACTIVE)) && dom0_cmdline+=" zcd.shell=1"
	QEMU=(qemu-system-x86_64 -accel tcg -cpu "$CPU"
		-m "$MEM" -smp "$SMP" -no-reboot -nodefaults
		-kernel "$IMAGES/xen" -append "$xen_cmdline"
		-initrd "$IMAGES/vmlinuz $dom0_cmdline,$IMAGES/dom0.cpio.gz")
	if ((INTERACTIVE)); then
		QEMU+=(-nographic -serial mon:stdio)
	else
		QEMU+=(-display none -monitor none -serial "file:$LOG")
	fi
}

QEMU_PID=
TAIL_PID=
cleanup() {
	if [[ -n $QEMU_PID ]]; then kill "$QEMU_PID" 2>/dev/null || true; fi
	if [[ -n $TAIL_PID ]]; then kill "$TAIL_PID" 2>/dev/null || true; fi
	QEMU_PID=''
	TAIL_PID=''
}

verdict_line() { tr -d '\r' <"$LOG" | grep -aE '^ZCD-XEN-TEST: (PASS|FAIL)' | tail -n 1; }

main() {
	parse_args "$@"
	check_inputs
	qemu_cmd
	if ((INTERACTIVE)); then
		exec "${QEMU[@]}"
	fi
	: >"$LOG"
	local qemu_err=$LOG.qemu-stderr start now end_seen=0 status
	start=$(date +%s)
	trap cleanup EXIT
	trap 'cleanup; exit 130' INT TERM
	log "booting Xen in QEMU/TCG (timeout ${TIMEOUT}s, log $LOG)"
	"${QEMU[@]}" </dev/null >"$qemu_err" 2>&1 &
	QEMU_PID=$!
	if ((!QUIET)); then
		tail -n +1 -F "$LOG" 2>/dev/null &
		TAIL_PID=$!
	fi
	# Watch QEMU, the end marker and the clock.
	while kill -0 "$QEMU_PID" 2>/dev/null; do
		now=$(date +%s)
		if ((now - start >= TIMEOUT)); then
			log "TIMEOUT after ${TIMEOUT}s: killing QEMU"
			status=timeout
			break
		fi
		if ((!end_seen)) && grep -aq 'ZCD-XEN-TEST: END' "$LOG"; then
			end_seen=$now
		fi
		if ((end_seen && now - end_seen >= EXIT_GRACE)); then
			log "QEMU did not exit ${EXIT_GRACE}s after the end marker: killing it"
			break
		fi
		sleep 1
	done
	if [[ -n $QEMU_PID ]] && kill -0 "$QEMU_PID" 2>/dev/null; then
		kill "$QEMU_PID" 2>/dev/null || true
	fi
	wait "$QEMU_PID" 2>/dev/null || true
	QEMU_PID=
	sleep 0.5 # let tail print the last lines
	cleanup
	local elapsed=$(($(date +%s) - start))

	tr -d '\r' <"$LOG" | grep -a 'ZCD-RESULT ' | sed 's/^.*\(ZCD-RESULT \)/\1/' >"$RESULTS" || true
	local verdict
	verdict=$(verdict_line || true)
	if [[ ${status:-} != timeout && $verdict == "ZCD-XEN-TEST: PASS" ]] &&
		! tr -d '\r' <"$LOG" | grep -aq '^ZCD-XEN-TEST: FAIL'; then
		log "PASS in ${elapsed}s ($(wc -l <"$RESULTS") result lines in $RESULTS)"
		return 0
	fi
	echo "===== last 80 console lines ($LOG) =====" >&2
	tr -d '\r' <"$LOG" | tail -n 80 >&2
	if grep -qv "TCG doesn't support requested feature" "$qemu_err"; then
		echo "===== QEMU stderr =====" >&2
		# TCG's "doesn't support requested feature" warnings are noise.
		grep -v "TCG doesn't support requested feature" "$qemu_err" >&2 || true
	fi
	echo "=====" >&2
	if [[ ${status:-} == timeout ]]; then
		log "FAIL: timeout after ${TIMEOUT}s (last verdict: ${verdict:-none})"
	elif [[ -n $verdict ]]; then
		log "FAIL: $verdict (${elapsed}s)"
	else
		log "FAIL: QEMU exited after ${elapsed}s without a verdict"
	fi
	return 1
}

main "$@"
