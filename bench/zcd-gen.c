/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zcd-gen: a DPDK traffic generator for zcdemux's end-to-end benchmark.
 * Sends frames to the VMs of a zcdemux configuration (their MACs and
 * VLANs, round robin) out of DPDK port 0 at a fixed rate for a fixed time,
 * and reports what it offered as one JSON line:
 *
 *   {"warmup_sent": N, "offered": N, "sent": N, "not_taken": N, "received": N,
 *    "seconds": S, "mpps": R}
 *
 * "not_taken" are frames the port refused (its ring was full: the receiver
 * did not keep up), counted as lost.  With --receive, frames that come back
 * on the port (a forwarding receiver) are received and freed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "tool.h"
#include "zcdemux/config.h"

#define GEN_BURST 32
#define GEN_RING 1024
#define GEN_MBUFS 8191
#define MAX_TEMPLATES 512
#define LINK_WAIT_S 10
#define LINK_SETTLE_MS 500
#define LINGER_MS 200
#define HOLD_POLL_US 10000
#define TEARDOWN_WAIT_US 200000
#define ETH_FCS_LEN 4

/* IMIX: 7 parts 64 B, 4 parts 594 B, 1 part 1518 B. */
static const uint16_t imix_sizes[] = {64, 64, 64, 64, 64, 64, 64, 594, 594, 594, 594, 1518};

struct gen_opts {
	const char *config;
	uint32_t size; /* 0 = IMIX */
	double rate_pps; /* 0 = as fast as the port takes them */
	double seconds;
	double warmup; /* seconds sent first, not counted */
	bool receive; /* the port has an rx queue: the peer sends frames back */
	bool hold; /* after the report, keep the port open until the peer leaves */
};

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s [EAL options] -- --config FILE [options]\n"
		"       %s --list-vms --config FILE\n"
		"\n"
		"Send frames to the VMs of the zcdemux configuration FILE (each VM's first\n"
		"MAC, its VLAN tag if it has one; round robin) out of DPDK port 0, at a fixed\n"
		"rate for a fixed time, then print one JSON line: frames offered, sent, not\n"
		"taken by the port (its ring was full), received back, seconds, Mpps.\n"
		"Typical EAL options: --no-huge -m 512 --no-pci -l 0\n"
		"  --vdev net_memif0,role=client,socket=/tmp/zcd.sock\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE    the zcdemux configuration to take VMs from (required)\n"
		"  -s, --size BYTES     frame size on the wire, with the 4-byte FCS (RFC 2544),\n"
		"                       64..9022, or \"imix\" (64:594:1518 in 7:4:1) (default 64);\n"
		"                       the FCS itself is the port's business\n"
		"  -r, --rate PPS       frames per second offered (default 0: as fast as the\n"
		"                       port takes them)\n"
		"  -t, --time SECONDS   how long to send and count (default 2)\n"
		"  -w, --warmup SECONDS send at the same rate this long first, not counted\n"
		"                       but reported as warmup_sent (default 0)\n"
		"  -b, --receive        also receive (and free) frames coming back, for a\n"
		"                       forwarding peer; a shared-memory port's queues must\n"
		"                       match the peer's (memif: our rx = its tx)\n"
		"  -H, --hold           after the report, keep the port open, no longer\n"
		"                       polling it, until the peer closes the link or a\n"
		"                       signal comes; stop the receiver first (see below)\n"
		"  -h, --help           this text\n"
		"\n"
		"--list-vms prints \"NAME MAC VLAN\" for every MAC of every VM of FILE (VLAN 0:\n"
		"untagged) and exits, without starting DPDK: the pktgen scripts use it.\n"
		"\n"
		"With net_memif, the side that sees its peer leave unmaps the shared rings\n"
		"from DPDK's interrupt thread, even while an RX burst is reading them\n"
		"(DPDK 22.11): a receiver polling a memif port can crash when the sender\n"
		"exits first.  --hold lets the receiver stop first.\n",
		prog, prog);
}

static int parse_options(int argc, char **argv, const char *prog, struct gen_opts *o)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'}, {"size", required_argument, NULL, 's'},
		{"rate", required_argument, NULL, 'r'},   {"time", required_argument, NULL, 't'},
		{"receive", no_argument, NULL, 'b'},      {"help", no_argument, NULL, 'h'},
		{"warmup", required_argument, NULL, 'w'}, {"hold", no_argument, NULL, 'H'},
		{NULL, 0, NULL, 0},
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "c:s:r:t:w:bHh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 's':
			if (strcmp(optarg, "imix") == 0) {
				o->size = 0;
				break;
			}
			o->size = (uint32_t)strtoul(optarg, &end, 10);
			if (*end != '\0' || o->size < 64 || o->size > 9022) {
				fprintf(stderr, "%s: --size: \"%s\": 64..9022 or imix\n", prog, optarg);
				return -1;
			}
			break;
		case 'r':
			o->rate_pps = strtod(optarg, &end);
			if (*end != '\0' || o->rate_pps < 0) {
				fprintf(stderr, "%s: --rate: \"%s\" is not a rate\n", prog, optarg);
				return -1;
			}
			break;
		case 't':
			o->seconds = strtod(optarg, &end);
			if (*end != '\0' || o->seconds <= 0 || o->seconds > 3600) {
				fprintf(stderr, "%s: --time: \"%s\": 0..3600 seconds\n", prog, optarg);
				return -1;
			}
			break;
		case 'b':
			o->receive = true;
			break;
		case 'H':
			o->hold = true;
			break;
		case 'w':
			o->warmup = strtod(optarg, &end);
			if (*end != '\0' || o->warmup < 0 || o->warmup > 60) {
				fprintf(stderr, "%s: --warmup: \"%s\": 0..60 seconds\n", prog, optarg);
				return -1;
			}
			break;
		case 'h':
			usage(stdout, prog);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr, prog);
			return -1;
		}
	}
	if (o->config == NULL || optind != argc) {
		fprintf(stderr, "%s: %s\n", prog,
			o->config == NULL ? "--config is required" : "unexpected arguments");
		return -1;
	}
	return 0;
}

