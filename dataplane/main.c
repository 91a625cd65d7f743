/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zcdemux: command line, start-up order and exit status.
 *
 * The configuration is read and checked before DPDK starts, so that a bad
 * file costs nothing and leaves nothing behind.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>

#include "dataplane.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static volatile sig_atomic_t quit;
static volatile sig_atomic_t reload;

struct app_options {
	const char *config;
	const char *stats_json;
	const char *state;
	bool standby;
	bool inject_dma_fault;
	struct zcd_run_limits limits;
};

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s [EAL options] -- --config FILE [options]\n"
		"\n"
		"Zero-copy receive demultiplexer.  Receives frames from DPDK ports into a pool of\n"
		"page-sized buffers that belong to no guest, demultiplexes them by destination MAC\n"
		"and VLAN, and hands each buffer to its VM by remapping the page instead of\n"
		"copying it.  VMs return buffers; they are revoked, scrubbed and reused.\n"
		"\n"
		"Options (after --):\n"
		"  -c, --config FILE          YAML configuration (required): ports, hypervisor and\n"
		"                             IOMMU backends, dataplane settings, VMs with their\n"
		"                             MACs, VLAN and credits.  See configs/demo.yaml.\n"
		"  -s, --stats-json FILE      write every counter as JSON to FILE at exit (and at\n"
		"                             every --stats-interval, replacing it whole).\n"
		"  -i, --stats-interval SEC   log a line of totals every SEC seconds.\n"
		"  -e, --idle-exit MS         exit once no frame has arrived for MS milliseconds\n"
		"                             and every VM has consumed what it was given.\n"
		"  -d, --duration SEC         exit after SEC seconds.\n"
		"  -S, --state FILE           keep the buffer ledger and every counter in FILE\n"
		"                             (on tmpfs or hugetlbfs, e.g. /run/zcdemux/state),\n"
		"                             locked while zcdemux runs.  A zcdemux started on\n"
		"                             it after one that was killed accounts for what\n"
		"                             that one left (frames in flight counted as lost,\n"
		"                             buffers VMs held taken back) and counts on from\n"
		"                             its totals; generations go on, so no return made\n"
		"                             to the earlier process is ever taken for a new\n"
		"                             one.  With the sim backend the pool and the\n"
		"                             guests' rings are kept beside it (FILE.pool,\n"
		"                             FILE.sim.<vm>): guests that ran on are taken over\n"
		"                             with the buffers they hold.  Without it, nothing\n"
		"                             outlives the process.\n"
		"      --standby              with --state: if another zcdemux holds FILE, wait\n"
		"                             (before starting DPDK or touching a port) until it\n"
		"                             stops, however it stops, then take over.\n"
		"  -h, --help                 print this help and exit.\n"
		"\n"
		"Testing (never in production):\n"
		"      --inject-dma-fault     once a buffer is handed to a VM, post its old IOVA\n"
		"                             to the device again, as a stale descriptor would.\n"
		"                             With an IOMMU backend in strict mode the device's\n"
		"                             write must fault and the VM's page stay unchanged;\n"
		"                             the stats JSON reports what happened.\n"
		"\n"
		"Common EAL options (before --):\n"
		"  -l CORES                   lcores that poll (default: all cores).  With N\n"
		"                             lcores each port gets up to N RX queues, spread\n"
		"                             by RSS where the device hashes; lcore k polls\n"
		"                             queue k of every port.  The first (main) lcore\n"
		"                             also takes returns, handles guests coming and\n"
		"                             going, and reports.  Use -l with one core for\n"
		"                             iommu.check and --inject-dma-fault.\n"
		"  --no-huge -m MB            run without hugepages in MB of ordinary memory\n"
		"                             (cannot be combined with --in-memory).\n"
		"  --no-pci                   probe no PCI devices (virtual devices only).\n"
		"  --file-prefix NAME         run beside other DPDK processes.\n"
		"  --log-level=zcdemux:debug  more detail from zcdemux itself.\n"
		"  Ports are probed from the devargs in the configuration; see the DPDK EAL\n"
		"  documentation for every other option.\n"
		"\n"
		"Signals: SIGINT and SIGTERM stop it cleanly: every VM is disconnected, every\n"
		"buffer is taken back (returned or not), scrubbed and counted, and the\n"
		"statistics are written.\n"
		"SIGHUP reloads the configuration file: VMs may be added and removed, and\n"
		"their MACs, VLAN and credits, and dataplane.copy_threshold, unknown_unicast\n"
		"and credit_timeout_ms changed, while traffic to the other VMs flows on.  A\n"
		"removed VM is disconnected and its buffers are taken back.  A VM whose\n"
		"credits are cut is asked to give back what it holds over them; if it has\n"
		"not within credit_timeout_ms, it is cut off and its buffers taken back.  A\n"
		"file with an error, or one that changes what needs a restart (ports,\n"
		"backends, iommu, the pool's size, mtu, burst, a running VM's notify, sim\n"
		"or xen settings, credits above what it connected with), is rejected with\n"
		"a message naming the file, line and key, and the running configuration\n"
		"stays.\n"
		"\n"
		"Telemetry (dpdk-telemetry.py): /zcdemux/ports, /zcdemux/vms, /zcdemux/drops,\n"
		"/zcdemux/pool; /zcdemux/reload reloads as SIGHUP does and answers with the\n"
		"outcome.\n"
		"\n"
		"Exit status: 0 after a clean run; 1 if start-up failed or the pool was not whole\n"
		"at exit; 2 for a usage or configuration error (reported before DPDK starts).\n"
		"\n"
		"Example:\n"
		"  %s --no-huge -m 512 --no-pci -l 0 -- -c configs/demo.yaml --idle-exit 500\n",
		prog, prog);
}

