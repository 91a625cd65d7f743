#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# smoke.sh — end-to-end check of the Xen-in-QEMU harness: builds the images
# with the smoke payloads (tests/xen/smoke/{dom0,domU} plus zcd-xen-probe,
# compiled here against libxen) and boots them; dom0 starts two PV guests,
# shares a page and an event channel with each, and each guest maps the page
# and answers.  Exit status 0 on PASS (see run.sh for the others).
#
# Usage:
#   tests/xen/smoke.sh [--out DIR] [--cache DIR] [--timeout SECS] [--quiet]
#
# Options:
#   --out DIR       images, payloads and logs (default build/xen/smoke)
#   --cache DIR     package cache shared with other tests (default build/xen/cache)
#   --timeout SECS  QEMU run limit (default 600)
#   --quiet         do not stream the console
#   -h, --help      this text
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
OUT=$REPO_ROOT/build/xen/smoke
CACHE=$REPO_ROOT/build/xen/cache
TIMEOUT=600
RUN_OPTS=()

die() { echo "smoke.sh: error: $*" >&2; exit 2; }
usage() { sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }

while (($#)); do
	case $1 in
	--out) OUT=$(abspath "${2:?}"); shift ;;
	--cache) CACHE=$(abspath "${2:?}"); shift ;;
	--timeout) TIMEOUT=${2:?}; shift ;;
	--quiet) RUN_OPTS+=(--quiet) ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
	shift
done

# The probe links the libxen libraries exactly as zcdemux's tools do.
build_probe() {
	local bin=$1
	command -v cc >/dev/null || die "no C compiler: apt-get install gcc"
	pkg-config --exists xengnttab xenevtchn xenstore ||
		die "libxen development files missing: apt-get install libxen-dev"
	mkdir -p "$(dirname "$bin")"
	# shellcheck disable=SC2046 # pkg-config output is a list of flags
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wmissing-prototypes -Wshadow \
		$(pkg-config --cflags xengnttab xenevtchn xenstore) \
		"$SCRIPT_DIR/smoke/zcd-xen-probe.c" -o "$bin" \
		$(pkg-config --libs xengnttab xenevtchn xenstore) || die "building zcd-xen-probe failed"
}

# Payload trees are assembled under OUT: the source tree stays clean.
make_payloads() {
	rm -rf "$OUT/payload-dom0" "$OUT/payload-domU"
	mkdir -p "$OUT/payload-dom0/bin" "$OUT/payload-domU/bin"
	cp -a "$SCRIPT_DIR/smoke/dom0/." "$OUT/payload-dom0/"
	cp -a "$SCRIPT_DIR/smoke/domU/." "$OUT/payload-domU/"
	build_probe "$OUT/payload-dom0/bin/zcd-xen-probe"
	cp "$OUT/payload-dom0/bin/zcd-xen-probe" "$OUT/payload-domU/bin/"
}

t0=$(date +%s)
make_payloads
"$SCRIPT_DIR/images.sh" --out "$OUT" --cache "$CACHE" \
	--dom0-payload "$OUT/payload-dom0" --domU-payload "$OUT/payload-domU" >/dev/null
t1=$(date +%s)
rc=0
"$SCRIPT_DIR/run.sh" --images "$OUT" --timeout "$TIMEOUT" ${RUN_OPTS[@]+"${RUN_OPTS[@]}"} || rc=$?
t2=$(date +%s)
echo "smoke.sh: images $((t1 - t0)) s, boot+test $((t2 - t1)) s, total $((t2 - t0)) s"
if ((rc == 0)); then
	echo "smoke.sh: results:"
	sed 's/^/  /' "$OUT/results.txt"
	echo "xen-smoke: 1 passed, 0 failed"
else
	echo "xen-smoke: 0 passed, 1 failed"
fi
exit "$rc"
