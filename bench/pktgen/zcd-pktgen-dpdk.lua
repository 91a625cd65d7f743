-- SPDX-License-Identifier: BSD-3-Clause
--
-- zcd-pktgen-dpdk.lua — send to zcdemux's VMs with pktgen-dpdk.
--
-- Usage (pktgen-dpdk is not packaged by Debian; build it yourself):
--   VMS="02:00:00:00:00:01 02:00:00:00:00:02/10" SIZE=1518 RATE=10 \
--       pktgen -l 0-2 -n 4 -- -P -m "[1:2].0" -f bench/pktgen/zcd-pktgen-dpdk.lua
--
--   VMS    the VMs' MACs, each with /VLAN if it is on one; the list can come
--          from a zcdemux configuration:
--            VMS=$(build/zcd-gen --list-vms --config FILE |
--                  awk '{ print $3 == 0 ? $2 : $2 "/" $3 }' | tr '\n' ' ')
--   SIZE   frame size on the wire with the FCS, 64..9022 (default 64)
--   RATE   percent of the port's line rate (default 10)
--   COUNT  frames per VM, 0 = until stopped (default 0)
--   PORT   pktgen's port (default 0)
--
-- One sequence per VM (pktgen-dpdk has 16 per port): destination MAC, VLAN
-- tag if any, UDP/IPv4 from 198.19.0.1 to 198.18.0.N.  pktgen-dpdk's pktSize
-- leaves the FCS out, so SIZE - 4 is asked for.
--
-- Not tested here: pktgen-dpdk is not in Debian's archive.  The same traffic
-- is tested with zcd-pktgen.sh (kernel pktgen) and zcd-testpmd-cmds.sh.

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local function env(name, default)
	local v = os.getenv(name)
	if v == nil or v == "" then return default end
	return v
end

local port = tonumber(env("PORT", "0"))
local size = tonumber(env("SIZE", "64"))
local rate = tonumber(env("RATE", "10"))
local count = tonumber(env("COUNT", "0"))
local vms = {}
for spec in string.gmatch(env("VMS", ""), "%S+") do
	local mac, vlan = string.match(spec, "^([%x:]+)/?(%d*)$")
	if mac == nil then error("VMS: bad entry " .. spec) end
	table.insert(vms, { mac = mac, vlan = tonumber(vlan) })
end
if #vms == 0 then error("VMS is empty: give the VMs' MACs (see the usage above)") end
if #vms > 16 then error("pktgen-dpdk has 16 sequences per port; got " .. #vms .. " VMs") end
if size < 64 or size > 9022 then error("SIZE: 64..9022") end

local ports = tostring(port)
pktgen.stop(ports)
pktgen.set(ports, "rate", rate)
pktgen.set(ports, "count", count * #vms)
pktgen.set(ports, "seq_cnt", #vms)
for i, vm in ipairs(vms) do
	pktgen.seqTable(i - 1, ports, {
		["eth_dst_addr"] = vm.mac,
		["eth_src_addr"] = "02:50:47:00:00:01",
		["ip_dst_addr"] = "198.18.0." .. i,
		["ip_src_addr"] = "198.19.0.1/24",
		["sport"] = 1234,
		["dport"] = 5678,
		["ethType"] = "ipv4",
		["ipProto"] = "udp",
		["vlanid"] = vm.vlan or 1,
		["pktSize"] = size - 4,
		["teid"] = 0,
		["cos"] = 0,
		["tos"] = 0,
	})
	if vm.vlan ~= nil then pktgen.vlan(ports, "on") end
end
printf("zcd-pktgen-dpdk: %d VM(s), %d-byte frames, %d%% of line rate\n", #vms, size, rate)
pktgen.start(ports)