/* Strict unsigned decimal; 0 on success, -1 otherwise. */
static int parse_u64(const char *text, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Parse the options after "--".  0, or -1 after printing why. */
static int parse_app_options(int argc, char **argv, const char *prog, struct app_options *opt)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"stats-json", required_argument, NULL, 's'},
		{"stats-interval", required_argument, NULL, 'i'},
		{"idle-exit", required_argument, NULL, 'e'},
		{"duration", required_argument, NULL, 'd'},
		{"state", required_argument, NULL, 'S'},
		{"standby", no_argument, NULL, 'W'},
		{"help", no_argument, NULL, 'h'},
		{"inject-dma-fault", no_argument, NULL, 'F'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":c:s:i:e:d:S:h", longopts, NULL)) != -1) {
		uint64_t *limit = NULL;
		const char *unit = NULL;

		switch (c) {
		case 'c':
			opt->config = optarg;
			continue;
		case 's':
			opt->stats_json = optarg;
			continue;
		case 'F':
			opt->inject_dma_fault = true;
			continue;
		case 'S':
			opt->state = optarg;
			continue;
		case 'W':
			opt->standby = true;
			continue;
		case 'i':
			limit = &opt->limits.stats_interval_s;
			unit = "seconds";
			break;
		case 'e':
			limit = &opt->limits.idle_exit_ms;
			unit = "milliseconds";
			break;
		case 'd':
			limit = &opt->limits.duration_s;
			unit = "seconds";
			break;
		case ':':
			fprintf(stderr, "%s: %s needs a value (see --help)\n", prog, argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, "%s: unknown option %s (see --help)\n", prog, argv[optind - 1]);
			return -1;
		}
		if (parse_u64(optarg, UINT32_MAX, limit) != 0) {
			const struct option *o = longopts;

			while (o->val != c)
				o++;
			fprintf(stderr, "%s: --%s: \"%s\" is not a whole number of %s\n", prog,
				o->name, optarg, unit);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\" (see --help)\n", prog, argv[optind]);
		return -1;
	}
	if (opt->config == NULL) {
		fprintf(stderr, "%s: --config FILE is required, after -- (see --help)\n", prog);
		return -1;
	}
	if (opt->standby && opt->state == NULL) {
		fprintf(stderr, "%s: --standby needs --state FILE: the lock it waits on\n", prog);
		return -1;
	}
	optind = 1;
	return 0;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	return false;
}

static void on_signal(int signo)
{
	if (signo == SIGHUP)
		reload = 1;
	else
		quit = 1;
}

