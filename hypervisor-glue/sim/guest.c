/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The simulated guest: one thread per VM that behaves like a guest's receive
 * driver.  It attaches to the shared area on its own, reads frames only
 * through its guest-physical map, checks what it sees (descriptor bounds,
 * unmapped pages, bytes of earlier frames), writes frames to its pcap sink
 * and gives buffers back on the return ring.  The ring is treated as written
 * by a hostile backend: each descriptor is copied out before it is checked.
 */
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

static bool guest_stop_requested(const struct sim_vm *vm)
{
	return atomic_load_explicit(&vm->stop, memory_order_acquire);
}

/* Sleep until notified or SIM_GUEST_WAIT_MS passed; clear the eventfd. */
static void guest_wait_event(const struct sim_vm *vm)
{
	struct pollfd pfd = { .fd = vm->event_fd, .events = POLLIN };
	uint64_t count;

	if (poll(&pfd, 1, SIM_GUEST_WAIT_MS) > 0) {
		ssize_t got = read(vm->event_fd, &count, sizeof(count));

		(void)got; /* EAGAIN only means the counter is clear already */
	}
}

/* notify: poll: no event will come; look again shortly. */
static void guest_poll_pause(void)
{
	struct timespec ts = {.tv_nsec = SIM_GUEST_POLL_US * 1000L};

	nanosleep(&ts, NULL);
}

static bool guest_desc_valid(const struct sim_vm *vm, const struct zcd_rx_desc *desc)
{
	uint32_t ppb = vm->pages_per_buf;
	uint64_t window = (uint64_t)vm->credits * ppb;
	uint64_t first = desc->handle;

	if (desc->nr_pages != ppb || desc->length == 0 ||
	    (uint32_t)desc->offset + desc->length > ppb * ZCD_PAGE_SIZE)
		return false;
	if (desc->flags & ZCD_RXF_COPY) {
		if (first < vm->copy_base)
			return false;
		first -= vm->copy_base;
	}
	return first % ppb == 0 && first + ppb <= window;
}

/* Read the buffer's pages through the p2m into scratch; false on a hole. */
static bool guest_gather(struct sim_vm *vm, const struct zcd_rx_desc *desc)
{
	uint8_t *scratch = vm->guest.scratch;
	uint64_t holes = 0;

	for (uint32_t i = 0; i < vm->pages_per_buf; i++) {
		const uint8_t *page =
			atomic_load_explicit(&vm->p2m[desc->handle + i], memory_order_acquire);

		if (page == NULL)
			holes++;
		else
			memcpy(scratch + (size_t)i * ZCD_PAGE_SIZE, page, ZCD_PAGE_SIZE);
	}
	if (holes != 0)
		sim_count(&vm->guest_faults, holes);
	return holes == 0;
}

/* Non-zero bytes of buf[0, bytes) outside [start, end): leftovers of other frames. */
static uint64_t guest_residue(const uint8_t *buf, size_t bytes, size_t start, size_t end)
{
	uint64_t residue = 0;

	for (size_t i = 0; i < start; i++)
		residue += buf[i] != 0;
	for (size_t i = end; i < bytes; i++)
		residue += buf[i] != 0;
	return residue;
}

/*
 * After the return just queued: the same again, the previous generation,
 * and a buffer that does not exist.  The backend must reject all three.
 */
static void guest_add_hostile(struct sim_guest *guest)
{
	struct zcd_ret_desc good = guest->returns[guest->nb_returns - 1];
	struct zcd_ret_desc *out = &guest->returns[guest->nb_returns];

	out[0] = good;
	out[1] = good;
	out[1].generation--;
	out[2] = good;
	out[2].buf_id = UINT32_MAX;
	guest->nb_returns += SIM_HOSTILE_GROUP - 1;
}

/* sim.hold: queue the oldest held buffers for return, until at most keep are left. */
static void guest_release_held(struct sim_vm *vm, uint32_t keep)
{
	struct sim_guest *guest = &vm->guest;

	while (guest->nb_held > keep) {
		guest->returns[guest->nb_returns++] = guest->held[guest->held_first];
		guest->held_first = (guest->held_first + 1) % vm->ring_size;
		guest->nb_held--;
	}
}

