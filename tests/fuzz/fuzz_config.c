/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the YAML configuration loader on arbitrary bytes.
 *
 * Every input either loads into a configuration that keeps the loader's
 * promises (bounds, defaults, no duplicate MAC on a VLAN) or is refused
 * with one line that names the file; nothing else may happen.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zcdemux/config.h"

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_config: broken promise: %s\n", what);
		abort();
	}
}

static void check_loaded(const struct zcd_config *cfg)
{
	check(cfg->nb_ports >= 1 && cfg->nb_ports <= ZCD_MAX_PORTS, "port count");
	check(cfg->nb_vms >= 1 && cfg->nb_vms <= ZCD_MAX_VMS, "VM count");
	check(cfg->mtu >= ZCD_MTU_MIN && cfg->mtu <= ZCD_MTU_MAX, "mtu");
	check(cfg->burst >= ZCD_BURST_MIN && cfg->burst <= ZCD_BURST_MAX, "burst");
	check(cfg->rx_descriptors >= ZCD_RX_DESC_MIN && cfg->rx_descriptors <= ZCD_RX_DESC_MAX,
	      "rx_descriptors");
	check(cfg->buffers <= ZCD_BUFFERS_MAX, "buffers");
	check(cfg->unknown_unicast_vm == ZCD_UNKNOWN_UNICAST_DROP ||
		      (cfg->unknown_unicast_vm >= 0 && (unsigned)cfg->unknown_unicast_vm < cfg->nb_vms),
	      "unknown_unicast target");
	for (unsigned v = 0; v < cfg->nb_vms; v++) {
		const struct zcd_vm_config *vm = &cfg->vms[v];

		check(vm->nb_macs >= 1 && vm->nb_macs <= ZCD_MAX_MACS_PER_VM, "MACs per VM");
		check(vm->vlan <= 4094, "VLAN");
		check(vm->credits >= ZCD_CREDITS_MIN && vm->credits <= ZCD_CREDITS_MAX, "credits");
		check(memchr(vm->name, '\0', sizeof(vm->name)) != NULL, "VM name terminated");
		for (unsigned m = 0; m < vm->nb_macs; m++) {
			check(!(vm->macs[m][0] & 1), "unicast MAC");
			/* No (VLAN, MAC) twice, in this VM or another. */
			for (unsigned w = 0; w <= v; w++)
				for (unsigned k = 0; k < (w == v ? m : cfg->vms[w].nb_macs); k++)
					check(cfg->vms[w].vlan != vm->vlan ||
						      memcmp(cfg->vms[w].macs[k], vm->macs[m], 6) != 0,
					      "duplicate MAC on a VLAN");
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct zcd_config *cfg;
	char err[1024];

	if (fd < 0) {
		fd = memfd_create("zcd-fuzz-config.yaml", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	err[0] = '\0';
	cfg = zcd_config_load(path, err, sizeof(err));
	if (cfg == NULL) {
		check(strncmp(err, path, strlen(path)) == 0, "the error names the file");
		check(strchr(err, '\n') == NULL || strchr(err, '\n')[1] == '\0', "one line");
		return 0;
	}
	check_loaded(cfg);
	zcd_config_free(cfg);
	return 0;
}
