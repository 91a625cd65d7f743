/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zcd-bench: the dataplane's own cost per frame, in process, without a
 * driver.  Frames are written into pool buffers the way a NIC would (not
 * timed) and handed to zcd_dataplane_rx_frames(); the timed part is what
 * the dataplane core does for them: classify, hand off per VM (remap or
 * copy) or drop, then take the returned buffers back.  The VMs are sim
 * guests with instant_return, so no guest process competes for the core.
 *
 * Modes:
 *   remap  every frame's page goes to its VM (copy_threshold 0)
 *   copy   every frame is copied into a page its VM already has mapped
 *   drop   every frame is for an unknown MAC (the floor: classify + free)
 *
 * One CSV row per (mode, frame size, VMs): the median over --repeats trials
 * of the cycles per frame (TSC), and the frames per second one core would
 * manage at that cost.
 *
 * Where the "NIC" leaves the frame matters to the copy path: by default the
 * frame is flushed out of every cache level after it is written, as after
 * DMA on a platform that writes device data to memory; --hot leaves it in
 * this core's caches (better than Intel DDIO, which puts it in the shared
 * last-level cache).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef __x86_64__
#include <emmintrin.h>
#endif

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>

#include "dataplane.h"
#include "tool.h"

#define MAX_LIST 16
#define MAX_REPEATS 64
#define MAX_FRAMES (1 << 26)
#define BENCH_BURST 32
#define BENCH_CREDITS 256
#define MEMCPY_BYTES (128u << 20)
#define ETH_FCS_LEN 4 /* on the wire, not in the buffer */

enum bench_mode { MODE_REMAP, MODE_COPY, MODE_DROP, MODE_COUNT };
static const char *const mode_names[MODE_COUNT] = {"remap", "copy", "drop"};

struct bench_opts {
	uint32_t sizes[MAX_LIST];
	unsigned nb_sizes;
	uint32_t vm_counts[MAX_LIST];
	unsigned nb_vm_counts;
	bool modes[MODE_COUNT];
	uint32_t frames; /* per trial */
	unsigned repeats;
	const char *csv;
	const char *workdir;
	bool hot; /* leave the "DMA"ed frames in this core's caches */
};

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s [EAL options] -- [options]\n"
		"\n"
		"Measure zcdemux's dataplane cost per frame in process (no driver): frames\n"
		"are written into pool buffers as a NIC would, then classified and handed\n"
		"to simulated VMs that return every buffer at once (sim instant_return).\n"
		"Prints one line per case and, with --csv, writes\n"
		"  mode,frame_bytes,vms,cycles_per_frame,mpps\n"
		"where cycles_per_frame is the median over the trials (TSC cycles) and\n"
		"mpps the million frames per second one core manages at that cost.\n"
		"It also prints the single-core memcpy bandwidth of the machine.\n"
		"\n"
		"EAL options: at least --no-huge -m 1024 --no-pci -l CORE is typical.\n"
		"\n"
		"Options:\n"
		"  -m, --modes LIST    remap,copy,drop (default: all three)\n"
		"  -s, --sizes LIST    frame sizes in bytes on the wire, with the 4-byte FCS\n"
		"                      (RFC 2544), 64..9022 (default 64,128,256,512,1024,1518,\n"
		"                      4096,9000); the buffer holds the frame without FCS\n"
		"  -v, --vms LIST      numbers of VMs the frames are spread over, round robin\n"
		"                      (default 1,4,64)\n"
		"  -n, --frames N      frames per trial, 32..67108864 (default 65536)\n"
		"  -r, --repeats N     trials per case, 1..64; the median is reported (default 7)\n"
		"  -o, --csv FILE      write the results as CSV\n"
		"  -w, --workdir DIR   where the generated configurations go (default /tmp)\n"
		"      --hot           leave each frame in this core's caches after the \"NIC\"\n"
		"                      wrote it (default: flushed to memory, as after DMA)\n"
		"  -h, --help          this text\n",
		prog);
}

