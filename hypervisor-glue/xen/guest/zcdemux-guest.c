/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zcdemux-guest: the receiving end of a zcdemux device inside a Xen PV guest.
 * Runs the frontend library (zcd_front.h) over the real Xen services
 * (xen_io.h), writes frames to the chosen sinks and prints the one-line
 * report the test harness reads from the guest console.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "sink.h"
#include "xen_io.h"
#include "zcd_front.h"

#define PROGRAM "zcdemux-guest"
#define MAX_SINKS 8
#define REPORT_MAX 1024
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static const char usage_text[] =
	"Usage: " PROGRAM " [OPTION]...\n"
	"\n"
	"Receive frames from the zcdemux dataplane in a Xen guest.\n"
	"\n"
	"Runs as root inside a PV (or PVH/HVM) Linux guest with the xen-gntdev,\n"
	"xen-gntalloc and xen-evtchn modules loaded and /dev/xen/xenbus present.\n"
	"It waits for the zcdemux backend of this domain to offer a device\n"
	"(xenstore /local/domain/<backend>/backend/zcdemux/<this domain>/0, state\n"
	"InitWait), maps its shared ring, binds its event channel, shares copy\n"
	"pages with it and connects.  Each batch of frames is mapped with one\n"
	"grant-map call, checked, written to the sinks, unmapped with one call and\n"
	"given back to the backend.  When the backend closes, everything is\n"
	"released and the program waits for the backend to offer the device again.\n"
	"\n"
	"Options:\n"
	"  --sink SPEC            where frames go; may be given several times:\n"
	"                           none          discard them (the default)\n"
	"                           pcap:FILE     write a classic pcap file (Ethernet,\n"
	"                                         microsecond timestamps)\n"
	"                           tap:IFNAME    inject them into TAP interface IFNAME\n"
	"                                         (created if needed and brought up), so\n"
	"                                         that this guest's network stack\n"
	"                                         receives them\n"
	"  --backend-domid N      domain running the zcdemux backend (default 0)\n"
	"  --copy-slots N         share at most N copy slots for copied frames (default:\n"
	"                         as many as the backend's credits and copy-slots-max\n"
	"                         allow, within gntalloc's page limit); 0 = none\n"
	"  --sessions N           exit after N sessions have ended (default: run until\n"
	"                         signalled, reconnecting whenever the backend returns)\n"
	"  --misbehave            test mode: for the k-th remapped frame, k%10 == 3 also\n"
	"                         sends a forged return, 5 returns the buffer twice, 7\n"
	"                         also sends a stale generation, 9 keeps the buffer\n"
	"                         mapped and never returns it (until the session ends);\n"
	"                         it also ignores the backend's requests to give\n"
	"                         credits back, so the backend cuts it off\n"
	"  --scribble-session N   test mode: as soon as session N has connected, write\n"
	"                         impossible indices into the shared ring (the backend\n"
	"                         must cut this guest off, and only this one)\n"
	"  --report-interval SEC  print a progress line every SEC seconds (default: off)\n"
	"  -h, --help             show this help and exit\n"
	"\n"
	"Output:\n"
	"  At the end of every session and at exit, one line on standard output:\n"
	"    ZCD-GUEST name=<domain name> session=<n> frames=<n> bytes=<n>\n"
	"      remapped=<n> copied=<n> residue_bytes=<n> bad_descs=<n> map_calls=<n>\n"
	"      unmap_calls=<n> returns_sent=<n> forged_sent=<n> duplicate_sent=<n>\n"
	"      stale_sent=<n> withheld=<n> credit_limit=<n> credit_news=<n>\n"
	"      give_back_ignored=<n> sha256=<64 hex digits>\n"
	"  (on one line).  Counters are cumulative since start.  session counts\n"
	"  sessions that connected; residue_bytes counts non-zero bytes outside a\n"
	"  frame in the pages that carried it (bytes of earlier frames: must be 0);\n"
	"  bad_descs counts descriptors that were malformed or whose grants did not\n"
	"  map (neither delivered nor returned); map_calls and unmap_calls count\n"
	"  grant calls for frame buffers; returns_sent counts genuine returns (the\n"
	"  --misbehave extras are counted apart); credit_limit is how many frames\n"
	"  the session may hold (the backend's last announcement), credit_news how\n"
	"  many announcements were read, give_back_ignored how many withheld\n"
	"  buffers --misbehave kept when asked for them; sha256 is the digest of every\n"
	"  frame's bytes in order of arrival.  The exit line is left out when it\n"
	"  would repeat the line just printed.  Progress lines start with\n"
	"  \"" PROGRAM ": progress\".  Errors and session changes go to standard\n"
	"  error.\n"
	"\n"
	"Signals:\n"
	"  SIGINT, SIGTERM  close cleanly: state Closing, release every mapping and\n"
	"                   shared page, state Closed, print the final line, exit.\n"
	"\n"
	"Exit status:\n"
	"  0  stopped by a signal or after --sessions sessions\n"
	"  1  the Xen services failed or a sink could not be written\n"
	"  2  usage error\n";

