#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# zcd-testpmd-cmds.sh — write a dpdk-testpmd command file that sends frames
# to one VM of a zcdemux configuration, for `dpdk-testpmd ... -- -i
# --cmdline-file FILE`.
#
# Usage:
#   zcd-testpmd-cmds.sh -c CONFIG [-v VM] [-s SIZE] [-m MODE] [-n BURSTS] [-p PORT]
#
#   -c CONFIG   the zcdemux YAML configuration (read with `zcd-gen --list-vms`;
#               set ZCD_GEN if zcd-gen is not build/zcd-gen or on PATH)
#   -v VM       the VM to send to (default: the first); its first MAC is used
#   -s SIZE     frame size on the wire including the 4-byte FCS (default 64)
#   -m MODE     txonly (default: one flow, continuous), flowgen (many IP flows,
#               continuous), or burst (exactly BURSTS bursts of 32, then stop)
#   -n BURSTS   with -m burst: how many bursts (default 10)
#   -p PORT     testpmd's port id (default 0)
#   -h          this text
#
# The file goes to stdout.  testpmd's txonly and flowgen send to one peer
# MAC per port: one VM per port (run several ports for several VMs).  A VM
# on a VLAN needs a port that can insert the tag (tx_vlan set; software
# ports such as net_memif or net_af_packet cannot), so such a VM is refused.
#
# Example, zcdemux reading net_memif0 as server on /run/zcd.sock:
#   zcd-testpmd-cmds.sh -c zcdemux.yaml -v vm1 -s 1518 -m burst -n 100 >cmds
#   dpdk-testpmd -l 0,1 --vdev net_memif0,role=client,socket=/run/zcd.sock \
#       -- -i --cmdline-file cmds </dev/null
set -eu

usage() { sed -n '3,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "zcd-testpmd-cmds: $*" >&2; exit 1; }

config="" vm="" size=64 mode=txonly bursts=10 port=0
while getopts "c:v:s:m:n:p:h" opt; do
	case $opt in
	c) config=$OPTARG ;;
	v) vm=$OPTARG ;;
	s) size=$OPTARG ;;
	m) mode=$OPTARG ;;
	n) bursts=$OPTARG ;;
	p) port=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
[ -n "$config" ] || die "-c CONFIG is required (see -h)"
for v in "$size" "$bursts" "$port"; do
	case $v in '' | *[!0-9]*) die "\"$v\" is not a number" ;; esac
done
[ "$size" -ge 64 ] && [ "$size" -le 9022 ] || die "-s $size: 64..9022"
case $mode in txonly | flowgen | burst) ;; *) die "-m $mode: txonly, flowgen or burst" ;; esac

gen=${ZCD_GEN:-}
if [ -z "$gen" ]; then
	here=$(cd "$(dirname "$0")/../.." && pwd)
	if [ -x "$here/build/zcd-gen" ]; then gen="$here/build/zcd-gen"; else gen=zcd-gen; fi
fi
list=$("$gen" --list-vms --config "$config") || die "cannot read $config"
line=$(echo "$list" | awk -v vm="$vm" 'vm == "" || $1 == vm { print; exit }')
[ -n "$line" ] || die "no VM ${vm:-at all} in $config"
set -- $line
name=$1 mac=$2 vlan=$3
[ "$vlan" = 0 ] || die "$name is on VLAN $vlan: testpmd tags frames only with the port's VLAN offload"

echo "# $name ($mac): $size-byte frames on the wire, $mode"
echo "set eth-peer $port $mac"
echo "set txpkts $((size - 4))"
case $mode in
txonly | flowgen)
	echo "set fwd $mode"
	echo "start"
	;;
burst)
	# tx_first sends its bursts before forwarding starts; rxonly then
	# forwards nothing, so exactly BURSTS x 32 frames leave.
	echo "set burst 32"
	echo "set fwd rxonly"
	echo "start tx_first $bursts"
	echo "stop"
	;;
esac
