/* SPDX-License-Identifier: BSD-3-Clause */
/* Demultiplexing: the demux table and zcd_classify() on hand-made frames. */
#include <stdlib.h>

#include "check.h"
#include "classify.h"

enum { VM1, VM2, VM3, VM4, NB_VMS };

static const uint8_t MAC1[6] = {0x02, 0, 0, 0, 0, 0x01};
static const uint8_t MAC1B[6] = {0x02, 0, 0, 0, 0, 0x11};
static const uint8_t MAC2[6] = {0x02, 0, 0, 0, 0, 0x02};
static const uint8_t MAC3[6] = {0x02, 0, 0, 0, 0, 0x03};
static const uint8_t UNKNOWN[6] = {0x02, 0, 0, 0, 0, 0x99};
static const uint8_t BROADCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t MCAST4[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
static const uint8_t MCAST6[6] = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};

static void add_vm(struct zcd_config *cfg, const char *name, uint16_t vlan, const uint8_t *mac_a,
		   const uint8_t *mac_b)
{
	struct zcd_vm_config *vm = &cfg->vms[cfg->nb_vms++];

	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->vlan = vlan;
	vm->credits = 16;
	memcpy(vm->macs[vm->nb_macs++], mac_a, 6);
	if (mac_b != NULL)
		memcpy(vm->macs[vm->nb_macs++], mac_b, 6);
}

/*
 * vm1: untagged, two MACs; vm2: VLAN 10; vm3: VLAN 10, and MAC1 again
 * (same MAC, different VLAN, different VM); vm4: VLAN 20.
 */
static struct zcd_config *make_config(uint32_t mtu, int unknown_unicast_vm)
{
	struct zcd_config *cfg = calloc(1, sizeof(*cfg));

	cfg->mtu = mtu;
	cfg->unknown_unicast_vm = unknown_unicast_vm;
	add_vm(cfg, "vm1", 0, MAC1, MAC1B);
	add_vm(cfg, "vm2", 10, MAC2, NULL);
	add_vm(cfg, "vm3", 10, MAC3, MAC1);
	add_vm(cfg, "vm4", 20, MAC3, NULL);
	return cfg;
}

/* A frame of len bytes to dst; tpid 0 = untagged. */
static uint32_t make_frame(uint8_t *buf, uint32_t len, const uint8_t *dst, uint16_t tpid,
			   uint16_t tci)
{
	memset(buf, 0xab, len);
	memcpy(buf, dst, 6);
	memcpy(buf + 6, MAC2, 6);
	if (tpid != 0) {
		buf[12] = (uint8_t)(tpid >> 8);
		buf[13] = (uint8_t)tpid;
		buf[14] = (uint8_t)(tci >> 8);
		buf[15] = (uint8_t)tci;
		buf[16] = 0x08;
		buf[17] = 0x00;
	} else {
		buf[12] = 0x08;
		buf[13] = 0x00;
	}
	return len;
}

static struct zcd_class_result classify(const struct zcd_demux_table *t, uint32_t len,
					const uint8_t *dst, uint16_t tpid, uint16_t tci)
{
	static uint8_t buf[10000];

	return zcd_classify(t, buf, make_frame(buf, len, dst, tpid, tci));
}

static void expect_unicast(struct zcd_class_result r, uint16_t vm, uint16_t vlan)
{
	CHECK_EQ(r.kind, ZCD_CLASS_UNICAST);
	CHECK_EQ(r.vm, vm);
	CHECK_EQ(r.vlan, vlan);
}

static void expect_drop(struct zcd_class_result r, enum zcd_drop_reason reason)
{
	CHECK_EQ(r.kind, ZCD_CLASS_DROP);
	CHECK_EQ(r.drop, reason);
}