static void install_signal_handlers(void)
{
	struct sigaction sa = {.sa_handler = on_signal};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* The ports' receive rings and a burst each must fit in an explicit pool. */
static int check_pool_size(const struct zcd_config *cfg)
{
	uint64_t need = (uint64_t)cfg->nb_ports * (cfg->rx_descriptors + cfg->burst);

	if (cfg->buffers != 0 && cfg->buffers <= need) {
		fprintf(stderr,
			"%s: dataplane.buffers: %u is too small: the ports alone need more than %" PRIu64
			" (ports x (rx_descriptors + burst))\n",
			cfg->path, cfg->buffers, need);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *prog = argc > 0 ? argv[0] : "zcdemux";
	struct app_options opt = {0};
	struct zcd_dataplane dp;
	struct zcd_state *state = NULL;
	struct zcd_config *cfg;
	int eal_argc = argc, rc, status = EXIT_SUCCESS;
	char err[512];

	/* Log lines reach a pipe or the journal as they happen. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (wants_help(argc, argv)) {
		usage(stdout, prog);
		return EXIT_SUCCESS;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			eal_argc = i;
			break;
		}
	}
	if (eal_argc == argc) {
		fprintf(stderr, "%s: application options go after -- (see --help)\n", prog);
		return EXIT_USAGE;
	}
	argv[eal_argc] = (char *)(uintptr_t)prog; /* the app's argv[0] for getopt */
	if (parse_app_options(argc - eal_argc, argv + eal_argc, prog, &opt) != 0)
		return EXIT_USAGE;
	cfg = zcd_config_load(opt.config, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return EXIT_USAGE;
	}
	if (check_pool_size(cfg) != 0) {
		zcd_config_free(cfg);
		return EXIT_USAGE;
	}
	/* A standby waits here, before DPDK or any port is touched. */
	if (opt.state != NULL) {
		state = zcd_state_lock(opt.state, opt.standby, err, sizeof(err));
		if (state == NULL) {
			fprintf(stderr, "%s: --state %s\n", prog, err);
			zcd_config_free(cfg);
			return EXIT_RUNTIME;
		}
	}

	rc = rte_eal_init(eal_argc, argv);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot initialise DPDK EAL: %s\n", prog, rte_strerror(rte_errno));
		zcd_state_close(state);
		zcd_config_free(cfg);
		return EXIT_RUNTIME;
	}
	install_signal_handlers();

	if (zcd_dataplane_init(&dp, cfg, state) != 0) {
		zcd_dataplane_fini(&dp);
		rte_eal_cleanup();
		zcd_state_close(state);
		zcd_config_free(cfg);
		return EXIT_RUNTIME;
	}
	if (opt.inject_dma_fault && dp.nb_workers > 1) {
		fprintf(stderr, "%s: --inject-dma-fault needs a single polling lcore (EAL option -l)\n",
			prog);
		zcd_dataplane_fini(&dp);
		rte_eal_cleanup();
		zcd_state_close(state);
		zcd_config_free(cfg);
		return EXIT_USAGE;
	}
	dp.pool->fault.armed = opt.inject_dma_fault;
	if (zcd_stats_register_telemetry(&dp) != 0)
		ZCD_LOG(WARNING, "telemetry commands not registered\n");
	ZCD_LOG(INFO, "running: %u port(s), %u VM(s), %u polling lcore(s), hypervisor %s, iommu %s\n",
		dp.nb_ports, dp.nb_vms, dp.nb_workers, cfg->hv_backend, cfg->iommu_backend);

	opt.limits.stats_json = opt.stats_json;
	if (zcd_dataplane_run(&dp, &opt.limits, &quit, &reload) != 0)
		status = EXIT_RUNTIME;

	if (zcd_dataplane_shutdown(&dp) != 0)
		status = EXIT_RUNTIME;
	else
		zcd_state_mark_clean(state);
	zcd_stats_print_summary(&dp);
	if (opt.stats_json != NULL && zcd_stats_write_json(&dp, opt.stats_json) != 0) {
		ZCD_LOG(ERR, "cannot write %s: %s\n", opt.stats_json, strerror(errno));
		status = EXIT_RUNTIME;
	}
	zcd_stats_unregister_telemetry();
	zcd_dataplane_fini(&dp);
	rte_eal_cleanup();
	zcd_state_close(state);
	zcd_config_free(cfg);
	return status;
}