static int parse_list(const char *text, uint32_t *out, unsigned *nb, uint32_t lo, uint32_t hi)
{
	char *copy = strdup(text), *save = NULL;

	*nb = 0;
	if (copy == NULL)
		return -1;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v = strtoul(tok, &end, 10);

		if (*end != '\0' || v < lo || v > hi || *nb == MAX_LIST) {
			free(copy);
			return -1;
		}
		out[(*nb)++] = (uint32_t)v;
	}
	free(copy);
	return *nb == 0 ? -1 : 0;
}

static int parse_modes(const char *text, bool *modes)
{
	char *copy = strdup(text), *save = NULL;
	int rc = 0;

	memset(modes, 0, MODE_COUNT * sizeof(*modes));
	if (copy == NULL)
		return -1;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		unsigned m;

		for (m = 0; m < MODE_COUNT && strcmp(tok, mode_names[m]) != 0; m++)
			;
		if (m == MODE_COUNT)
			rc = -1;
		else
			modes[m] = true;
	}
	free(copy);
	return rc;
}

static int parse_options(int argc, char **argv, const char *prog, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{"modes", required_argument, NULL, 'm'},   {"sizes", required_argument, NULL, 's'},
		{"vms", required_argument, NULL, 'v'},     {"frames", required_argument, NULL, 'n'},
		{"repeats", required_argument, NULL, 'r'}, {"csv", required_argument, NULL, 'o'},
		{"workdir", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'},
		{"hot", no_argument, NULL, 'H'},
		{NULL, 0, NULL, 0},
	};
	uint32_t n;
	unsigned one;
	int c;

	while ((c = getopt_long(argc, argv, "m:s:v:n:r:o:w:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (parse_modes(optarg, o->modes) != 0) {
				fprintf(stderr, "%s: --modes: \"%s\": use remap, copy, drop\n", prog, optarg);
				return -1;
			}
			break;
		case 's':
			if (parse_list(optarg, o->sizes, &o->nb_sizes, 64, 9022) != 0) {
				fprintf(stderr, "%s: --sizes: \"%s\": up to %d sizes, 64..9022\n", prog,
					optarg, MAX_LIST);
				return -1;
			}
			break;
		case 'v':
			if (parse_list(optarg, o->vm_counts, &o->nb_vm_counts, 1, 250) != 0) {
				fprintf(stderr, "%s: --vms: \"%s\": up to %d counts, 1..250\n", prog,
					optarg, MAX_LIST);
				return -1;
			}
			break;
		case 'n':
			if (parse_list(optarg, &n, &one, BENCH_BURST, MAX_FRAMES) != 0 || one != 1) {
				fprintf(stderr, "%s: --frames: \"%s\": %d..%d\n", prog, optarg,
					BENCH_BURST, MAX_FRAMES);
				return -1;
			}
			o->frames = n;
			break;
		case 'r':
			if (parse_list(optarg, &n, &one, 1, MAX_REPEATS) != 0 || one != 1) {
				fprintf(stderr, "%s: --repeats: \"%s\": 1..%d\n", prog, optarg,
					MAX_REPEATS);
				return -1;
			}
			o->repeats = n;
			break;
		case 'o':
			o->csv = optarg;
			break;
		case 'w':
			o->workdir = optarg;
			break;
		case 'H':
			o->hot = true;
			break;
		case 'h':
			usage(stdout, prog);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr, prog);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog, argv[optind]);
		return -1;
	}
	return 0;
}

static void vm_mac(unsigned vm, uint8_t mac[6])
{
	const uint8_t base[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x00};

	memcpy(mac, base, 6);
	mac[4] = (uint8_t)(vm >> 8);
	mac[5] = (uint8_t)vm + 1;
}

