#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# zcd-pktgen.sh — blast frames at zcdemux's VMs with the Linux kernel's
# packet generator (pktgen), out of an interface the dataplane receives
# from (a NIC cabled or bridged to its port, or the peer of a veth it reads
# with net_af_packet).
#
# Usage:
#   zcd-pktgen.sh -i IFACE (-c CONFIG | -d MAC[/VLAN] ...) [-s SIZE[,SIZE...]]
#                 [-n COUNT] [-r PPS] [-t THREADS] [--src-mac MAC]
#                 [-k CLONE] [-b BURST] [--dry-run]
#
#   -i, --iface IFACE     interface to send from (required; it is brought up)
#   -c, --config FILE     a zcdemux YAML configuration: one stream per MAC of
#                         every VM, tagged with the VM's VLAN (read with
#                         zcd-vms.py beside this script; python3)
#   -d, --dst MAC[/VLAN]  one more stream, to MAC, tagged if VLAN is given
#                         (repeatable)
#   -s, --size LIST       frame sizes on the wire with the 4-byte FCS, a VLAN
#                         tag included, 64..9022 (default 64); a list such as
#                         64,512,1518 sends one round per size, one after
#                         the other.  Tagged frames are at least 66 bytes:
#                         pktgen puts its 16-byte header in every packet
#   -n, --count N         frames per stream and round (default 1000; 0 = until
#                         interrupted, one size only)
#   -r, --rate PPS        frames per second of all streams together (default
#                         0: as fast as the interface takes them)
#   -t, --threads N       pktgen threads (one per CPU, kpktgend_0..N-1) the
#                         streams are spread over (default 1)
#   -S, --src-mac MAC     source MAC (default: the interface's)
#   -k, --clone N         times pktgen sends each buffer before it builds a
#                         new one (clone_skb; default 1000, 0 with -r);
#                         devices that cannot share buffers (veth) get 0
#   -b, --burst N         frames per transmit call (default 1; needs a driver
#                         that shares buffers; COUNT must be a multiple)
#       --dry-run         print the pktgen commands instead of running them
#                         (needs neither root nor pktgen)
#   -h, --help            this text
#
# Needs root and the kernel's pktgen (modprobe pktgen; CONFIG_NET_PKTGEN);
# it takes pktgen over, removing every device of every pktgen thread first.
# Each stream is a pktgen device IFACE@N with its own dst_mac and vlan_id,
# sending UDP/IPv4 from 198.19.0.1 to 198.18.0.N (the benchmarking range).
# At the end of each round it prints, per stream, the frames sent and what
# pktgen measured, e.g.
#   zcd-pktgen: vm2=02:00:00:00:02:01/10: sent 1000: OK: 502012(c501896+d116) usec, 1000 (508byte,0frags); 1991pps 8Mb/sec (8108352bps) errors: 0
# and exits 0 when every stream sent its COUNT frames, 1 otherwise, 2 on a
# usage error.  Ctrl-C stops pktgen and still reports.
#
# Examples:
#   zcd-pktgen.sh -i eth1 -c /etc/zcdemux/zcdemux.yaml -s 64,512,1518 -n 1000000
#   zcd-pktgen.sh -i veth0 -d 02:00:00:00:01:01 -d 02:00:00:00:02:01/10 -n 0 -r 100000
#
# Bash; also runs under busybox sh (the IOMMU test VM runs it there with -d).
set -euo pipefail

PG=/proc/net/pktgen
HERE=$(dirname "$0")

usage() { sed -n '4,/^set -euo pipefail/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() {
	echo "zcd-pktgen: $*" >&2
	exit 1
}
bad_usage() {
	echo "zcd-pktgen: $* (see --help)" >&2
	exit 2
}
is_number() { case $1 in '' | *[!0-9]*) return 1 ;; esac }
is_mac() {
	case $1 in
	[0-9A-Fa-f][0-9A-Fa-f]:[0-9A-Fa-f][0-9A-Fa-f]:[0-9A-Fa-f][0-9A-Fa-f]:[0-9A-Fa-f][0-9A-Fa-f]:[0-9A-Fa-f][0-9A-Fa-f]:[0-9A-Fa-f][0-9A-Fa-f]) return 0 ;;
	esac
	return 1
}

iface="" config="" sizes=64 count=1000 rate=0 threads=1 src_mac="" clone="" burst=1 dry_run=0
streams="" # one "LABEL MAC VLAN" line per stream (VLAN 0: untagged)
add_stream() { # add_stream LABEL MAC VLAN
	is_mac "$2" || bad_usage "\"$2\" is not a MAC address"
	if ! is_number "$3" || [ "$3" -gt 4094 ]; then bad_usage "VLAN \"$3\": 1..4094"; fi
	streams="$streams$1 $2 $3
"
}