struct template {
	uint8_t *data;
	uint16_t len;
};

/* One frame per (VM, size) in sending order: VMs round robin, sizes cycling. */
static unsigned build_templates(const struct zcd_config *cfg, uint32_t size, struct template *t)
{
	static const uint8_t src[6] = {0x02, 0x47, 0x45, 0x4e, 0x00, 0x01};
	unsigned nb_sizes = size != 0 ? 1 : RTE_DIM(imix_sizes);
	unsigned n = 0;

	for (unsigned s = 0; s < nb_sizes; s++)
		for (unsigned v = 0; v < cfg->nb_vms && n < MAX_TEMPLATES; v++) {
			const struct zcd_vm_config *vm = &cfg->vms[v];
			uint16_t len = (uint16_t)((size != 0 ? size : imix_sizes[s]) - ETH_FCS_LEN);
			uint8_t *f = calloc(1, len);
			unsigned off = 12;

			if (f == NULL)
				return n;
			memcpy(f, vm->macs[0], 6);
			memcpy(f + 6, src, 6);
			if (vm->vlan != 0) {
				f[off++] = 0x81;
				f[off++] = 0x00;
				f[off++] = (uint8_t)(vm->vlan >> 8);
				f[off++] = (uint8_t)vm->vlan;
			}
			f[off++] = 0x88; /* local experimental ethertype */
			f[off++] = 0xb5;
			for (unsigned i = off; i < len; i++)
				f[i] = (uint8_t)(i + v);
			t[n++] = (struct template){.data = f, .len = len};
		}
	return n;
}

