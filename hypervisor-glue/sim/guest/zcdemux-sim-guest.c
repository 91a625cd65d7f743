/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zcdemux-sim-guest: one simulated guest of the sim hypervisor backend, as
 * a process of its own.  It behaves like a guest's receive driver: it
 * attaches to the shared ring on its own, reads frames only through its
 * VM's grant table, checks what it sees (descriptor bounds, unmapped pages,
 * bytes of earlier frames), writes frames to its pcap sink and gives
 * buffers back on the return ring.  The ring is treated as written by a
 * hostile backend: each descriptor is copied out before it is checked.
 *
 * Started by the backend (hypervisor-glue/sim/sim.c), never by hand; the
 * layout of what it shares with the backend is in ../shared.h.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../../pcap_sink.h"
#include "../shared.h"

#define PROGRAM "zcdemux-sim-guest"
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static const char usage_text[] =
	"Usage: " PROGRAM " [--sink]\n"
	"\n"
	"One simulated guest of zcdemux's sim hypervisor backend.  The backend\n"
	"starts it for each VM of its configuration, with the VM's shared file on\n"
	"descriptor 3, the buffer pool's file on descriptor 4 and, with --sink,\n"
	"the VM's pcap sink (already holding its file header) on descriptor 5.\n"
	"It receives frames on the VM's ring until the backend asks it to stop,\n"
	"or until its backend is gone: at once if the VM file is a memfd, else\n"
	"after 10 s without a new zcdemux taking it over (zcdemux --state).  It\n"
	"is not meant to be run by hand.\n"
	"\n"
	"Options:\n"
	"  --sink      append every frame received to the pcap file on fd 5\n"
	"  -h, --help  show this help and exit\n"
	"\n"
	"Exit status:\n"
	"  0  stopped by the backend, or left as configured (sim.reboot_every)\n"
	"  1  the shared file was unusable, or the sink could not be written\n"
	"  2  usage error\n";

struct guest {
	const struct sim_vm_file *file; /* read-only: the backend's */
	struct sim_guest_status *status;
	const uint8_t *pool;
	struct zcd_ring ring;
	/* The settings, read once. */
	uint32_t credits;
	uint32_t ppb;
	uint32_t ring_size;
	uint32_t copy_base;
	uint32_t stall, hostile, scribble_after, reboot_every, hold, poll_mode;
	uint64_t backend_checked_ns; /* when the backend was last looked for */
	uint64_t orphaned_ns; /* when it was first found gone, 0 while it runs */