/* The configuration of one case, through the same loader as zcdemux's. */
static struct zcd_config *case_config(const struct bench_opts *o, enum bench_mode mode,
				      uint32_t size, unsigned nb_vms, unsigned instance)
{
	char path[ZCD_FILE_PATH_MAX], err[512];
	struct zcd_config *cfg;
	uint32_t mtu = size - ETH_FCS_LEN > 1514 ? size - ETH_FCS_LEN - 14 : 1500;
	FILE *f;

	snprintf(path, sizeof(path), "%s/zcd-bench-%d.yaml", o->workdir, (int)getpid());
	f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "zcd-bench: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	/* net_null: a port that exists but is never polled. */
	fprintf(f,
		"ports:\n  - {name: bench, devargs: \"net_null%u\"}\n"
		"hypervisor: {backend: sim}\n"
		"dataplane: {mtu: %u, burst: %d, rx_descriptors: 64, copy_threshold: %u}\n"
		"vms:\n",
		instance, mtu, BENCH_BURST, mode == MODE_COPY ? zcd_frame_limit(ZCD_MTU_MAX, true) : 0);
	for (unsigned v = 0; v < nb_vms; v++) {
		uint8_t m[6];

		vm_mac(v, m);
		fprintf(f,
			"  - {name: vm%u, macs: [\"%02x:%02x:%02x:%02x:%02x:%02x\"], credits: %d, "
			"sim: {instant_return: true}}\n",
			v, m[0], m[1], m[2], m[3], m[4], m[5], BENCH_CREDITS);
	}
	if (fclose(f) != 0) {
		fprintf(stderr, "zcd-bench: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	cfg = zcd_config_load(path, err, sizeof(err));
	if (cfg == NULL)
		fprintf(stderr, "zcd-bench: %s\n", err);
	unlink(path);
	return cfg;
}

/* An IPv4/UDP-looking frame for vm (or for nobody), padded to size. */
static void build_frame(uint8_t *frame, uint32_t size, unsigned vm, bool known)
{
	static const uint8_t src[6] = {0x02, 0x5a, 0x00, 0x00, 0x00, 0x01};
	static const uint8_t nobody[6] = {0x02, 0xee, 0xee, 0xee, 0xee, 0xee};

	if (known)
		vm_mac(vm, frame);
	else
		memcpy(frame, nobody, 6);
	memcpy(frame + 6, src, 6);
	frame[12] = 0x08;
	frame[13] = 0x00;
	for (uint32_t i = 14; i < size; i++)
		frame[i] = (uint8_t)(i * 7 + vm);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Write a frame into a buffer as a device would: none of it stays in cache. */
static void dma_write(uint8_t *dst, const uint8_t *frame, uint32_t size, bool hot)
{
	memcpy(dst, frame, size);
	if (hot)
		return;
#ifdef __x86_64__
	for (uint32_t off = 0; off < size; off += RTE_CACHE_LINE_SIZE)
		_mm_clflush(dst + off);
	_mm_clflush(dst + size - 1);
	_mm_mfence();
#endif
}

/*
 * frames frames through the dataplane; returns the TSC cycles spent in it,
 * or 0 if the pool ran dry (a leak: the run is void).
 */
static uint64_t trial(struct zcd_dataplane *dp, uint8_t *const *templates, unsigned nb_templates,
		      uint32_t size, uint32_t frames, bool hot)
{
	struct rte_mbuf *m[BENCH_BURST];
	uint64_t cycles = 0, t0;
	unsigned next = 0;

	for (uint32_t done = 0; done < frames; done += BENCH_BURST) {
		if (rte_pktmbuf_alloc_bulk(dp->pool->nodes[0].mp, m, BENCH_BURST) != 0)
			return 0;
		/* The NIC's part: DMA the frame, fill in the descriptor. */
		for (unsigned i = 0; i < BENCH_BURST; i++) {
			dma_write(rte_pktmbuf_mtod(m[i], uint8_t *), templates[next], size - ETH_FCS_LEN,
				  hot);
			m[i]->data_len = (uint16_t)(size - ETH_FCS_LEN);
			m[i]->pkt_len = size - ETH_FCS_LEN;
			next = next + 1 == nb_templates ? 0 : next + 1;
		}
		t0 = rte_rdtsc_precise();
		zcd_dataplane_rx_frames(dp, &dp->workers[0], 0, m, BENCH_BURST);
		zcd_dataplane_poll_all_returns(dp);
		cycles += rte_rdtsc_precise() - t0;
	}
	return cycles;
}

/* Every frame went the way the mode says: a benchmark of lost frames is void. */
static bool all_handled(const struct zcd_dataplane *dp, enum bench_mode mode, uint64_t frames)
{
	uint64_t remapped = 0, copied = 0, other = 0;

	for (unsigned v = 0; v < dp->nb_vms; v++) {
		remapped += dp->vms[v].c.remapped;
		copied += dp->vms[v].c.copied;
		other += dp->vms[v].c.dropped_no_credit + dp->vms[v].c.dropped_disconnected;
	}
	for (unsigned d = 0; d < ZCD_DROP_REASON_COUNT; d++)
		if (d != ZCD_DROP_UNKNOWN_UNICAST || mode != MODE_DROP)
			other += zcd_drops(dp, d);
	switch (mode) {
	case MODE_REMAP:
		return remapped == frames && copied == 0 && other == 0;
	case MODE_COPY:
		return copied == frames && remapped == 0 && other == 0;
	default:
		return zcd_drops(dp, ZCD_DROP_UNKNOWN_UNICAST) == frames && remapped + copied + other == 0;
	}
}

static int run_case(const struct bench_opts *o, enum bench_mode mode, uint32_t size,
		    unsigned nb_vms, double *cycles_per_frame)
{
	static unsigned instance;
	struct zcd_dataplane dp;
	struct zcd_config *cfg = case_config(o, mode, size, nb_vms, instance++);
	uint8_t *templates[ZCD_MAX_VMS];
	double per_trial[MAX_REPEATS];
	unsigned repeats = o->repeats;
	const char *why = "";
	int rc = -1;

	if (cfg == NULL)
		return -1;
	memset(templates, 0, sizeof(templates));
	for (unsigned v = 0; v < nb_vms; v++) {
		templates[v] = malloc(size);
		if (templates[v] == NULL)
			goto out;
		build_frame(templates[v], size, v, mode != MODE_DROP);
	}
	if (zcd_dataplane_init(&dp, cfg, NULL) != 0)
		goto out;
	/* The guests come up as the loop polls for events. */
	while (zcd_dataplane_poll_events(&dp) != 0)
		;
	for (unsigned r = 0; r <= repeats; r++) { /* the first is a warm-up */
		uint64_t c = trial(&dp, templates, nb_vms, size, o->frames, o->hot);

		if (c == 0) {
			why = "the pool ran dry";
			goto fail;
		}
		if (r != 0)
			per_trial[r - 1] = (double)c / (double)(o->frames / BENCH_BURST * BENCH_BURST);
	}
	if (!all_handled(&dp, mode, (uint64_t)(repeats + 1) * (o->frames / BENCH_BURST * BENCH_BURST))) {
		why = "frames went astray";
		goto fail;
	}
	qsort(per_trial, repeats, sizeof(per_trial[0]), cmp_double);
	*cycles_per_frame = per_trial[repeats / 2];
	rc = 0;
fail:
	if (rc != 0)
		fprintf(stderr, "zcd-bench: %s %u B %u VMs: %s\n", mode_names[mode], size, nb_vms, why);
	if (zcd_dataplane_shutdown(&dp) != 0)
		rc = -1;
	zcd_dataplane_fini(&dp);
out:
	for (unsigned v = 0; v < nb_vms; v++)
		free(templates[v]);
	zcd_config_free(cfg);
	return rc;
}

/* Best of a few passes of memcpy over bytes (GB/s). */
static double memcpy_gbps(size_t bytes, unsigned passes)
{
	uint8_t *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *b = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double best = 0;

	if (a == MAP_FAILED || b == MAP_FAILED)
		return 0;
	memset(a, 1, bytes);
	memset(b, 2, bytes);
	for (unsigned p = 0; p < passes; p++) {
		struct timespec t0, t1;
		double s;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		memcpy(p & 1 ? a : b, p & 1 ? b : a, bytes);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (s > 0 && bytes / s / 1e9 > best)
			best = (double)bytes / s / 1e9;
	}
	munmap(a, bytes);
	munmap(b, bytes);
	return best;
}

/* In-cache copies of one frame's worth (GB/s), as the copy path mostly does. */
static double memcpy_small_gbps(size_t bytes)
{
	static uint8_t src[9018], dst[9018];
	const unsigned rounds = 200000;
	uint64_t t0, cycles;

	memset(src, 3, sizeof(src));
	t0 = rte_rdtsc_precise();
	for (unsigned i = 0; i < rounds; i++) {
		memcpy(dst, src, bytes);
		__asm__ volatile("" : : "r"(dst) : "memory");
	}
	cycles = rte_rdtsc_precise() - t0;
	return (double)bytes * rounds / ((double)cycles / (double)rte_get_tsc_hz()) / 1e9;
}

int main(int argc, char **argv)
{
	struct bench_opts o = {
		.sizes = {64, 128, 256, 512, 1024, 1518, 4096, 9000},
		.nb_sizes = 8,
		.vm_counts = {1, 4, 64},
		.nb_vm_counts = 3,
		.modes = {true, true, true},
		.frames = 65536,
		.repeats = 7,
		.workdir = "/tmp",
	};
	const char *prog = "zcd-bench";
	FILE *csv = NULL;
	int eal_args, status = EXIT_SUCCESS;

	eal_args = zcd_tool_init(argc, argv, prog, usage);
	if (eal_args <= 0)
		return eal_args == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	if (parse_options(argc - eal_args, argv + eal_args, prog, &o) != 0) {
		rte_eal_cleanup();
		return 2;
	}
	rte_log_set_level_pattern("zcdemux*", RTE_LOG_WARNING);
	if (o.csv != NULL) {
		csv = fopen(o.csv, "w");
		if (csv == NULL) {
			fprintf(stderr, "%s: %s: %s\n", prog, o.csv, strerror(errno));
			rte_eal_cleanup();
			return EXIT_FAILURE;
		}
		fprintf(csv, "mode,frame_bytes,vms,cycles_per_frame,mpps\n");
	}
	printf("zcd-bench: TSC %.3f GHz; memcpy on one core: %.1f GB/s (%u MiB, out of cache), "
	       "%.1f GB/s (1518 B in cache), %.1f GB/s (9000 B in cache)\n",
	       (double)rte_get_tsc_hz() / 1e9, memcpy_gbps(MEMCPY_BYTES, 6), MEMCPY_BYTES >> 20,
	       memcpy_small_gbps(1518), memcpy_small_gbps(9000));
	printf("%-6s %6s %4s %16s %8s\n", "mode", "bytes", "vms", "cycles/frame", "Mpps");
	for (unsigned m = 0; m < MODE_COUNT; m++) {
		if (!o.modes[m])
			continue;
		for (unsigned v = 0; v < o.nb_vm_counts; v++)
			for (unsigned s = 0; s < o.nb_sizes; s++) {
				double cpf;

				if (run_case(&o, m, o.sizes[s], o.vm_counts[v], &cpf) != 0) {
					status = EXIT_FAILURE;
					continue;
				}
				printf("%-6s %6u %4u %16.1f %8.2f\n", mode_names[m], o.sizes[s],
				       o.vm_counts[v], cpf, (double)rte_get_tsc_hz() / cpf / 1e6);
				fflush(stdout);
				if (csv != NULL)
					fprintf(csv, "%s,%u,%u,%.1f,%.3f\n", mode_names[m], o.sizes[s],
						o.vm_counts[v], cpf,
						(double)rte_get_tsc_hz() / cpf / 1e6);
			}
	}
	if (csv != NULL && fclose(csv) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, o.csv, strerror(errno));
		status = EXIT_FAILURE;
	}
	rte_eal_cleanup();
	return status;
}