while [ $# -gt 0 ]; do
	case $1 in
	--*=*)
		opt=${1%%=*} val=${1#*=}
		shift
		set -- "$opt" "$val" "$@"
		continue
		;;
	-h | --help) usage; exit 0 ;;
	--dry-run) dry_run=1; shift; continue ;;
	-i | --iface | -c | --config | -d | --dst | -s | --size | -n | --count | -r | --rate | \
		-t | --threads | -S | --src-mac | -k | --clone | -b | --burst)
		[ $# -ge 2 ] || bad_usage "$1 needs a value"
		;;
	*) bad_usage "unknown option \"$1\"" ;;
	esac
	case $1 in
	-i | --iface) iface=$2 ;;
	-c | --config) config=$2 ;;
	-d | --dst)
		mac=${2%%/*}
		vlan=0
		[ "$mac" = "$2" ] || vlan=${2#*/}
		[ "$vlan" != 0 ] || [ "$mac" = "$2" ] || bad_usage "-d $2: VLAN 1..4094"
		add_stream "$2" "$mac" "$vlan"
		;;
	-s | --size) sizes=$2 ;;
	-n | --count) count=$2 ;;
	-r | --rate) rate=$2 ;;
	-t | --threads) threads=$2 ;;
	-S | --src-mac) src_mac=$2 ;;
	-k | --clone) clone=$2 ;;
	-b | --burst) burst=$2 ;;
	esac
	shift 2
done

[ -n "$iface" ] || bad_usage "-i IFACE is required"
for v in "$count" "$rate" "$threads" "$burst" ${clone:+"$clone"}; do
	is_number "$v" || bad_usage "\"$v\" is not a number"
done
[ "$threads" -ge 1 ] || bad_usage "-t $threads: at least 1"
[ "$burst" -ge 1 ] || bad_usage "-b $burst: at least 1"
[ "$count" = 0 ] || [ $((count % burst)) = 0 ] ||
	bad_usage "-n $count is not a multiple of -b $burst (pktgen sends whole bursts)"
[ -z "$src_mac" ] || is_mac "$src_mac" || bad_usage "--src-mac $src_mac is not a MAC address"
sizes=$(echo "$sizes" | tr ',' ' ')
nb_sizes=0
for size in $sizes; do
	if ! is_number "$size" || [ "$size" -lt 64 ] || [ "$size" -gt 9022 ]; then
		bad_usage "-s: \"$size\" is not a frame size (64..9022)"
	fi
	nb_sizes=$((nb_sizes + 1))
done
[ "$nb_sizes" -ge 1 ] || bad_usage "-s: no size"
[ "$count" != 0 ] || [ "$nb_sizes" = 1 ] || bad_usage "-n 0 runs until interrupted: give one size"

if [ -n "$config" ]; then
	command -v python3 >/dev/null || die "-c needs python3 (apt-get install python3), or give -d MAC[/VLAN]"
	list=$(python3 "$HERE/zcd-vms.py" "$config") || die "cannot read the VMs of $config"
	while read -r name mac vlan; do
		[ -n "$name" ] || continue
		label="$name=$mac"
		[ "$vlan" = 0 ] || label="$label/$vlan"
		add_stream "$label" "$mac" "$vlan"
	done <<EOF
$list
EOF
fi
nb=$(printf '%s' "$streams" | grep -c .) || true
[ "$nb" -gt 0 ] || bad_usage "no stream: give -c CONFIG or -d MAC"

if [ "$dry_run" = 0 ]; then
	[ "$(id -u)" = 0 ] || die "needs root: it drives the kernel's pktgen through $PG (try sudo)"
	[ -e "/sys/class/net/$iface" ] || die "no network interface \"$iface\" (ip link show lists them)"
	if [ ! -d "$PG" ]; then
		out=$(modprobe pktgen 2>&1) || true
		[ -d "$PG" ] || die "the kernel $(uname -r) has no pktgen: $PG is missing and 'modprobe pktgen' failed${out:+: $out} (pktgen needs CONFIG_NET_PKTGEN)"
	fi
	[ -w "$PG/pgctrl" ] || die "$PG/pgctrl is not writable"
	t=0
	while [ "$t" -lt "$threads" ]; do
		[ -e "$PG/kpktgend_$t" ] || die "-t $threads: there is no $PG/kpktgend_$t (one thread per CPU)"
		t=$((t + 1))
	done
	# A frame without its FCS is a 14-byte header (18 tagged) and at most MTU bytes.
	mtu=$(cat "/sys/class/net/$iface/mtu")
	longest=$((mtu + 4 + 18))
	printf '%s' "$streams" | grep -q ' 0$' && longest=$((mtu + 4 + 14))
	for size in $sizes; do
		[ "$size" -le "$longest" ] ||
			die "-s $size: $iface has MTU $mtu, too small for such frames (ip link set $iface mtu $((mtu + size - longest)))"
	done
	ip link set "$iface" up