struct options {
	const char *sinks[MAX_SINKS];
	unsigned nb_sinks;
	uint32_t backend_domid;
	uint32_t copy_slots_cap;
	uint64_t sessions; /* 0 = no limit */
	bool misbehave;
	uint64_t scribble_session; /* 0 = never */
	unsigned report_interval_s; /* 0 = no progress lines */
};

struct sinks {
	struct zcd_guest_sink *sink[MAX_SINKS];
	unsigned count;
};

static volatile sig_atomic_t stop_requested;
static int wake_fd = -1;

static void on_stop_signal(int signo)
{
	const uint64_t one = 1;
	int saved_errno = errno;
	ssize_t written;

	(void)signo;
	stop_requested = 1;
	/* Wake the poll in whichever thread it runs; a full counter is awake anyway. */
	written = write(wake_fd, &one, sizeof(one));
	(void)written;
	errno = saved_errno;
}

static int parse_number(const char *text, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long value;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || value > max)
		return -1;
	*out = value;
	return 0;
}

/* A count of at least 1 for option name; -1 after printing a usage error. */
static int parse_positive(const char *name, const char *text, uint64_t *out)
{
	if (parse_number(text, UINT64_MAX, out) == 0 && *out != 0)
		return 0;
	fprintf(stderr, PROGRAM ": %s: \"%s\" is not a positive number\n", name, text);
	return -1;
}

