# SPDX-License-Identifier: BSD-3-Clause
#
# /usr/lib/zcd-lib.sh: helpers for a dom0 /payload/test.sh (busybox sh).
# Source it with `. /usr/lib/zcd-lib.sh`.  Functions log to the console and
# return non-zero on failure; only zcd_fail exits.
#
#   zcd_fail WHY...                  record WHY as the verdict's reason, exit 1
#   zcd_result WORDS...              print "ZCD-RESULT WORDS" (collected by run.sh)
#   zcd_guest_create NAME [opts] [KEY=VALUE...]
#                                    `xl create -p` a PV guest from the domU
#                                    image, paused; KEY=VALUE reaches the guest
#                                    as environment ZCD_KEY=VALUE (via zcd.KEY=
#                                    on its kernel command line, no spaces).
#                                    opts: --memory MB (default 160),
#                                    --vcpus N (1), --cfg LINE (extra xl.cfg line)
#   zcd_guest_unpause NAME           let it run
#   zcd_guest_start NAME [...]       create + unpause
#   zcd_domid NAME                   print its domain id
#   zcd_xs_write NAME KEY VALUE      write /local/domain/<id>/data/KEY, which
#                                    the guest reads with `xenstore-read data/KEY`
#   zcd_wait_log NAME REGEX [SECS]   wait until the guest's console log matches
#   zcd_wait_guest NAME [SECS]       wait for the guest's guest.sh to end;
#                                    returns its exit status (99 on time-out)
#   zcd_guest_destroy NAME           xl destroy (ignores a guest already gone)
#   zcd_guest_log NAME               path of the guest's console log

ZCD_CONSOLE_DIR=/var/log/xen/console
ZCD_GUEST_KERNEL=/boot/vmlinuz
ZCD_GUEST_RAMDISK=/boot/domU.cpio.gz

zcd_fail() {
	echo "ZCD-XEN: test failure: $*"
	echo "$*" >>/run/zcd/fail-reason
	exit 1
}

zcd_result() {
	echo "ZCD-RESULT $*"
}

zcd_guest_log() {
	echo "$ZCD_CONSOLE_DIR/guest-$1.log"
}

zcd_domid() {
	xl domid "$1" 2>/dev/null
}

zcd_guest_create() {
	_zn=$1
	shift
	_zmem=160
	_zvcpus=1
	_zextra="console=hvc0 quiet loglevel=4"
	_zcfg=/run/zcd/guest-$_zn.cfg
	: >"$_zcfg.more"
	while [ $# -gt 0 ]; do
		case $1 in
		--memory) _zmem=$2; shift ;;
		--vcpus) _zvcpus=$2; shift ;;
		--cfg) echo "$2" >>"$_zcfg.more"; shift ;;
		*=*) _zextra="$_zextra zcd.$1" ;;
		*) echo "zcd_guest_create: bad argument '$1'"; return 2 ;;
		esac
		shift
	done
	cat >"$_zcfg" <<-EOF
	name = "$_zn"
	type = "pv"
	kernel = "$ZCD_GUEST_KERNEL"
	ramdisk = "$ZCD_GUEST_RAMDISK"
	memory = $_zmem
	vcpus = $_zvcpus
	extra = "$_zextra zcd.name=$_zn"
	on_poweroff = "destroy"
	on_reboot = "destroy"
	on_crash = "destroy"
	EOF
	cat "$_zcfg.more" >>"$_zcfg"
	echo "ZCD-XEN: creating guest $_zn (memory $_zmem MB, extra: $_zextra)"
	if ! xl create -p "$_zcfg" >"/run/zcd/xl-create-$_zn.log" 2>&1; then
		cat "/run/zcd/xl-create-$_zn.log"
		echo "ZCD-XEN: xl create of $_zn failed"
		return 1
	fi
	echo "ZCD-XEN: guest $_zn is domain $(zcd_domid "$_zn") (paused)"
}

zcd_guest_unpause() {
	xl unpause "$1" || { echo "ZCD-XEN: xl unpause $1 failed"; return 1; }
}

zcd_guest_start() {
	zcd_guest_create "$@" && zcd_guest_unpause "$1"
}

zcd_xs_write() {
	_zid=$(zcd_domid "$1") || { echo "ZCD-XEN: no guest $1"; return 1; }
	xenstore-write "/local/domain/$_zid/data/$2" "$3"
}

zcd_wait_log() {
	_zlog=$(zcd_guest_log "$1")
	_zend=$(($(date +%s) + ${3:-120}))
	while ! grep -qE "$2" "$_zlog" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$_zend" ]; then
			echo "ZCD-XEN: guest $1: no '$2' in its console after ${3:-120} s"
			return 1
		fi
		sleep 1
	done
}

zcd_wait_guest() {
	zcd_wait_log "$1" "ZCD-GUEST: END name=$1 rc=" "${2:-180}" || return 99
	_zrc=$(tr -d '\r' <"$(zcd_guest_log "$1")" | sed -n "s/.*ZCD-GUEST: END name=$1 rc=\([0-9]*\).*/\1/p" | tail -n 1)
	return "${_zrc:-98}"
}

zcd_guest_destroy() {
	if xl domid "$1" >/dev/null 2>&1; then
		xl destroy "$1" || echo "ZCD-XEN: xl destroy $1 failed"
	fi
	return 0
}