fi

# pg FILE COMMAND: pktgen refuses a command by failing the write.
pg() {
	if [ "$dry_run" = 1 ]; then
		echo "$1: $2"
		return 0
	fi
	printf '%s\n' "$2" 2>/dev/null >"$PG/$1"
}
pg_must() {
	pg "$1" "$2" || die "pktgen refused \"$2\" for $1: $(sed -n 's/^Result: //p' "$PG/$1" 2>/dev/null)"
}
# Every thread, not only ours: pgctrl start would also start what another
# run left behind.
clear_threads() {
	if [ "$dry_run" = 1 ]; then
		t=0
		while [ "$t" -lt "$threads" ]; do
			pg "kpktgend_$t" "rem_device_all"
			t=$((t + 1))
		done
		return
	fi
	for f in "$PG"/kpktgend_*; do
		pg_must "${f##*/}" "rem_device_all"
	done
}

# Nanoseconds between two frames of one stream; a burst counts as one send.
delay=0
if [ "$rate" -gt 0 ]; then
	delay=$((1000000000 * nb * burst / rate))
	[ -n "$clone" ] || clone=0
fi
[ -n "$clone" ] || clone=1000

interrupted=0
# shellcheck disable=SC2317 # called by the trap
on_signal() {
	interrupted=1
	[ "$dry_run" = 1 ] || echo stop >"$PG/pgctrl" 2>/dev/null || true
}
trap on_signal INT TERM

status=0
round=0
for size in $sizes; do
	round=$((round + 1))
	clear_threads
	i=0
	while read -r label mac vlan; do
		[ -n "$label" ] || continue
		dev="$iface@$i"
		pg_must "kpktgend_$((i % threads))" "add_device $dev"
		# pkt_size is the frame pktgen builds, VLAN tag included, without
		# the FCS the device appends.
		pg_must "$dev" "pkt_size $((size - 4))"
		pg_must "$dev" "count $count"
		pg_must "$dev" "delay $delay"
		if ! pg "$dev" "clone_skb $clone"; then
			echo "zcd-pktgen: $iface cannot share buffers: clone_skb 0" >&2
			clone=0
			pg_must "$dev" "clone_skb 0"
		fi
		[ "$burst" = 1 ] || pg_must "$dev" "burst $burst"
		pg_must "$dev" "dst_mac $mac"
		[ -z "$src_mac" ] || pg_must "$dev" "src_mac $src_mac"
		pg_must "$dev" "dst 198.18.$((i / 250)).$((i % 250 + 1))"
		pg_must "$dev" "src_min 198.19.0.1"
		pg_must "$dev" "src_max 198.19.0.1"
		[ "$vlan" = 0 ] || pg_must "$dev" "vlan_id $vlan"
		i=$((i + 1))
	done <<EOF
$streams
EOF
	if [ "$rate" -gt 0 ]; then what="$rate frames/s in all"; else what="as fast as $iface takes them"; fi
	if [ "$count" = 0 ]; then each="until interrupted"; else each="$count each"; fi
	echo "zcd-pktgen: round $round/$nb_sizes: $nb stream(s) of $size-byte frames out of $iface," \
		"$each, $what, $threads thread(s)"
	if [ "$size" -lt 66 ] && printf '%s' "$streams" | grep -qv ' 0$'; then
		echo "zcd-pktgen: tagged streams send 66-byte frames: the tag and pktgen's header need 2 bytes more"
	fi
	[ "$interrupted" = 0 ] || { clear_threads; exit 130; }
	# Blocks until every stream is done (or Ctrl-C).
	pg_must pgctrl start
	i=0
	while read -r label mac vlan; do
		[ -n "$label" ] || continue
		f="$PG/$iface@$i"
		i=$((i + 1))
		[ "$dry_run" = 0 ] || continue
		sent=$(sed -n 's/.*pkts-sofar: \([0-9]*\).*/\1/p' "$f")
		# "Result: OK: ..." and, on the next line, the rates.
		result=$(sed -n '/^Result: /{s/^Result: //;N;s/\n */; /;p;}' "$f")
		echo "zcd-pktgen: $label: sent ${sent:-?}: ${result:-no result}"
		if [ "$count" != 0 ] && [ "${sent:-0}" != "$count" ]; then status=1; fi
	done <<EOF
$streams
EOF
	clear_threads
	[ "$interrupted" = 0 ] || exit 130
done
exit $status