	uint8_t *scratch; /* one buffer's pages, gathered through the grant table */
	struct zcd_ret_desc *returns; /* returns of the batch being processed, in groups */
	uint32_t nb_returns;
	struct zcd_pcap_sink *sink; /* NULL = discard */
	uint32_t frames_read; /* counts up to scribble_after */
	/* sim.hold: buffers read and kept, oldest first (a ring of ring_size). */
	struct zcd_ret_desc *held;
	uint32_t held_first;
	uint32_t nb_held;
	uint32_t keep; /* how many it keeps: min(hold, credit limit / 2) */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool stop_requested(const struct guest *g)
{
	return atomic_load_explicit(&g->file->stop, memory_order_acquire) != 0;
}

/*
 * The zcdemux that served it has exited, and (with a file that outlives
 * it) none took over within SIM_GUEST_ORPHAN_MS.  Checked at most every
 * wait period.
 */
static bool backend_gone(struct guest *g)
{
	uint64_t now = now_ns();

	if (now - g->backend_checked_ns < SIM_GUEST_WAIT_MS * 1000000ull)
		return false;
	g->backend_checked_ns = now;
	if (kill(atomic_load_explicit(&g->file->backend_pid, memory_order_acquire), 0) == 0 ||
	    errno != ESRCH) {
		g->orphaned_ns = 0;
		return false;
	}
	if (!g->file->persistent)
		return true;
	if (g->orphaned_ns == 0)
		g->orphaned_ns = now;
	return now - g->orphaned_ns >= SIM_GUEST_ORPHAN_MS * 1000000ull;
}

/* Ask to stop, or nobody left to serve it: time to go. */
static bool should_exit(struct guest *g)
{
	return stop_requested(g) || backend_gone(g);
}

/* Sleep until woken (wake moved on from seen) or SIM_GUEST_WAIT_MS passed. */
static void wait_event(struct guest *g, uint32_t seen)
{
	struct timespec ts = {.tv_nsec = SIM_GUEST_WAIT_MS * 1000000L};

	syscall(SYS_futex, &g->status->wake, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static uint32_t wake_seen(const struct guest *g)
{
	return atomic_load_explicit(&g->status->wake, memory_order_acquire);
}

/* notify: poll: no event will come; look again shortly. */
static void poll_pause(void)
{
	struct timespec ts = {.tv_nsec = SIM_GUEST_POLL_US * 1000L};

	nanosleep(&ts, NULL);
}

static bool desc_valid(const struct guest *g, const struct zcd_rx_desc *desc)
{
	uint64_t window = (uint64_t)g->credits * g->ppb;
	uint64_t first = desc->handle;

	if (desc->nr_pages != g->ppb || desc->length == 0 ||
	    (uint32_t)desc->offset + desc->length > g->ppb * ZCD_PAGE_SIZE)
		return false;
	if (desc->flags & ZCD_RXF_COPY) {
		if (first < g->copy_base)
			return false;
		first -= g->copy_base;
	}
	return first % g->ppb == 0 && first + g->ppb <= window;
}

/* Read the buffer's pages into scratch; false on a hole. */
static bool gather(struct guest *g, const struct zcd_rx_desc *desc)
{
	uint64_t holes = 0;

	for (uint32_t i = 0; i < g->ppb; i++) {
		const uint8_t *page = sim_gfn_page(g->file, g->pool, (uint32_t)desc->handle + i);

		if (page == NULL)
			holes++;
		else
			memcpy(g->scratch + (size_t)i * ZCD_PAGE_SIZE, page, ZCD_PAGE_SIZE);
	}
	if (holes != 0)
		sim_count(&g->status->faults, holes);
	return holes == 0;
}

/* Non-zero bytes of buf[0, bytes) outside [start, end): leftovers of other frames. */
static uint64_t residue(const uint8_t *buf, size_t bytes, size_t start, size_t end)
{
	uint64_t count = 0;

	for (size_t i = 0; i < start; i++)
		count += buf[i] != 0;
	for (size_t i = end; i < bytes; i++)
		count += buf[i] != 0;
	return count;
}

/*
 * After the return just queued: the same again, the previous generation,
 * and a buffer that does not exist.  The backend must reject all three.
 */
static void add_hostile(struct guest *g)
{
	struct zcd_ret_desc good = g->returns[g->nb_returns - 1];
	struct zcd_ret_desc *out = &g->returns[g->nb_returns];

	out[0] = good;
	out[1] = good;
	out[1].generation--;
	out[2] = good;
	out[2].buf_id = UINT32_MAX;
	g->nb_returns += SIM_HOSTILE_GROUP - 1;
}

/* sim.hold: queue the oldest held buffers for return, until at most keep are left. */
static void release_held(struct guest *g, uint32_t keep)
{
	while (g->nb_held > keep) {
		g->returns[g->nb_returns++] = g->held[g->held_first];
		g->held_first = (g->held_first + 1) % g->ring_size;
		g->nb_held--;
	}
}

static void receive(struct guest *g, const struct zcd_rx_desc *desc)
{
	size_t bytes = (size_t)g->ppb * ZCD_PAGE_SIZE;
	struct zcd_ret_desc ret;
	uint64_t left_over;
	struct timespec now;

	if (!desc_valid(g, desc)) {
		sim_count(&g->status->bad_descs, 1);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if (!gather(g, desc))
		return;
	left_over = residue(g->scratch, bytes, desc->offset, (size_t)desc->offset + desc->length);
	if (left_over != 0)
		sim_count(&g->status->residue_bytes, left_over);
	if (g->sink != NULL)
		zcd_pcap_sink_write(g->sink, &now, g->scratch + desc->offset, desc->length);
	sim_count(&g->status->rx_packets, 1);
	sim_count(&g->status->rx_bytes, desc->length);
	if (g->stall)
		return;
	ret = (struct zcd_ret_desc){
		.buf_id = desc->buf_id,
		.generation = desc->generation,
		.flags = (desc->flags & ZCD_RXF_COPY) ? ZCD_RETF_COPY : 0,
	};
	if (g->hold != 0) {
		if (g->nb_held == g->ring_size) /* more than credits: not from our backend */
			release_held(g, g->ring_size - 1);
		g->held[(g->held_first + g->nb_held++) % g->ring_size] = ret;
		return;
	}
	g->returns[g->nb_returns++] = ret;
	if (g->hostile)
		add_hostile(g);
}

/* How many read buffers a holding guest keeps under a credit limit. */
static uint32_t keep_under(const struct guest *g, uint32_t credit_limit)
{
	return g->hold < credit_limit / 2 ? g->hold : credit_limit / 2;
}

/*
 * A credit announcement: keep fewer from now on, and give back at once
 * what was asked for (as far as it holds that many).
 */
static void credit_news(struct guest *g)
{
	uint32_t limit, give_back, keep;

	if (!zcd_ring_credit_news(&g->ring, &limit, &give_back))
		return;
	g->keep = keep_under(g, limit);
	keep = g->nb_held > give_back ? g->nb_held - give_back : 0;
	release_held(g, keep < g->keep ? keep : g->keep);
}

/*
 * Put the batch's returns on the return ring.  It holds one entry per credit,
 * so it is full only while the backend lags; wait for it then, unless asked
 * to stop, in which case the rest are dropped (the backend tears down).
 */
static void give_back(struct guest *g)
{
	/* A hostile guest's group goes on the ring whole, so that the backend
	 * judges the duplicate before the buffer can be handed out again. */
	uint32_t group = g->hostile ? SIM_HOSTILE_GROUP : 1, done = 0;

	while (done < g->nb_returns) {
		uint32_t space = zcd_ret_space(&g->ring);

		if (space < group) {
			zcd_ret_publish(&g->ring);
			if (should_exit(g))
				break;
			sched_yield();
			continue;
		}
		for (; space >= group && done < g->nb_returns; space -= group)
			for (uint32_t k = 0; k < group; k++)
				zcd_ret_put(&g->ring, &g->returns[done++]);
	}
	zcd_ret_publish(&g->ring);
	g->nb_returns = 0;
}

/* Has read all the frames it will read (sim.scribble_after, sim.reboot_every). */
static bool read_enough(const struct guest *g)
{
	uint32_t limit = g->scribble_after != 0 ? g->scribble_after : g->reboot_every;

	return limit != 0 && g->frames_read >= limit;
}

/* What it gave back counts: let the backend take it all before leaving. */
static void wait_returns_taken(struct guest *g)
{
	const struct zcd_ring_hdr *h = g->ring.hdr;

	while (__atomic_load_n(&h->ret_cons, __ATOMIC_ACQUIRE) != g->ring.ret_prod &&
	       !should_exit(g))
		sched_yield();
}

/* Silent until told to stop (or the backend is gone). */
static void hang(struct guest *g)
{
	while (!should_exit(g))
		wait_event(g, wake_seen(g));
}

/*
 * Break the ring: an rx consumer index half the index space away and a
 * return producer index likewise, then go silent until stopped.  The
 * backend must cut this guest off alone.
 */
static void scribble_and_hang(struct guest *g)
{
	struct zcd_ring_hdr *h = g->ring.hdr;

	wait_returns_taken(g);
	__atomic_store_n(&h->rx_cons, g->ring.rx_cons + 0x80000000u, __ATOMIC_RELEASE);
	__atomic_store_n(&h->ret_prod, g->ring.ret_prod + 0x80000000u, __ATOMIC_RELEASE);
	hang(g);
}

/* Reboot: leave with everything read given back; the backend reports it gone. */
static void leave(struct guest *g)
{
	wait_returns_taken(g);
	atomic_store(&g->status->left, 1);
}

static void run(struct guest *g)
{
	g->keep = keep_under(g, g->ring.hdr->credits);
	for (;;) {
		/* Read before the ring: a wake-up after this is not missed. */
		uint32_t seen = wake_seen(g);
		/* Stop is read before the producer index, so a stop seen here
		 * comes after every descriptor published before it. */
		bool stopping = stop_requested(g);
		bool broken = false;
		uint32_t ready;

		credit_news(g);
		if (g->nb_returns != 0)
			give_back(g);
		ready = zcd_rx_ready(&g->ring, &broken);

		if (broken) {
			/* A backend that breaks the ring gets no more service. */
			sim_count(&g->status->bad_descs, 1);
			hang(g);
			return;
		}
		if (ready == 0) {
			if (stopping || backend_gone(g))
				return;
			if (g->poll_mode)
				poll_pause();
			else if (!zcd_rx_arm_event(&g->ring))
				wait_event(g, seen);
			continue;
		}
		for (; ready > 0 && !read_enough(g); ready--) {
			struct zcd_rx_desc desc;

			zcd_rx_take(&g->ring, &desc);
			receive(g, &desc);
			g->frames_read++;
		}
		/* Only now: "drained" must mean "processed", not just "seen". */
		zcd_rx_consumed(&g->ring);
		release_held(g, g->keep);
		if (g->nb_returns != 0)
			give_back(g);
		if (read_enough(g)) {
			if (g->scribble_after != 0)
				scribble_and_hang(g);
			else
				leave(g);
			return;
		}
	}
}

/*
 * Map the VM file: the hyp part read-only, the guest's part read-write,
 * side by side as the offsets in the file say; and the pool read-only.
 */
static int map_shared(struct guest *g)
{
	struct sim_vm_file hyp;
	size_t pool_bytes;
	struct stat sb;
	uint8_t *base;
	void *pool;

	if (pread(SIM_GUEST_VM_FD, &hyp, sizeof(hyp), 0) != (ssize_t)sizeof(hyp) ||
	    hyp.magic != SIM_VM_FILE_MAGIC || hyp.version != SIM_VM_FILE_VERSION ||
	    hyp.guest_off == 0 || hyp.guest_off % ZCD_PAGE_SIZE != 0 || hyp.guest_off >= hyp.bytes) {
		fprintf(stderr, PROGRAM ": the VM file on fd %d is not one\n", SIM_GUEST_VM_FD);
		return -1;
	}
	base = mmap(NULL, hyp.bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED ||
	    mmap(base, hyp.guest_off, PROT_READ, MAP_SHARED | MAP_FIXED, SIM_GUEST_VM_FD, 0) ==
		    MAP_FAILED ||
	    mmap(base + hyp.guest_off, hyp.bytes - hyp.guest_off, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, SIM_GUEST_VM_FD, (off_t)hyp.guest_off) == MAP_FAILED) {
		fprintf(stderr, PROGRAM ": cannot map the VM file: %s\n", strerror(errno));
		return -1;
	}
	pool_bytes = (size_t)hyp.nb_bufs * hyp.pages_per_buf * ZCD_PAGE_SIZE;
	/* hugetlbfs maps whole huge pages. */
	if (fstat(SIM_GUEST_POOL_FD, &sb) == 0 && sb.st_blksize > ZCD_PAGE_SIZE)
		pool_bytes = (pool_bytes + (size_t)sb.st_blksize - 1) / (size_t)sb.st_blksize *
			     (size_t)sb.st_blksize;
	pool = mmap(NULL, pool_bytes, PROT_READ, MAP_SHARED, SIM_GUEST_POOL_FD, 0);
	if (pool == MAP_FAILED) {
		fprintf(stderr, PROGRAM ": cannot map the pool: %s\n", strerror(errno));
		return -1;
	}
	g->file = (const struct sim_vm_file *)base;
	g->status = sim_status(g->file);
	g->pool = pool;
	return 0;
}

static int setup(struct guest *g, bool with_sink)
{
	const struct sim_vm_file *f;
	cpu_set_t cpus;

	/* It stands for another VM's vCPU: any CPU, not the lcore it was started from. */
	CPU_ZERO(&cpus);
	for (long cpu = 0; cpu < sysconf(_SC_NPROCESSORS_CONF) && cpu < CPU_SETSIZE; cpu++)
		CPU_SET((int)cpu, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	if (map_shared(g) != 0)
		return -1;
	f = g->file;
	g->credits = f->credits;
	g->ppb = f->pages_per_buf;
	g->ring_size = f->ring_size;
	g->copy_base = f->copy_base;
	g->stall = f->stall;
	g->hostile = f->hostile;
	g->scribble_after = f->scribble_after;
	g->reboot_every = f->reboot_every;
	g->hold = f->hold;
	g->poll_mode = f->poll_mode;
	g->backend_checked_ns = now_ns();
	g->scratch = malloc((size_t)g->ppb * ZCD_PAGE_SIZE);
	g->returns = malloc(SIM_HOSTILE_GROUP * g->ring_size * sizeof(*g->returns));
	g->held = malloc(g->ring_size * sizeof(*g->held));
	if (g->scratch == NULL || g->returns == NULL || g->held == NULL) {
		fprintf(stderr, PROGRAM ": %s: out of memory\n", f->name);
		return -1;
	}
	if (with_sink) {
		g->sink = zcd_pcap_sink_adopt(SIM_GUEST_SINK_FD);
		if (g->sink == NULL) {
			fprintf(stderr, PROGRAM ": %s: sink: %s\n", f->name, strerror(errno));
			return -1;
		}
	}
	atomic_store(&g->status->pid, (int32_t)getpid());
	/* A real guest maps the area and checks the header the same way. */
	if (zcd_ring_attach(&g->ring, (uint8_t *)f + f->ring_off, f->ring_bytes) != 0) {
		atomic_store(&g->status->attached, SIM_ATTACH_REJECTED);
		fprintf(stderr, PROGRAM ": %s: the ring header does not check out\n", f->name);
		return -1;
	}
	atomic_store(&g->status->attached, SIM_ATTACH_OK);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "sink", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct guest g = { 0 };
	bool with_sink = false;
	int opt, rc = 0;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			with_sink = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fprintf(stderr, "Try '" PROGRAM " --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, PROGRAM ": unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (setup(&g, with_sink) != 0)
		return EXIT_RUNTIME;
	run(&g);
	if (g.sink != NULL && zcd_pcap_sink_close(g.sink) != 0) {
		fprintf(stderr, PROGRAM ": %s: sink: cannot write: %s\n", g.file->name,
			strerror(errno));
		rc = EXIT_RUNTIME;
	}
	free(g.scratch);
	free(g.returns);
	free(g.held);
	return rc;
}