static void test_unicast(void)
{
	struct zcd_config *cfg = make_config(1500, ZCD_UNKNOWN_UNICAST_DROP);
	struct zcd_demux_table t;

	CHECK_EQ(zcd_demux_build(&t, cfg, NULL), 0);
	expect_unicast(classify(&t, 60, MAC1, 0, 0), VM1, 0);
	expect_unicast(classify(&t, 1514, MAC1B, 0, 0), VM1, 0);
	expect_unicast(classify(&t, 100, MAC2, 0x8100, 10), VM2, 10);
	/* Same MAC, other VLAN, other VM; PCP and DEI bits do not matter. */
	expect_unicast(classify(&t, 100, MAC1, 0x8100, 10), VM3, 10);
	expect_unicast(classify(&t, 100, MAC1, 0x8100, 0xe000 | 10), VM3, 10);
	expect_unicast(classify(&t, 100, MAC3, 0x8100, 20), VM4, 20);
	/* A priority tag (VID 0) is untagged for the demux. */
	expect_unicast(classify(&t, 100, MAC1, 0x8100, 0x2000), VM1, 0);
	/* Right MAC, wrong VLAN; 802.1ad outer tags are not 802.1Q. */
	expect_drop(classify(&t, 100, MAC2, 0, 0), ZCD_DROP_UNKNOWN_UNICAST);
	expect_drop(classify(&t, 100, MAC2, 0x8100, 11), ZCD_DROP_UNKNOWN_UNICAST);
	expect_drop(classify(&t, 100, MAC2, 0x88a8, 10), ZCD_DROP_UNKNOWN_UNICAST);
	expect_drop(classify(&t, 100, UNKNOWN, 0, 0), ZCD_DROP_UNKNOWN_UNICAST);
	zcd_demux_free(&t);
	free(cfg);
}

static void test_unknown_unicast_to_vm(void)
{
	struct zcd_config *cfg = make_config(1500, VM4);
	struct zcd_demux_table t;

	CHECK_EQ(zcd_demux_build(&t, cfg, NULL), 0);
	/* Any VLAN: the named VM takes whatever matched nothing. */
	expect_unicast(classify(&t, 100, UNKNOWN, 0, 0), VM4, 0);
	expect_unicast(classify(&t, 100, UNKNOWN, 0x8100, 33), VM4, 33);
	expect_unicast(classify(&t, 100, MAC1, 0, 0), VM1, 0);
	zcd_demux_free(&t);
	free(cfg);
}

static void test_flood(void)
{
	struct zcd_config *cfg = make_config(1500, VM1);
	struct zcd_demux_table t;
	struct zcd_class_result r;
	const uint16_t *members;

	CHECK_EQ(zcd_demux_build(&t, cfg, NULL), 0);
	r = classify(&t, 60, BROADCAST, 0x8100, 10);
	CHECK_EQ(r.kind, ZCD_CLASS_FLOOD);
	CHECK_EQ(r.vlan, 10);
	CHECK_EQ(zcd_demux_flood_members(&t, 10, &members), 2);
	CHECK_EQ(members[0], VM2);
	CHECK_EQ(members[1], VM3);
	r = classify(&t, 60, MCAST4, 0, 0);
	CHECK_EQ(r.kind, ZCD_CLASS_FLOOD);
	CHECK_EQ(r.vlan, 0);
	CHECK_EQ(zcd_demux_flood_members(&t, 0, &members), 1);
	CHECK_EQ(members[0], VM1);
	r = classify(&t, 60, MCAST6, 0x8100, 20);
	CHECK_EQ(r.kind, ZCD_CLASS_FLOOD);
	CHECK_EQ(zcd_demux_flood_members(&t, 20, &members), 1);
	CHECK_EQ(members[0], VM4);
	/* No VM on VLAN 30 or 4095: nobody hears it, even with unknown_unicast set. */
	expect_drop(classify(&t, 60, BROADCAST, 0x8100, 30), ZCD_DROP_NO_RECEIVER);
	expect_drop(classify(&t, 60, BROADCAST, 0x8100, 4095), ZCD_DROP_NO_RECEIVER);
	zcd_demux_free(&t);
	free(cfg);
}

