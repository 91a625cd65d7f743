/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the frame classifier against a plain reimplementation.
 *
 * The input's first bytes describe a configuration (VMs, their VLANs and
 * MACs drawn from a small set so that frames hit them, the MTU, where
 * unknown unicast goes); the rest is the frame.  The demux table built from
 * that configuration must classify the frame exactly as a linear search of
 * the configuration does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"

#define NB_VLANS 4
#define NB_MAC_CHOICES 8

static const uint16_t vlan_choices[NB_VLANS] = {0, 1, 10, 4094};

/* Take one byte of the description, or 0 once it runs out. */
static uint8_t take(const uint8_t **data, size_t *size)
{
	uint8_t b = 0;

	if (*size != 0) {
		b = **data;
		(*data)++;
		(*size)--;
	}
	return b;
}

static bool in_use(const struct zcd_config *cfg, uint16_t vlan, const uint8_t mac[6])
{
	for (unsigned v = 0; v < cfg->nb_vms; v++)
		for (unsigned m = 0; m < cfg->vms[v].nb_macs; m++)
			if (cfg->vms[v].vlan == vlan && memcmp(cfg->vms[v].macs[m], mac, 6) == 0)
				return true;
	return false;
}

/* A valid configuration, as the loader would have accepted it. */
static void describe(struct zcd_config *cfg, const uint8_t **data, size_t *size)
{
	uint8_t b = take(data, size);

	cfg->mtu = ZCD_MTU_MIN + (uint32_t)(b * 37 % (ZCD_MTU_MAX - ZCD_MTU_MIN + 1));
	cfg->nb_vms = 1 + take(data, size) % 6;
	for (unsigned v = 0; v < cfg->nb_vms; v++) {
		struct zcd_vm_config *vm = &cfg->vms[v];
		unsigned want = 1 + take(data, size) % 3;

		vm->vlan = vlan_choices[take(data, size) % NB_VLANS];
		vm->credits = ZCD_CREDITS_DEFAULT;
		for (unsigned m = 0; m < want; m++) {
			uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)(take(data, size) % NB_MAC_CHOICES)};

			if (!in_use(cfg, vm->vlan, mac))
				memcpy(vm->macs[vm->nb_macs++], mac, 6);
		}
		if (vm->nb_macs == 0) /* every choice taken: a MAC of its own */
			memcpy(vm->macs[vm->nb_macs++], (uint8_t[6]){0x06, 0, 0, 0, 0, (uint8_t)v}, 6);
	}
	b = take(data, size);
	cfg->unknown_unicast_vm = b < 128 ? ZCD_UNKNOWN_UNICAST_DROP : (int)(b % cfg->nb_vms);
}

/* What the classifier must say, by the rules written out. */
static struct zcd_class_result reference(const struct zcd_config *cfg, const uint8_t *f,
					 uint32_t len)
{
	struct zcd_class_result r = {.kind = ZCD_CLASS_DROP};
	bool tagged;

	if (len < ZCD_MIN_FRAME) {
		r.drop = ZCD_DROP_RUNT;
		return r;
	}
	tagged = f[12] == 0x81 && f[13] == 0x00;
	r.vlan = tagged ? (uint16_t)((f[14] & 0x0f) << 8 | f[15]) : 0;
	if (len > zcd_frame_limit(cfg->mtu, tagged)) {
		r.drop = ZCD_DROP_OVERSIZE;
		return r;
	}
	if (f[0] & 1) {
		for (unsigned v = 0; v < cfg->nb_vms; v++)
			if (cfg->vms[v].vlan == r.vlan) {
				r.kind = ZCD_CLASS_FLOOD;
				return r;
			}
		r.drop = ZCD_DROP_NO_RECEIVER;
		return r;
	}
	for (unsigned v = 0; v < cfg->nb_vms; v++)
		for (unsigned m = 0; m < cfg->vms[v].nb_macs; m++)
			if (cfg->vms[v].vlan == r.vlan && memcmp(cfg->vms[v].macs[m], f, 6) == 0) {
				r.kind = ZCD_CLASS_UNICAST;
				r.vm = (uint16_t)v;
				return r;
			}
	if (cfg->unknown_unicast_vm == ZCD_UNKNOWN_UNICAST_DROP) {
		r.drop = ZCD_DROP_UNKNOWN_UNICAST;
		return r;
	}
	r.kind = ZCD_CLASS_UNICAST;
	r.vm = (uint16_t)cfg->unknown_unicast_vm;
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct zcd_config cfg;
	static uint8_t frame[ZCD_MTU_MAX + 64];
	struct zcd_demux_table table;
	struct zcd_class_result got, want;
	uint32_t len;

	memset(&cfg, 0, sizeof(cfg));
	describe(&cfg, &data, &size);
	/* The frame: the rest of the input, padded with zeros to a length
	 * that the input's last two bytes may stretch (oversize frames). */
	len = (uint32_t)(size < sizeof(frame) ? size : sizeof(frame));
	memset(frame, 0, sizeof(frame));
	memcpy(frame, data, len);
	if (size >= 2)
		len += (uint32_t)(data[size - 2] << 8 | data[size - 1]) % 64;
	if (zcd_demux_build(&table, &cfg, NULL) != 0)
		abort();
	got = zcd_classify(&table, frame, len);
	want = reference(&cfg, frame, len);
	if (got.kind != want.kind || (got.kind == ZCD_CLASS_DROP && got.drop != want.drop) ||
	    (got.kind != ZCD_CLASS_DROP && got.vlan != want.vlan) ||
	    (got.kind == ZCD_CLASS_UNICAST && got.vm != want.vm)) {
		fprintf(stderr, "fuzz_classify: %u-byte frame: got kind %u drop %u vlan %u vm %u, "
			"want kind %u drop %u vlan %u vm %u\n", len, got.kind, got.drop, got.vlan,
			got.vm, want.kind, want.drop, want.vlan, want.vm);
		abort();
	}
	if (got.kind == ZCD_CLASS_FLOOD) {
		const uint16_t *members;
		unsigned n = zcd_demux_flood_members(&table, got.vlan, &members), k = 0;

		/* Exactly the VMs on that VLAN, in configuration order. */
		for (unsigned v = 0; v < cfg.nb_vms; v++) {
			if (cfg.vms[v].vlan != got.vlan)
				continue;
			if (k >= n || members[k] != v)
				abort();
			k++;
		}
		if (k != n)
			abort();
	}
	zcd_demux_free(&table);
	return 0;
}
