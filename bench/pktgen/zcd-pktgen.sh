#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# zcd-pktgen.sh — blast frames at zcdemux's VMs with the Linux kernel's
# packet generator (pktgen), out of a network interface the dataplane
# reads (one end of a veth pair it reads with net_af_packet, or a NIC cabled
# or bridged to its port).
#
# Usage:
#   zcd-pktgen.sh -i IFACE (-c CONFIG | -d MAC[/VLAN] ...) [-s SIZE] [-n COUNT]
#                 [-r PPS] [-S SRC_MAC] [-k CLONE] [-b BURST]
#
#   -i IFACE    interface to send from (required; it is brought up)
#   -c CONFIG   a zcdemux YAML configuration: one stream per VM MAC, with the
#               VM's VLAN tag (reads it with `zcd-gen --list-vms`; set ZCD_GEN
#               if zcd-gen is not build/zcd-gen or on PATH)
#   -d MAC[/VLAN]  a stream to MAC, tagged with VLAN if given; repeatable
#   -s SIZE     frame size on the wire including the 4-byte FCS, 64..9022
#               (default 64)
#   -n COUNT    frames per stream (default 1000; 0 = until interrupted)
#   -r PPS      frames per second for all streams together (default 0: as
#               fast as the interface takes them)
#   -S SRC_MAC  source MAC (default the interface's)
#   -k CLONE    times pktgen sends each buffer before building another
#               (clone_skb; default 0 when rate-limited, 1000 otherwise)
#   -b BURST    frames per transmit call (burst; default 1)
#   -h          this text
#
# Needs root and the pktgen module (modprobe pktgen).  All streams run on
# one pktgen thread, one after another in round robin.  Prints, per stream,
# the frames sent and the rate pktgen measured, and exits 0 when every
# stream sent its COUNT frames.  POSIX sh: runs under busybox too.
set -eu

usage() { sed -n '3,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "zcd-pktgen: $*" >&2; exit 1; }

iface="" config="" size=64 count=1000 rate=0 src_mac="" clone="" burst=1 streams=""
while getopts "i:c:d:s:n:r:S:k:b:h" opt; do
	case $opt in
	i) iface=$OPTARG ;;
	c) config=$OPTARG ;;
	d) streams="$streams $OPTARG" ;;
	s) size=$OPTARG ;;
	n) count=$OPTARG ;;
	r) rate=$OPTARG ;;
	S) src_mac=$OPTARG ;;
	k) clone=$OPTARG ;;
	b) burst=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
[ -n "$iface" ] || die "-i IFACE is required (see -h)"
is_number() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }
for v in "$size" "$count" "$rate" "$burst"; do
	is_number "$v" || die "\"$v\" is not a number"
done
[ "$size" -ge 64 ] && [ "$size" -le 9022 ] || die "-s $size: 64..9022"
[ "$(id -u)" = 0 ] || die "needs root (it drives /proc/net/pktgen)"
[ -e "/sys/class/net/$iface" ] || die "no interface $iface"

if [ -n "$config" ]; then
	gen=${ZCD_GEN:-}
	if [ -z "$gen" ]; then
		here=$(cd "$(dirname "$0")/../.." && pwd)
		if [ -x "$here/build/zcd-gen" ]; then gen="$here/build/zcd-gen"; else gen=zcd-gen; fi
	fi
	list=$("$gen" --list-vms --config "$config") || die "cannot read $config"
	streams="$streams $(echo "$list" | while read -r _ mac vlan; do
		if [ "$vlan" = 0 ]; then echo "$mac"; else echo "$mac/$vlan"; fi
	done)"
fi
set -- $streams
[ $# -gt 0 ] || die "no stream: give -c CONFIG or -d MAC"
nb=$#

if [ ! -d /proc/net/pktgen ]; then
	modprobe pktgen 2>/dev/null || die "the pktgen module is not available (modprobe pktgen)"
fi
[ -w /proc/net/pktgen/pgctrl ] || die "/proc/net/pktgen/pgctrl missing"
ip link set "$iface" up

pg() { # pg FILE "command": pktgen refuses with an error and says why in "Result:"
	if ! echo "$2" 2>/dev/null >"$1"; then
		die "$1: \"$2\" refused: $(sed -n 's/^Result: //p' "$1" 2>/dev/null)"
	fi
}

thread=/proc/net/pktgen/kpktgend_0
[ -e "$thread" ] || die "$thread missing"
pg "$thread" "rem_device_all"
# Frames per second per stream -> nanoseconds between two of its frames.
delay=0
if [ "$rate" -gt 0 ]; then
	delay=$((1000000000 * nb / rate))
	[ -n "$clone" ] || clone=0
fi
[ -n "$clone" ] || clone=1000

i=0
for s in "$@"; do
	mac=${s%%/*}
	vlan=""
	[ "$mac" = "$s" ] || vlan=${s#*/}
	dev="$iface@$i"
	pg "$thread" "add_device $dev"
	f=/proc/net/pktgen/$dev
	# pktgen's pkt_size is the frame as built (VLAN tag included), without
	# the FCS the device appends.
	pg "$f" "pkt_size $((size - 4))"
	pg "$f" "count $count"
	pg "$f" "delay $delay"
	pg "$f" "clone_skb $clone"
	pg "$f" "burst $burst"
	pg "$f" "dst_mac $mac"
	[ -z "$src_mac" ] || pg "$f" "src_mac $src_mac"
	pg "$f" "dst 198.18.0.$((i % 250 + 1))"
	pg "$f" "src_min 198.19.0.1"
	pg "$f" "src_max 198.19.0.1"
	if [ -n "$vlan" ]; then
		is_number "$vlan" && [ "$vlan" -ge 1 ] && [ "$vlan" -le 4094 ] || die "VLAN $vlan: 1..4094"
		pg "$f" "vlan_id $vlan"
	fi
	i=$((i + 1))
done

trap 'echo stop >/proc/net/pktgen/pgctrl' INT TERM
echo "zcd-pktgen: $nb stream(s) of $size-byte frames out of $iface, $count each" \
	"(rate: $([ "$rate" -gt 0 ] && echo "$rate/s" || echo "as fast as possible"))"
echo start >/proc/net/pktgen/pgctrl
status=0
i=0
for s in "$@"; do
	f=/proc/net/pktgen/$iface@$i
	sent=$(sed -n 's/.*pkts-sofar: \([0-9]*\).*/\1/p' "$f")
	result=$(sed -n 's/^Result: //p' "$f")
	echo "zcd-pktgen: $s: sent ${sent:-?}: $result"
	[ "$count" = 0 ] || [ "${sent:-0}" = "$count" ] || status=1
	i=$((i + 1))
done
pg "$thread" "rem_device_all"
exit $status
