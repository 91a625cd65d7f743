/* SPDX-License-Identifier: BSD-3-Clause */
/* Building the demux table; the per-frame lookup is inline in classify.h. */
#include <errno.h>
#include <stdlib.h>

#include "classify.h"

static void demux_insert(struct zcd_demux_table *t, uint64_t key, uint16_t vm)
{
	uint32_t slot = zcd_demux_slot(t, key);

	while (t->keys[slot] != ZCD_DEMUX_EMPTY)
		slot = (slot + 1) & t->mask;
	t->keys[slot] = key;
	t->vms[slot] = vm;
}

#define LISTED(listed, v) ((listed) == NULL || (listed)[v])

int zcd_demux_build(struct zcd_demux_table *t, const struct zcd_config *cfg, const bool *listed)
{
	unsigned nb_keys = 0, filled[ZCD_VID_COUNT] = {0};
	uint32_t slots = 16;

	*t = (struct zcd_demux_table){0};
	for (unsigned v = 0; v < cfg->nb_vms; v++)
		if (LISTED(listed, v))
			nb_keys += cfg->vms[v].nb_macs;
	/* At most half full, so that probe sequences stay short. */
	while (slots < 2 * nb_keys)
		slots *= 2;
	t->keys = malloc(slots * sizeof(*t->keys));
	t->vms = malloc(slots * sizeof(*t->vms));
	t->flood_vms = malloc((cfg->nb_vms + 1) * sizeof(*t->flood_vms));
	if (t->keys == NULL || t->vms == NULL || t->flood_vms == NULL) {
		zcd_demux_free(t);
		errno = ENOMEM;
		return -1;
	}
	t->mask = slots - 1;
	for (uint32_t s = 0; s < slots; s++)
		t->keys[s] = ZCD_DEMUX_EMPTY;
	for (unsigned v = 0; v < cfg->nb_vms; v++)
		for (unsigned m = 0; LISTED(listed, v) && m < cfg->vms[v].nb_macs; m++)
			demux_insert(t, zcd_demux_key(cfg->vms[v].vlan, cfg->vms[v].macs[m]),
				     (uint16_t)v);

	/* Flood lists: count VMs per VID, prefix-sum, then fill in config order. */
	for (unsigned v = 0; v < cfg->nb_vms; v++)
		if (LISTED(listed, v))
			t->flood_start[cfg->vms[v].vlan + 1]++;
	for (unsigned vid = 0; vid < ZCD_VID_COUNT; vid++)
		t->flood_start[vid + 1] += t->flood_start[vid];
	for (unsigned v = 0; v < cfg->nb_vms; v++) {
		uint16_t vid = cfg->vms[v].vlan;

		if (!LISTED(listed, v))
			continue;
		t->flood_vms[t->flood_start[vid] + filled[vid]++] = (uint16_t)v;
	}

	t->limit_untagged = zcd_frame_limit(cfg->mtu, false);
	t->limit_tagged = zcd_frame_limit(cfg->mtu, true);
	t->unknown_unicast_vm = cfg->unknown_unicast_vm;
	if (t->unknown_unicast_vm >= 0 && !LISTED(listed, (unsigned)t->unknown_unicast_vm))
		t->unknown_unicast_vm = ZCD_UNKNOWN_UNICAST_DROP;
	return 0;
}

void zcd_demux_free(struct zcd_demux_table *t)
{
	free(t->keys);
	free(t->vms);
	free(t->flood_vms);
	*t = (struct zcd_demux_table){0};
}

const char *zcd_drop_reason_name(enum zcd_drop_reason reason)
{
	static const char *const names[ZCD_DROP_REASON_COUNT] = {
		[ZCD_DROP_RUNT] = "runt",
		[ZCD_DROP_OVERSIZE] = "oversize",
		[ZCD_DROP_UNKNOWN_UNICAST] = "unknown_unicast",
		[ZCD_DROP_NO_RECEIVER] = "no_receiver",
	};

	return (unsigned)reason < ZCD_DROP_REASON_COUNT ? names[reason] : "invalid";
}