static void guest_receive(struct sim_vm *vm, const struct zcd_rx_desc *desc)
{
	struct sim_guest *guest = &vm->guest;
	size_t bytes = (size_t)vm->pages_per_buf * ZCD_PAGE_SIZE;
	struct zcd_ret_desc ret;
	uint64_t residue;
	struct timespec now;

	if (!guest_desc_valid(vm, desc)) {
		sim_count(&vm->guest_bad_descs, 1);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if (!guest_gather(vm, desc))
		return;
	residue = guest_residue(guest->scratch, bytes, desc->offset,
				(size_t)desc->offset + desc->length);
	if (residue != 0)
		sim_count(&vm->guest_residue_bytes, residue);
	if (guest->sink != NULL)
		zcd_pcap_sink_write(guest->sink, &now, guest->scratch + desc->offset, desc->length);
	sim_count(&vm->guest_rx_packets, 1);
	sim_count(&vm->guest_rx_bytes, desc->length);
	if (vm->stall)
		return;
	ret = (struct zcd_ret_desc){
		.buf_id = desc->buf_id,
		.generation = desc->generation,
		.flags = (desc->flags & ZCD_RXF_COPY) ? ZCD_RETF_COPY : 0,
	};
	if (vm->hold != 0) {
		if (guest->nb_held == vm->ring_size) /* more than credits: not from our backend */
			guest_release_held(vm, vm->ring_size - 1);
		guest->held[(guest->held_first + guest->nb_held++) % vm->ring_size] = ret;
		return;
	}
	guest->returns[guest->nb_returns++] = ret;
	if (vm->hostile)
		guest_add_hostile(guest);
}

/* How many read buffers a holding guest keeps under a credit limit. */
static uint32_t guest_keep(const struct sim_vm *vm, uint32_t credit_limit)
{
	return vm->hold < credit_limit / 2 ? vm->hold : credit_limit / 2;
}

/*
 * A credit announcement: keep fewer from now on, and give back at once
 * what was asked for (as far as it holds that many).
 */
static void guest_credit_news(struct sim_vm *vm)
{
	struct sim_guest *guest = &vm->guest;
	uint32_t limit, give_back, keep;

	if (!zcd_ring_credit_news(&guest->ring, &limit, &give_back))
		return;
	guest->keep = guest_keep(vm, limit);
	keep = guest->nb_held > give_back ? guest->nb_held - give_back : 0;
	guest_release_held(vm, keep < guest->keep ? keep : guest->keep);
}

/*
 * Put the batch's returns on the return ring.  It holds one entry per credit,
 * so it is full only while the backend lags; wait for it then, unless asked
 * to stop, in which case the rest are dropped (the backend tears down).
 */
static void guest_give_back(struct sim_vm *vm)
{
	struct sim_guest *guest = &vm->guest;
	/* A hostile guest's group goes on the ring whole, so that the backend
	 * judges the duplicate before the buffer can be handed out again. */
	uint32_t group = vm->hostile ? SIM_HOSTILE_GROUP : 1, done = 0;

	while (done < guest->nb_returns) {
		uint32_t space = zcd_ret_space(&guest->ring);

		if (space < group) {
			zcd_ret_publish(&guest->ring);
			if (guest_stop_requested(vm))
				break;
			sched_yield();
			continue;
		}
		for (; space >= group && done < guest->nb_returns; space -= group)
			for (uint32_t k = 0; k < group; k++)
				zcd_ret_put(&guest->ring, &guest->returns[done++]);
	}
	zcd_ret_publish(&guest->ring);
	guest->nb_returns = 0;
}

/* Has read all the frames it will read (sim.scribble_after, sim.reboot_every). */
static bool guest_read_enough(const struct sim_vm *vm)
{
	uint32_t limit = vm->scribble_after != 0 ? vm->scribble_after : vm->reboot_every;

	return limit != 0 && vm->guest.frames_read >= limit;
}

/* What it gave back counts: let the backend take it all before leaving. */
static void guest_wait_returns_taken(struct sim_vm *vm)
{
	const struct zcd_ring_hdr *h = vm->guest.ring.hdr;

	while (__atomic_load_n(&h->ret_cons, __ATOMIC_ACQUIRE) != vm->guest.ring.ret_prod &&
	       !guest_stop_requested(vm))
		sched_yield();
}

/*
 * Break the ring: an rx consumer index half the index space away and a
 * return producer index likewise, then go silent until stopped.  The
 * backend must cut this guest off alone.
 */
static void guest_scribble_and_hang(struct sim_vm *vm)
{
	struct zcd_ring_hdr *h = vm->guest.ring.hdr;

	guest_wait_returns_taken(vm);
	__atomic_store_n(&h->rx_cons, vm->guest.ring.rx_cons + 0x80000000u, __ATOMIC_RELEASE);
	__atomic_store_n(&h->ret_prod, vm->guest.ring.ret_prod + 0x80000000u, __ATOMIC_RELEASE);
	while (!guest_stop_requested(vm))
		guest_wait_event(vm);
}

/* Reboot: leave with everything read given back; the backend reports it gone. */
static void guest_leave(struct sim_vm *vm)
{
	guest_wait_returns_taken(vm);
	atomic_store(&vm->left, true);
	atomic_store(&vm->down_to_report, true);
}

void *zcd_hv_sim_guest_run(void *arg)
{
	struct sim_vm *vm = arg;
	struct sim_guest *guest = &vm->guest;
	/* A real guest maps the area and checks the header the same way. */
	bool attached = zcd_ring_attach(&guest->ring, vm->area, vm->area_bytes) == 0;

	vm->guest_attach_ok = attached;
	sem_post(&vm->guest_attached);
	if (!attached)
		return NULL;
	guest->keep = guest_keep(vm, guest->ring.hdr->credits);

	for (;;) {
		/* Stop is read before the producer index, so a stop seen here
		 * comes after every descriptor published before it. */
		bool stopping = guest_stop_requested(vm);
		bool broken = false;
		uint32_t ready;

		guest_credit_news(vm);
		if (guest->nb_returns != 0)
			guest_give_back(vm);
		ready = zcd_rx_ready(&guest->ring, &broken);

		if (broken) {
			/* A backend that breaks the ring gets no more service. */
			sim_count(&vm->guest_bad_descs, 1);
			while (!guest_stop_requested(vm))
				guest_wait_event(vm);
			break;
		}
		if (ready == 0) {
			if (stopping)
				break;
			if (vm->poll_mode)
				guest_poll_pause();
			else if (!zcd_rx_arm_event(&guest->ring))
				guest_wait_event(vm);
			continue;
		}
		for (; ready > 0 && !guest_read_enough(vm); ready--) {
			struct zcd_rx_desc desc;

			zcd_rx_take(&guest->ring, &desc);
			guest_receive(vm, &desc);
			guest->frames_read++;
		}
		/* Only now: "drained" must mean "processed", not just "seen". */
		zcd_rx_consumed(&guest->ring);
		guest_release_held(vm, guest->keep);
		if (guest->nb_returns != 0)
			guest_give_back(vm);
		if (guest_read_enough(vm)) {
			if (vm->scribble_after != 0)
				guest_scribble_and_hang(vm);
			else
				guest_leave(vm);
			break;
		}
	}
	return NULL;
}

void zcd_hv_sim_guest_echo(struct sim_vm *vm)
{
	struct sim_guest *guest = &vm->guest;
	bool broken = false;
	uint32_t ready = zcd_rx_ready(&guest->ring, &broken);
	uint32_t space = zcd_ret_space(&guest->ring);
	uint64_t bytes = 0;

	if (broken) {
		sim_count(&vm->guest_bad_descs, 1);
		return;
	}
	/* What does not fit now goes back after the next handoff. */
	if (ready > space)
		ready = space;
	for (uint32_t i = 0; i < ready; i++) {
		struct zcd_rx_desc desc;

		zcd_rx_take(&guest->ring, &desc);
		zcd_ret_put(&guest->ring, &(struct zcd_ret_desc){
						  .buf_id = desc.buf_id,
						  .generation = desc.generation,
						  .flags = (desc.flags & ZCD_RXF_COPY) ? ZCD_RETF_COPY : 0,
					  });
		bytes += desc.length;
	}
	zcd_rx_consumed(&guest->ring);
	zcd_ret_publish(&guest->ring);
	sim_count(&vm->guest_rx_packets, ready);
	sim_count(&vm->guest_rx_bytes, bytes);
}