static int port_start(uint16_t port, struct rte_mempool *mp, bool receive)
{
	struct rte_eth_conf conf = {0};
	struct rte_eth_link link;
	uint64_t deadline;
	int rc;

	rc = rte_eth_dev_configure(port, receive ? 1 : 0, 1, &conf);
	if (rc == 0 && receive)
		rc = rte_eth_rx_queue_setup(port, 0, GEN_RING, rte_socket_id(), NULL, mp);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(port, 0, GEN_RING, rte_socket_id(), NULL);
	if (rc == 0)
		rc = rte_eth_dev_start(port);
	if (rc != 0) {
		fprintf(stderr, "zcd-gen: port %u: %s\n", port, strerror(-rc));
		return -1;
	}
	/* A shared-memory port is up once its peer has connected. */
	deadline = rte_get_tsc_cycles() + LINK_WAIT_S * rte_get_tsc_hz();
	do {
		if (rte_eth_link_get_nowait(port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP) {
			/* Up here is not yet ready there: the peer maps the rings
			 * after it answers. */
			rte_delay_ms(LINK_SETTLE_MS);
			return 0;
		}
		rte_delay_ms(10);
	} while (rte_get_tsc_cycles() < deadline && !quit);
	fprintf(stderr, "zcd-gen: port %u: link not up after %d s\n", port, LINK_WAIT_S);
	return -1;
}

/* "NAME MAC VLAN" per VM and MAC (VLAN 0: untagged), as the loader read them. */
static int list_vms(const char *path)
{
	char err[512];
	struct zcd_config *cfg = zcd_config_load(path, err, sizeof(err));

	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	for (unsigned v = 0; v < cfg->nb_vms; v++)
		for (unsigned k = 0; k < cfg->vms[v].nb_macs; k++) {
			const uint8_t *m = cfg->vms[v].macs[k];

			printf("%s %02x:%02x:%02x:%02x:%02x:%02x %u\n", cfg->vms[v].name, m[0], m[1],
			       m[2], m[3], m[4], m[5], cfg->vms[v].vlan);
		}
	zcd_config_free(cfg);
	return 0;
}

struct gen_counts {
	uint64_t offered, sent, received, cycles;
};

/* Offer frames at the configured rate for seconds; what happened. */
static struct gen_counts send_for(const struct gen_opts *o, struct rte_mempool *mp,
				  const struct template *t, unsigned nb_t, unsigned *next,
				  double seconds)
{
	struct rte_mbuf *m[GEN_BURST];
	struct gen_counts c = {0};
	uint64_t hz = rte_get_tsc_hz(), start = rte_get_tsc_cycles(), now;
	uint64_t end = start + (uint64_t)(seconds * (double)hz);

	while (!quit && (now = rte_get_tsc_cycles()) < end) {
		uint64_t due = o->rate_pps > 0 ? (uint64_t)((double)(now - start) * o->rate_pps / (double)hz)
					       : c.offered + GEN_BURST;
		unsigned n = due > c.offered ? (unsigned)RTE_MIN(due - c.offered, (uint64_t)GEN_BURST) : 0;
		uint16_t got = o->receive ? rte_eth_rx_burst(0, 0, m, GEN_BURST) : 0;

		if (got != 0) {
			c.received += got;
			rte_pktmbuf_free_bulk(m, got);
		}
		if (n == 0 || rte_pktmbuf_alloc_bulk(mp, m, n) != 0)
			continue;
		for (unsigned i = 0; i < n; i++) {
			const struct template *f = &t[*next];

			memcpy(rte_pktmbuf_append(m[i], f->len), f->data, f->len);
			*next = *next + 1 == nb_t ? 0 : *next + 1;
		}
		got = rte_eth_tx_burst(0, 0, m, (uint16_t)n);
		if (got < n)
			rte_pktmbuf_free_bulk(m + got, n - got);
		c.offered += n;
		c.sent += got;
	}
	c.cycles = rte_get_tsc_cycles() - start;
	return c;
}

static void hold_until_peer_leaves(uint16_t port)
{
	struct rte_eth_link link;

	while (!quit) {
		if (rte_eth_link_get_nowait(port, &link) == 0 && link.link_status == RTE_ETH_LINK_DOWN) {
			/* The link goes down first thing in the interrupt thread's
			 * teardown; closing the port before it ends frees what it uses. */
			rte_delay_us_sleep(TEARDOWN_WAIT_US);
			return;
		}
		rte_delay_us_sleep(HOLD_POLL_US);
	}
}

int main(int argc, char **argv)
{
	struct gen_opts o = {.size = 64, .seconds = 2};
	struct template t[MAX_TEMPLATES];
	struct rte_mempool *mp;
	struct zcd_config *cfg;
	const char *prog = "zcd-gen";
	struct gen_counts c;
	uint64_t warmup_sent = 0, hz;
	unsigned nb_t, next = 0;
	char err[512];
	int eal_args;

	/* For scripts (bench/pktgen): the VMs of a configuration, no DPDK. */
	if (argc == 4 && strcmp(argv[1], "--list-vms") == 0 && strcmp(argv[2], "--config") == 0)
		return list_vms(argv[3]);
	eal_args = zcd_tool_init(argc, argv, prog, usage);
	if (eal_args <= 0)
		return eal_args == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	if (parse_options(argc - eal_args, argv + eal_args, prog, &o) != 0)
		return 2;
	cfg = zcd_config_load(o.config, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	nb_t = build_templates(cfg, o.size, t);
	if (nb_t == 0 || rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "%s: %s\n", prog, nb_t == 0 ? "no VMs" : "no DPDK port (--vdev?)");
		return EXIT_FAILURE;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	mp = rte_pktmbuf_pool_create("zcd_gen", GEN_MBUFS, 256, 0,
				     RTE_PKTMBUF_HEADROOM + (o.size != 0 ? o.size : 1518),
				     (int)rte_socket_id());
	if (mp == NULL || port_start(0, mp, o.receive) != 0) {
		if (mp == NULL)
			fprintf(stderr, "%s: mbuf pool: %s\n", prog, rte_strerror(rte_errno));
		return EXIT_FAILURE;
	}

	hz = rte_get_tsc_hz();
	if (o.warmup > 0) {
		struct gen_counts w = send_for(&o, mp, t, nb_t, &next, o.warmup);

		warmup_sent = w.sent;
	}
	c = send_for(&o, mp, t, nb_t, &next, o.seconds);
	/* Frames still in a shared-memory ring are lost when the port closes:
	 * give the receiver time to take them. */
	rte_delay_ms(LINGER_MS);
	printf("{\"warmup_sent\": %" PRIu64 ", \"offered\": %" PRIu64 ", \"sent\": %" PRIu64
	       ", \"not_taken\": %" PRIu64 ", \"received\": %" PRIu64
	       ", \"seconds\": %.3f, \"mpps\": %.4f}\n",
	       warmup_sent, c.offered, c.sent, c.offered - c.sent, c.received,
	       (double)c.cycles / (double)hz, (double)c.offered / ((double)c.cycles / (double)hz) / 1e6);
	fflush(stdout);
	if (o.hold)
		hold_until_peer_leaves(0);
	rte_eth_dev_stop(0);
	rte_eth_dev_close(0);
	for (unsigned i = 0; i < nb_t; i++)
		free(t[i].data);
	zcd_config_free(cfg);
	rte_eal_cleanup();
	return EXIT_SUCCESS;
}
