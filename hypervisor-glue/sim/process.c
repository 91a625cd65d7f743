/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sim backend: the simulated guests' processes (zcdemux-sim-guest), whether
 * this process started them or an earlier zcdemux did and this one
 * re-attached to them.  Each is watched through a pidfd where the kernel
 * (or valgrind) has pidfd_open, otherwise by its pid: waitpid for a child,
 * kill(pid, 0) for another's.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

extern char **environ;

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/*
 * Where the guest program is: $ZCDEMUX_SIM_GUEST, or next to this
 * executable, or in ../lib/zcdemux from it (installed).  0, or -1 with a
 * message in err.
 */
static int find_guest_program(struct zcd_hv *hv, char *err, size_t errlen)
{
	const char *env = getenv(SIM_GUEST_ENV);
	char exe[PATH_MAX];
	ssize_t len;

	if (hv->guest_program[0] != '\0')
		return 0;
	if (env != NULL && env[0] != '\0') {
		snprintf(hv->guest_program, sizeof(hv->guest_program), "%s", env);
		return 0;
	}
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len > 0) {
		const char *candidates[] = { "%s/" SIM_GUEST_PROGRAM,
					     "%s/../lib/zcdemux/" SIM_GUEST_PROGRAM };
		char *dir;

		exe[len] = '\0';
		dir = dirname(exe);
		for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
			snprintf(hv->guest_program, sizeof(hv->guest_program), candidates[i], dir);
			if (access(hv->guest_program, X_OK) == 0)
				return 0;
		}
	}
	hv->guest_program[0] = '\0';
	snprintf(err, errlen, "cannot find the simulated guest's program " SIM_GUEST_PROGRAM
		 " next to this one or in ../lib/zcdemux (set " SIM_GUEST_ENV " to its path)");
	return -1;
}

/*
 * Start the guest's process with the VM file, the pool and the sink on
 * the descriptors it expects, in a process group of its own (a terminal's
 * ^C goes to zcdemux, which then stops its guests in order).  0 or an errno.
 */
static int spawn(struct zcd_hv *hv, struct sim_vm *vm)
{
	char *argv[] = { (char *)SIM_GUEST_PROGRAM, vm->sink_fd >= 0 ? (char *)"--sink" : NULL,
			 NULL };
	int from[] = { vm->file_fd, hv->pool.fd, vm->sink_fd };
	int high[] = { -1, -1, -1 };
	unsigned nb_fds = vm->sink_fd >= 0 ? 3 : 2;
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int rc = 0;

	/* Above the targets first, so that no dup2 overwrites another's source. */
	for (unsigned i = 0; i < nb_fds && rc == 0; i++) {
		high[i] = fcntl(from[i], F_DUPFD_CLOEXEC, SIM_GUEST_SINK_FD + 1);
		if (high[i] < 0)
			rc = errno;
	}
	sigemptyset(&none);
	sigfillset(&all);
	if (rc == 0)
		rc = posix_spawn_file_actions_init(&actions);
	if (rc == 0 && (rc = posix_spawnattr_init(&attr)) != 0)
		posix_spawn_file_actions_destroy(&actions);
	if (rc == 0) {
		for (unsigned i = 0; i < nb_fds && rc == 0; i++)
			rc = posix_spawn_file_actions_adddup2(&actions, high[i],
							      SIM_GUEST_VM_FD + (int)i);
		if (rc == 0)
			rc = posix_spawn_file_actions_addclosefrom_np(&actions,
								      SIM_GUEST_SINK_FD + 1);
		if (rc == 0)
			rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
							     POSIX_SPAWN_SETSIGMASK |
							     POSIX_SPAWN_SETSIGDEF);
		if (rc == 0)
			rc = posix_spawnattr_setsigmask(&attr, &none);
		if (rc == 0)
			rc = posix_spawnattr_setsigdefault(&attr, &all);
		if (rc == 0)
			rc = posix_spawn(&vm->guest_pid, hv->guest_program, &actions, &attr, argv,
					 environ);
		posix_spawnattr_destroy(&attr);
		posix_spawn_file_actions_destroy(&actions);
	}
	for (unsigned i = 0; i < nb_fds; i++)
		if (high[i] >= 0)
			close(high[i]);
	if (rc == 0)
		vm->guest_pidfd = pidfd_open(vm->guest_pid, 0); /* -1: watched by pid */
	return rc;
}

/*
 * Has the guest exited?  Does not wait.  Reaps it if it is this
 * process's child, keeping its wait status in *status (else -1).
 */