/* Fills opts; returns 0, 1 for --help, or -1 after printing a usage error. */
static int parse_options(int argc, char **argv, struct options *opts)
{
	enum { OPT_SINK = 256, OPT_BACKEND, OPT_COPY_SLOTS, OPT_SESSIONS, OPT_MISBEHAVE,
	       OPT_SCRIBBLE, OPT_REPORT };
	static const struct option longopts[] = {
		{ "sink", required_argument, NULL, OPT_SINK },
		{ "backend-domid", required_argument, NULL, OPT_BACKEND },
		{ "copy-slots", required_argument, NULL, OPT_COPY_SLOTS },
		{ "sessions", required_argument, NULL, OPT_SESSIONS },
		{ "misbehave", no_argument, NULL, OPT_MISBEHAVE },
		{ "scribble-session", required_argument, NULL, OPT_SCRIBBLE },
		{ "report-interval", required_argument, NULL, OPT_REPORT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t value;
	int opt;

	memset(opts, 0, sizeof(*opts));
	opts->copy_slots_cap = UINT32_MAX;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_SINK:
			if (strcmp(optarg, "none") == 0)
				break;
			if (opts->nb_sinks == MAX_SINKS) {
				fprintf(stderr, PROGRAM ": at most %d --sink options\n", MAX_SINKS);
				return -1;
			}
			opts->sinks[opts->nb_sinks++] = optarg;
			break;
		case OPT_BACKEND:
			/* Domain ids below DOMID_FIRST_RESERVED (0x7ff0). */
			if (parse_number(optarg, 0x7fef, &value) != 0) {
				fprintf(stderr, PROGRAM ": --backend-domid: \"%s\" is not a domain "
					"id (0..32751)\n", optarg);
				return -1;
			}
			opts->backend_domid = (uint32_t)value;
			break;
		case OPT_COPY_SLOTS:
			if (parse_number(optarg, UINT32_MAX - 1, &value) != 0) {
				fprintf(stderr, PROGRAM ": --copy-slots: \"%s\" is not a number\n",
					optarg);
				return -1;
			}
			opts->copy_slots_cap = (uint32_t)value;
			break;
		case OPT_SESSIONS:
			if (parse_positive("--sessions", optarg, &opts->sessions) != 0)
				return -1;
			break;
		case OPT_MISBEHAVE:
			opts->misbehave = true;
			break;
		case OPT_SCRIBBLE:
			if (parse_positive("--scribble-session", optarg, &opts->scribble_session) != 0)
				return -1;
			break;
		case OPT_REPORT:
			if (parse_number(optarg, 86400, &value) != 0 || value == 0) {
				fprintf(stderr, PROGRAM ": --report-interval: \"%s\" is not a number "
					"of seconds (1..86400)\n", optarg);
				return -1;
			}
			opts->report_interval_s = (unsigned)value;
			break;
		case 'h':
			return 1;
		default:
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, PROGRAM ": unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	return 0;
}

static void deliver_to_sinks(void *ctx, const struct zcd_front_frame *frame)
{
	struct sinks *sinks = ctx;

	for (unsigned i = 0; i < sinks->count; i++)
		zcd_guest_sink_write(sinks->sink[i], frame->data, frame->length);
}

static int open_sinks(const struct options *opts, struct sinks *sinks)
{
	char err[512], warning[512];

	for (unsigned i = 0; i < opts->nb_sinks; i++) {
		sinks->sink[i] = zcd_guest_sink_open(opts->sinks[i], err, sizeof(err), warning,
						     sizeof(warning));
		if (sinks->sink[i] == NULL) {
			fprintf(stderr, PROGRAM ": --sink %s: %s\n", opts->sinks[i], err);
			return -1;
		}
		sinks->count++;
		if (warning[0] != '\0')
			fprintf(stderr, PROGRAM ": warning: %s\n", warning);
	}
	return 0;
}

/* 0, or -1 if any sink lost frames (each is reported). */
static int close_sinks(struct sinks *sinks)
{
	char err[512];
	int rc = 0;

	for (unsigned i = 0; i < sinks->count; i++) {
		if (zcd_guest_sink_close(sinks->sink[i], err, sizeof(err)) != 0) {
			fprintf(stderr, PROGRAM ": %s\n", err);
			rc = -1;
		}
	}
	sinks->count = 0;
	return rc;
}

static int install_signal_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
		return -1;
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* The ZCD-GUEST line, unless it would repeat the last one printed. */
static void print_report(const struct zcd_front *fe, char *last, size_t len)
{
	char line[REPORT_MAX];

	zcd_front_format_report(fe, line, sizeof(line));
	if (strcmp(line, last) == 0)
		return;
	printf("%s\n", line);
	fflush(stdout);
	snprintf(last, len, "%s", line);
}

static void print_progress(const struct zcd_front *fe)
{
	const struct zcd_front_stats *st = zcd_front_stats(fe);

	printf(PROGRAM ": progress session=%" PRIu64 " frames=%" PRIu64 " bytes=%" PRIu64
	       " remapped=%" PRIu64 " copied=%" PRIu64 " residue_bytes=%" PRIu64
	       " bad_descs=%" PRIu64 " returns_sent=%" PRIu64 " withheld=%" PRIu64 "\n",
	       st->sessions, st->frames, st->bytes, st->remapped, st->copied, st->residue_bytes,
	       st->bad_descs, st->returns_sent, st->withheld);
	fflush(stdout);
}

/* Time until the next progress line, for zcd_front_step; -1 without one. */
static int step_timeout(uint64_t next_report_ms)
{
	uint64_t now = now_ms();

	if (next_report_ms == 0)
		return -1;
	return next_report_ms > now ? (int)(next_report_ms - now) : 0;
}

/* Run sessions until stopped; 0, or -1 if the Xen services failed. */
static int run(struct zcd_front *fe, const struct options *opts, char *last, size_t len)
{
	uint64_t interval_ms = (uint64_t)opts->report_interval_s * 1000;
	uint64_t next_report_ms = interval_ms != 0 ? now_ms() + interval_ms : 0;
	uint64_t sessions_ended = 0;

	while (!stop_requested) {
		int event = zcd_front_step(fe, step_timeout(next_report_ms));

		switch (event) {
		case ZCD_FRONT_IDLE:
			break;
		case ZCD_FRONT_CONNECTED:
			fprintf(stderr, PROGRAM ": session %" PRIu64 " connected to domain %" PRIu32
				"\n", zcd_front_stats(fe)->sessions, opts->backend_domid);
			break;
		case ZCD_FRONT_DISCONNECTED:
			fprintf(stderr, PROGRAM ": session %" PRIu64 " ended: %s\n",
				zcd_front_stats(fe)->sessions, zcd_front_reason(fe));
			print_report(fe, last, len);
			if (opts->sessions != 0 && ++sessions_ended >= opts->sessions)
				return 0;
			break;
		case ZCD_FRONT_HANDSHAKE_FAILED:
			fprintf(stderr, PROGRAM ": connecting failed: %s; waiting for the backend\n",
				zcd_front_reason(fe));
			break;
		default:
			fprintf(stderr, PROGRAM ": %s\n", zcd_front_reason(fe));
			return -1;
		}
		if (next_report_ms != 0 && now_ms() >= next_report_ms) {
			print_progress(fe);
			next_report_ms += interval_ms;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options opts;
	struct sinks sinks = { .count = 0 };
	struct zcd_front_params params;
	struct zcd_xen_io *io = NULL;
	struct zcd_front *fe = NULL;
	char err[512];
	char last_report[REPORT_MAX] = "";
	int status = EXIT_RUNTIME;
	int parsed = parse_options(argc, argv, &opts);

	if (parsed != 0) {
		if (parsed > 0) {
			fputs(usage_text, stdout);
			return 0;
		}
		fprintf(stderr, "Try '" PROGRAM " --help' for more information.\n");
		return EXIT_USAGE;
	}
	wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wake_fd < 0 || install_signal_handlers() != 0) {
		fprintf(stderr, PROGRAM ": cannot set up signal handling: %s\n", strerror(errno));
		return EXIT_RUNTIME;
	}
	if (open_sinks(&opts, &sinks) != 0)
		goto out;
	io = zcd_xen_io_open(wake_fd, err, sizeof(err));
	if (io == NULL) {
		fprintf(stderr, PROGRAM ": %s\n", err);
		goto out;
	}
	params = (struct zcd_front_params){
		.backend_domid = opts.backend_domid,
		.copy_slots_cap = opts.copy_slots_cap,
		.misbehave = opts.misbehave,
		.scribble_session = opts.scribble_session,
		.deliver = sinks.count != 0 ? deliver_to_sinks : NULL,
		.deliver_ctx = &sinks,
	};
	fe = zcd_front_create(&params, &zcd_xen_io_ops, io, err, sizeof(err));
	if (fe == NULL) {
		fprintf(stderr, PROGRAM ": %s\n", err);
		goto out;
	}
	fprintf(stderr, PROGRAM ": %s waiting for the zcdemux backend in domain %" PRIu32 "\n",
		zcd_front_name(fe), opts.backend_domid);
	status = run(fe, &opts, last_report, sizeof(last_report)) == 0 ? 0 : EXIT_RUNTIME;
	if (zcd_front_shutdown(fe) != 0) {
		fprintf(stderr, PROGRAM ": closing: %s\n", zcd_front_reason(fe));
		status = EXIT_RUNTIME;
	}
	print_report(fe, last_report, sizeof(last_report));

out:
	zcd_front_destroy(fe);
	zcd_xen_io_close(io);
	if (close_sinks(&sinks) != 0)
		status = EXIT_RUNTIME;
	close(wake_fd);
	return status;
}
