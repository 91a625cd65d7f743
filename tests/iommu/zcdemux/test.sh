#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# The IOMMU test, inside the VM (run by /init; tests/iommu/iommu_test.py
# builds the payload and checks what this prints).  For each case zcdemux
# runs with the sim hypervisor backend and the vfio IOMMU backend on the NIC
# bound to vfio-pci, real DMA through the emulated Intel IOMMU; zcd-replay
# sends the case's capture from the kernel's NIC over QEMU's hub:
#
#   strict    every frame to its simulated VM, ledger and DMA table compared
#             after every burst (iommu.check)
#   deferred  the same with batched unmaps
#   fault     one stalled VM; --inject-dma-fault posts the old IOVA of a
#             buffer that VM holds: the NIC's write must fault in the IOMMU
#             (dmesg) and leave the page unchanged
#   pktgen    the kernel's packet generator (bench/pktgen/zcd-pktgen.sh)
#             sends a fixed count to every VM MAC instead of zcd-replay
#
# It prints, per case, the exit status, the stats JSON, each sink compared
# with the expected frames (zcd-pcapcmp), and the IOMMU faults in dmesg.
P=/payload
. $P/expect.env

fail() {
	echo "test.sh: $*"
	exit 1
}

# Wait until "$@" succeeds, for at most $WAIT_SECS seconds.
wait_until() {
	_end=$(($(date +%s) + WAIT_SECS))
	until "$@"; do
		[ "$(date +%s)" -lt "$_end" ] || return 1
		usleep 200000
	done
}

port_rx_is() {
	[ "$(sed -n 's/.*"name": "uplink", "rx_packets": \([0-9]*\).*/\1/p' "$1" 2>/dev/null)" = "$2" ]
}

running() { grep -q "zcdemux: running:" "$1"; }

# The counters of frames and buffers stopped changing (the idle-time table
# checks go on counting: leave the iommu line out).
settled() {
	_a=$(grep -v '"iommu"' "$1" | md5sum)
	sleep 2
	[ "$_a" = "$(grep -v '"iommu"' "$1" | md5sum)" ]
}

dmar_faults() { dmesg | grep -c "DMAR: \[DMA"; }

# run_case NAME TRAFFIC FRAMES [zcdemux options]
run_case() {
	name=$1 traffic=$2 frames=$3
	shift 3
	mkdir -p "/run/$name"
	sed -e "s|@PCI@|$ZCD_VFIO_PCI|g" -e "s|@OUT@|/run/$name|g" "$P/$name.yaml" >"/run/$name.yaml"
	$P/zcdemux -a "$ZCD_VFIO_PCI" --iova-mode=va -l 0 --file-prefix "$name" \
		--log-level=lib.eal:warning --log-level=lib.telemetry:error -- \
		--config "/run/$name.yaml" --stats-json "/run/$name.json" --stats-interval 1 "$@" \
		>"/run/$name.out" 2>&1 &
	pid=$!
	wait_until running "/run/$name.out" || { cat "/run/$name.out"; fail "$name: zcdemux did not start"; }
	if [ "$traffic" = pktgen ]; then
		# shellcheck disable=SC2086 # PKTGEN_ARGS holds one -d per stream
		sh "$P/zcd-pktgen.sh" -i "$ZCD_SEND_IF" $PKTGEN_ARGS -s "$PKTGEN_SIZE" \
			-n "$PKTGEN_COUNT" -r "$PKTGEN_RATE" || fail "$name: zcd-pktgen.sh failed"
	else
		$P/zcd-replay --rate "$REPLAY_RATE" "$ZCD_SEND_IF" "$P/$traffic" || fail "$name: zcd-replay failed"
	fi
	wait_until port_rx_is "/run/$name.json" "$frames" || {
		cat "/run/$name.out" "/run/$name.json"
		dmesg | grep DMAR | tail -n 5
		fail "$name: not all $frames frames arrived"
	}
	wait_until settled "/run/$name.json" || fail "$name: did not settle"
	kill -INT "$pid"
	wait "$pid"
	rc=$?
	cat "/run/$name.out"
	echo "ZCD-RESULT exit $name rc=$rc"
	sed "s/^/ZCD-RESULT json $name /" "/run/$name.json"
	for exp in "$P/expected-$name"/*.pcap; do
		[ -e "$exp" ] || continue
		vm=$(basename "$exp" .pcap)
		echo "ZCD-RESULT cmp $name $vm $($P/zcd-pcapcmp "$exp" "/run/$name/$vm.pcap" 2>&1)"
	done
	echo "ZCD-RESULT dmar after-$name faults=$(dmar_faults)"
}

for c in $CASES; do
	case $c in
	fault) run_case fault fault.pcap "$N_FAULT" --inject-dma-fault ;;
	pktgen) run_case pktgen pktgen "$N_PKTGEN" ;;
	*) run_case "$c" traffic.pcap "$N" ;;
	esac
done
dmesg | grep -E "DMAR: (\[DMA|DRHD: handling fault)" | head -n 6 | sed 's/^/ZCD-RESULT dmesg /'
exit 0