static bool exited_now(const struct sim_vm *vm, int *status)
{
	struct pollfd pfd = {.fd = vm->guest_pidfd, .events = POLLIN};
	pid_t pid;
	int st;

	*status = -1;
	pid = waitpid(vm->guest_pid, &st, WNOHANG);
	if (pid == vm->guest_pid) {
		*status = st;
		return true;
	}
	if (pid == 0)
		return false; /* a child still running */
	if (vm->guest_pidfd >= 0)
		return poll(&pfd, 1, 0) > 0;
	return kill(vm->guest_pid, 0) != 0 && errno == ESRCH;
}

/* Wait up to wait_ms for the guest to exit; true (and forgotten) if it has. */
static bool exited(struct sim_vm *vm, unsigned wait_ms, int *status)
{
	*status = -1;
	if (vm->guest_pid <= 0)
		return true;
	for (unsigned ms = 0; !exited_now(vm, status); ms++) {
		if (ms >= wait_ms)
			return false;
		sleep_ms(1);
	}
	sim_guest_forget(vm);
	return true;
}

bool sim_guest_exited(const struct sim_vm *vm)
{
	struct pollfd pfd = {.fd = vm->guest_pidfd, .events = POLLIN};
	siginfo_t info = {0};

	if (vm->guest_pid <= 0)
		return false;
	if (vm->guest_pidfd >= 0)
		return poll(&pfd, 1, 0) > 0;
	/* A child is looked at, not reaped: stopping it says how it ended. */
	if (waitid(P_PID, (id_t)vm->guest_pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0)
		return info.si_pid == vm->guest_pid;
	return errno == ECHILD && kill(vm->guest_pid, 0) != 0 && errno == ESRCH;
}

void sim_guest_forget(struct sim_vm *vm)
{
	if (vm->guest_pidfd >= 0)
		close(vm->guest_pidfd);
	vm->guest_pidfd = -1;
	vm->guest_pid = 0;
}

int sim_guest_adopt(struct sim_vm *vm, pid_t pid, const char *file_path)
{
	char link[64], target[PATH_MAX];
	ssize_t len;

	if (pid <= 0 || kill(pid, 0) != 0)
		return -1;
	vm->guest_pid = pid;
	vm->guest_pidfd = pidfd_open(pid, 0); /* -1: watched by pid */
	/* The pid may be another process's by now: the guest has the file on fd 3. */
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)pid, SIM_GUEST_VM_FD);
	len = readlink(link, target, sizeof(target) - 1);
	if (len <= 0 || (size_t)len != strlen(file_path) || memcmp(target, file_path, (size_t)len) != 0) {
		sim_guest_forget(vm);
		return -1;
	}
	return 0;
}

int sim_guest_stop(struct sim_vm *vm)
{
	int status = -1;

	if (vm->guest_pid <= 0)
		return -1;
	atomic_store_explicit(&vm->file->stop, 1, memory_order_release);
	sim_notify_guest(vm); /* a sleeping guest would otherwise notice only at its timeout */
	if (!exited(vm, SIM_GUEST_STOP_MS, &status)) {
		fprintf(stderr, "zcdemux: %s: the simulated guest did not stop in %u ms; "
			"killing it\n", vm->name, SIM_GUEST_STOP_MS);
		if (vm->guest_pidfd < 0 || pidfd_send_signal(vm->guest_pidfd, SIGKILL, NULL, 0) != 0)
			kill(vm->guest_pid, SIGKILL);
		exited(vm, SIM_GUEST_STOP_MS, &status);
		return status;
	}
	if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0)
		fprintf(stderr, "zcdemux: %s: the simulated guest exited with status %d\n",
			vm->name, WEXITSTATUS(status));
	else if (status != -1 && WIFSIGNALED(status))
		fprintf(stderr, "zcdemux: %s: the simulated guest was killed by signal %d\n",
			vm->name, WTERMSIG(status));
	return status;
}

int sim_guest_start(struct zcd_hv *hv, struct sim_vm *vm, char *err, size_t errlen)
{
	int rc, status;

	if (find_guest_program(hv, err, errlen) != 0)
		return -1;
	rc = spawn(hv, vm);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot start the simulated guest %s: %s", vm->name,
			 hv->guest_program, strerror(rc));
		return -1;
	}
	/* Like a frontend reaching "connected": nothing is sent before it attached. */
	for (unsigned ms = 0; ms < SIM_GUEST_START_MS; ms++) {
		uint32_t attached = atomic_load_explicit(&vm->status->attached, memory_order_acquire);

		if (attached == SIM_ATTACH_OK)
			return 0;
		if (attached == SIM_ATTACH_REJECTED || exited(vm, 0, &status)) {
			snprintf(err, errlen, "%s: the simulated guest rejected its ring or exited",
				 vm->name);
			sim_guest_stop(vm);
			return -1;
		}
		sleep_ms(1);
	}
	snprintf(err, errlen, "%s: the simulated guest did not attach in %u ms", vm->name,
		 SIM_GUEST_START_MS);
	sim_guest_stop(vm);
	return -1;
}
