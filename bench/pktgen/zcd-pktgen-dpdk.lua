-- SPDX-License-Identifier: BSD-3-Clause
--
-- zcd-pktgen-dpdk.lua — send to zcdemux's VMs with pktgen-dpdk: one
-- sequence packet per VM MAC, with the VM's VLAN tag, then start.
--
-- Not tested here: pktgen-dpdk is not packaged by Debian (build it from its
-- own sources).  zcd-pktgen.sh (kernel pktgen) and zcd-testpmd-cmds.py send
-- the same kind of traffic and are tested.
--
-- Usage:
--   VMS="$(bench/pktgen/zcd-vms.py --specs CONFIG)" SIZE=512 RATE=10 \
--       pktgen -l 0-2 -n 4 -- -P -m "[1:2].0" -f bench/pktgen/zcd-pktgen-dpdk.lua
--
--   VMS        the destinations, MAC or MAC/VLAN words (zcd-vms.py --specs
--              prints every MAC of every VM of a configuration that way)
--   SIZE       frame size on the wire with the 4-byte FCS, VLAN tag
--              included, 64..9022 (default 64)
--   RATE       percent of the port's line rate (default 10)
--   COUNT      frames per VM MAC, 0 = until stopped (default 0)
--   PORT       pktgen-dpdk port for the untagged MACs (default 0)
--   VLAN_PORT  port for the tagged MACs (default PORT).  pktgen-dpdk tags
--              every sequence of a port or none, so a configuration with
--              both kinds needs two ports (or two runs with split VMS)
--   SRC        source MAC (default 02:50:47:00:00:01)
--
-- Each port sends its sequences in turn, one frame each: UDP/IPv4 from
-- 198.19.0.1 to 198.18.0.N.  A port has 16 sequences, so 16 MACs at most.

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local function env(name, default)
	local v = os.getenv(name)
	if v == nil or v == "" then return default end
	return v
end

local function number(name, default, low, high)
	local v = tonumber(env(name, default))
	if v == nil or v < low or v > high then
		error(string.format("%s: expected %s..%s, got %s", name, low, high, tostring(os.getenv(name))))
	end
	return v
end

local size = number("SIZE", "64", 64, 9022)
local rate = number("RATE", "10", 0.01, 100)
local count = number("COUNT", "0", 0, 2 ^ 53)
local port = number("PORT", "0", 0, 1023)
local vlan_port = number("VLAN_PORT", tostring(port), 0, 1023)
local src = env("SRC", "02:50:47:00:00:01")

-- ports[p] = { tagged = bool, macs = { {mac=, vlan=}, ... } }
local ports = {}
local total = 0
for word in string.gmatch(env("VMS", ""), "%S+") do
	local mac, vlan = string.match(word, "^(%x%x:%x%x:%x%x:%x%x:%x%x:%x%x)/?(%d*)$")
	if mac == nil then error("VMS: \"" .. word .. "\" is not MAC or MAC/VLAN") end
	vlan = tonumber(vlan)
	if vlan ~= nil and (vlan < 1 or vlan > 4094) then error("VMS: " .. word .. ": VLAN 1..4094") end
	local p = vlan and vlan_port or port
	if ports[p] == nil then ports[p] = { tagged = vlan ~= nil, macs = {} } end
	if ports[p].tagged ~= (vlan ~= nil) then
		error("VMS has tagged and untagged MACs: pktgen-dpdk tags all of a port's frames or none;"
			.. " give the tagged ones their own port with VLAN_PORT")
	end
	table.insert(ports[p].macs, { mac = mac, vlan = vlan or 0 })
	total = total + 1
end
if total == 0 then error("VMS is empty: give MAC or MAC/VLAN words (see the usage above)") end

local order = {}
for p, _ in pairs(ports) do table.insert(order, p) end
table.sort(order)
local n = 0
for _, p in ipairs(order) do
	local cfg = ports[p]
	local list = tostring(p)
	if #cfg.macs > 16 then
		error(string.format("port %d: %d MACs; pktgen-dpdk has 16 sequences per port", p, #cfg.macs))
	end
	pktgen.stop(list)
	-- The tag is built into each sequence packet when it is set: first.
	pktgen.vlan(list, cfg.tagged and "on" or "off")
	for i, d in ipairs(cfg.macs) do
		n = n + 1
		pktgen.seqTable(i - 1, list, {
			["eth_dst_addr"] = d.mac,
			["eth_src_addr"] = src,
			["ip_dst_addr"] = string.format("198.18.%d.%d", n // 250, n % 250 + 1),
			["ip_src_addr"] = "198.19.0.1/24",
			["sport"] = 9,
			["dport"] = 9,
			["ethType"] = "ipv4",
			["ipProto"] = "udp",
			["vlanid"] = d.vlan,
			-- pktgen-dpdk's pktSize is on the wire: it takes the FCS off.
			["pktSize"] = size,
		})
	end
	pktgen.set(list, "seq_cnt", #cfg.macs)
	pktgen.set(list, "rate", rate)
	-- count is per port; the sequences take turns.
	pktgen.set(list, "count", count * #cfg.macs)
	print(string.format("zcd-pktgen-dpdk: port %d: %d MAC(s)%s, %d-byte frames, %s%% of line rate, %s",
		p, #cfg.macs, cfg.tagged and " on VLANs" or "", size, tostring(rate),
		count > 0 and string.format("%d frames each", count) or "until stopped"))
end
for _, p in ipairs(order) do pktgen.start(tostring(p)) end