static void test_lengths(void)
{
	struct zcd_config *cfg = make_config(1500, ZCD_UNKNOWN_UNICAST_DROP);
	struct zcd_demux_table t;

	CHECK_EQ(zcd_demux_build(&t, cfg, NULL), 0);
	/* Runt wins over everything, even a broadcast. */
	expect_drop(classify(&t, 59, MAC1, 0, 0), ZCD_DROP_RUNT);
	expect_drop(classify(&t, 18, BROADCAST, 0, 0), ZCD_DROP_RUNT);
	expect_drop(zcd_classify(&t, (const uint8_t *)"", 0), ZCD_DROP_RUNT);
	expect_unicast(classify(&t, 1514, MAC1, 0, 0), VM1, 0);
	expect_drop(classify(&t, 1515, MAC1, 0, 0), ZCD_DROP_OVERSIZE);
	expect_unicast(classify(&t, 1518, MAC2, 0x8100, 10), VM2, 10);
	expect_drop(classify(&t, 1519, MAC2, 0x8100, 10), ZCD_DROP_OVERSIZE);
	/* A priority-tagged frame carries a tag: the tagged limit applies. */
	expect_unicast(classify(&t, 1518, MAC1, 0x8100, 0), VM1, 0);
	expect_drop(classify(&t, 1519, MAC1, 0x8100, 0), ZCD_DROP_OVERSIZE);
	/* Oversize wins over unknown unicast and floods. */
	expect_drop(classify(&t, 9000, UNKNOWN, 0, 0), ZCD_DROP_OVERSIZE);
	expect_drop(classify(&t, 1515, BROADCAST, 0, 0), ZCD_DROP_OVERSIZE);
	zcd_demux_free(&t);
	free(cfg);

	cfg = make_config(9000, ZCD_UNKNOWN_UNICAST_DROP);
	CHECK_EQ(zcd_demux_build(&t, cfg, NULL), 0);
	expect_unicast(classify(&t, 9014, MAC1, 0, 0), VM1, 0);
	expect_drop(classify(&t, 9015, MAC1, 0, 0), ZCD_DROP_OVERSIZE);
	expect_unicast(classify(&t, 9018, MAC2, 0x8100, 10), VM2, 10);
	expect_drop(classify(&t, 9019, MAC2, 0x8100, 10), ZCD_DROP_OVERSIZE);
	zcd_demux_free(&t);
	free(cfg);
}

/* Many VMs and MACs: every key is found, nothing else is. */
static void test_many_keys(void)
{
	struct zcd_config *cfg = calloc(1, sizeof(*cfg));
	struct zcd_demux_table t;
	unsigned found = 0;

	cfg->mtu = 1500;
	cfg->unknown_unicast_vm = ZCD_UNKNOWN_UNICAST_DROP;
	for (unsigned v = 0; v < ZCD_MAX_VMS; v++) {
		struct zcd_vm_config *vm = &cfg->vms[cfg->nb_vms++];

		vm->vlan = (uint16_t)(v % 7 == 0 ? 0 : v % 7 + 100);
		for (unsigned m = 0; m < 4; m++) {
			uint8_t mac[6] = {0x02, 0x10, (uint8_t)m, 0, (uint8_t)(v >> 8), (uint8_t)v};

			memcpy(vm->macs[vm->nb_macs++], mac, 6);
		}
	}
	CHECK_EQ(zcd_demux_build(&t, cfg, NULL), 0);
	for (unsigned v = 0; v < cfg->nb_vms; v++) {
		for (unsigned m = 0; m < 4; m++) {
			int vm = zcd_demux_lookup(&t, cfg->vms[v].vlan, cfg->vms[v].macs[m]);

			found += vm == (int)v;
			CHECK_EQ(zcd_demux_lookup(&t, (uint16_t)(cfg->vms[v].vlan + 1),
						  cfg->vms[v].macs[m]),
				 -1);
		}
	}
	CHECK_EQ(found, ZCD_MAX_VMS * 4);
	zcd_demux_free(&t);
	free(cfg);
}

int main(void)
{
	test_unicast();
	test_unknown_unicast_to_vm();
	test_flood();
	test_lengths();
	test_many_keys();
	return check_report("test_classify");
}
