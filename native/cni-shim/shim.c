/*
 * vfplane-cni's front door. A container runtime execs a CNI plugin for every pod
 * interface; starting Node for each exec costs more than the work itself. This small
 * program forwards the call (its whole environment and stdin) over a Unix socket to
 * `vfplane cni serve`, a long-running process that has everything loaded, and relays its
 * answer (stdout, stderr and exit status). When no server listens, it execs the Node
 * plugin instead, with stdin untouched, so the plugin works either way. The whole
 * environment goes over, not only CNI_*: the plugin hands it to the IPAM plugins it
 * delegates to, as the spec asks, and their stderr comes back here with the plugin's.
 *
 *   vfplane-cni-shim SOCKET NODE PLUGIN_JS
 *   vfplane-cni                                  (as a runtime runs it: no arguments)
 *
 * Run with no arguments, as a runtime runs a plugin, it reads the three paths from a
 * file beside its own executable, named after it plus ".shim" (`vfplane cni install`
 * copies the shim to /opt/cni/bin/vfplane-cni and writes /opt/cni/bin/vfplane-cni.shim):
 * "socket=", "node=" and "plugin=" lines. No shell runs in between.
 *
 * Wire format, both directions on one stream socket:
 *   request:  "VFPCNI2\n", then NAME=VALUE\0 for each environment variable, then \0,
 *             then stdin's bytes; the shim then shuts down its write side.
 *   reply:    the exit status and stderr's length as decimal digits, a space between,
 *             "\n", stderr's bytes, then stdout's bytes until EOF.
 * A server that hangs up without a byte is taken for one from before version 2 (during
 * an upgrade) and asked again with "VFPCNI1\n" (it keeps CNI_* only and answers
 * "STATUS\n" then stdout). A server that answers "RUNSELF\n" has run nothing: the call
 * sets vfplane settings (VFPLANE_*) the server runs with other values of, or is larger
 * than it takes; the shim runs the plugin itself, with the stdin it read.
 *
 * Signals: the first SIGTERM or SIGINT lets the call finish and its answer stand (the
 * plugin's own contract, which the server keeps for the work it does), said on stderr; a
 * second stops waiting for it (exit 143 or 130; the server still finishes the call).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A JSON string body: quotes, backslashes and control characters escaped. */
static void json_str(const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
}

/* A CNI error on stdout, as the spec wants failures reported. */
static int fail(const char *msg, const char *detail)
{
	printf("{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"vfplane-cni shim: ");
	json_str(msg);
	printf("\",\"details\":\"");
	json_str(detail);
	printf("\"}\n");
	return 1;
}

/* A growing request buffer. */
struct req {
	char *p;
	size_t len, cap;
};

/* Appends to the request; -1 when memory runs out. */
static int req_add(struct req *q, const void *data, size_t len)
{
	if (q->len + len > q->cap) {
		size_t cap = q->cap ? q->cap : 4096;
		while (cap < q->len + len)
			cap *= 2;
		char *p = realloc(q->p, cap);
		if (!p)
			return -1;
		q->p = p;
		q->cap = cap;
	}
	memcpy(q->p + q->len, data, len);
	q->len += len;
	return 0;
}

/* The paths from <own executable>.shim; 0 on success. */
static int read_paths(char *socket_path, char *node, char *plugin, size_t cap)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 6);
	if (n <= 0)
		return -1;
	strcpy(self + n, ".shim");
	FILE *f = fopen(self, "re");
	if (!f)
		return -1;
	char line[4200];
	socket_path[0] = node[0] = plugin[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		char *eq = strchr(line, '=');
		if (!eq || strlen(eq + 1) >= cap)
			continue;
		*eq = 0;
		char *dst = !strcmp(line, "socket") ? socket_path : !strcmp(line, "node") ? node : !strcmp(line, "plugin") ? plugin : NULL;
		if (dst)
			strcpy(dst, eq + 1);
	}
	fclose(f);
	return socket_path[0] && node[0] && plugin[0] ? 0 : -1;
}

/* A connected socket to the server, or -1. */
static int dial(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

#define HUNG_UP (-2)  /* the server closed the connection before a byte of its answer */
#define RUN_SELF (-3) /* the server ran nothing and asks the shim to run the plugin */

static volatile sig_atomic_t signals_seen;

/* First signal: said, and the call goes on; a second: stop waiting (the server goes on). */
static void on_signal(int sig)
{
	if (signals_seen++ == 0) {
		static const char term[] = "vfplane-cni: SIGTERM: finishing the call under way; its answer stands (a second signal stops waiting for it)\n";
		static const char intr[] = "vfplane-cni: SIGINT: finishing the call under way; its answer stands (a second signal stops waiting for it)\n";
		(void)!write(STDERR_FILENO, sig == SIGTERM ? term : intr, sig == SIGTERM ? sizeof(term) - 1 : sizeof(intr) - 1);
		return;
	}
	_exit(128 + sig);
}

/* The first line of the server's answer, into head (NUL-terminated, without "\n");
 * its length, 0 when the server hung up before a byte, -1 when it stopped mid-line. */
static ssize_t read_head(int fd, char *head, size_t cap)
{
	size_t have = 0;
	while (have + 1 < cap) {
		ssize_t n = read(fd, head + have, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return have == 0 ? 0 : -1;
		if (head[have] == '\n') {
			head[have] = 0;
			return (ssize_t)have + 1;
		}
		have++;
	}
	return -1; /* no line end where one must be: not an answer */
}

/* Sends the request, then relays the answer to stdout and stderr and returns its exit
 * status. The answer: the status line ("STATUS ERRLEN" in version 2, "STATUS" in
 * version 1), stderr's ERRLEN bytes (none in version 1), then stdout until EOF. */
static int exchange(int fd, const struct req *q, int version)
{
	if (write_all(fd, q->p, q->len) < 0) {
		/* A server that takes no more (a request over its limit) has said why first. */
		int e = errno;
		char h[32];
		if ((e == EPIPE || e == ECONNRESET) && read_head(fd, h, sizeof(h)) > 0 && !strcmp(h, "RUNSELF")) {
			close(fd);
			return RUN_SELF;
		}
		return fail("cannot write to the server", strerror(e));
	}
	shutdown(fd, SHUT_WR);
	int status = -1;
	long errlen = -1;
	char head[32];
	ssize_t got = read_head(fd, head, sizeof(head));
	if (got == 0) {
		close(fd);
		return HUNG_UP;
	}
	if (got < 0)
		return fail("the server closed the connection without an answer", "see the server's log");
	if (!strcmp(head, "RUNSELF")) {
		close(fd);
		return RUN_SELF;
	}
	{
		char *end, *end2 = NULL;
		long v = strtol(head, &end, 10);
		long e = version == 1 ? (*end == 0 ? 0 : -1) : *end == ' ' ? strtol(end + 1, &end2, 10) : -1;
		if (got > 1 && end != head && v >= 0 && v <= 255 && e >= 0 && (version == 1 || *end2 == 0)) {
			status = (int)v;
			errlen = e;
		}
	}
	if (status < 0)
		return fail("the server's answer is malformed", "run `vfplane cni install` again: the shim and the server must come from one vfplane");
	char buf[65536];
	while (errlen > 0) {
		ssize_t n = read(fd, buf, (size_t)(errlen < (long)sizeof(buf) ? errlen : (long)sizeof(buf)));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail("the server closed the connection in the middle of its answer", "see the server's log");
		(void)!write_all(STDERR_FILENO, buf, (size_t)n);
		errlen -= n;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
			return 1;
	}
	close(fd);
	return status;
}

/* Runs the Node plugin in this process (NODE PLUGIN_JS); returns only to fail. */
static void exec_plugin(char **argv, const char *why)
{
	char *args[] = { argv[2], argv[3], NULL };
	execve(argv[2], args, environ);
	exit(fail(why, strerror(errno)));
}

static void run_fallback(char **argv)
{
	exec_plugin(argv, "no server and the Node plugin cannot be started");
}

/* The plugin run here after all, its stdin what was read for the server (len bytes at p):
 * put in a memory file at offset 0, which becomes fd 0. */
static void run_self(char **argv, const char *p, size_t len)
{
	int m = memfd_create("vfplane-cni-stdin", MFD_CLOEXEC);
	if (m < 0 || write_all(m, p, len) < 0 || lseek(m, 0, SEEK_SET) < 0 || dup2(m, STDIN_FILENO) < 0)
		exit(fail("cannot hand the network configuration to the plugin", strerror(errno)));
	exec_plugin(argv, "the Node plugin cannot be started");
}

int main(int argc, char **argv)
{
	/* A server that goes away mid-request must give us EPIPE to report, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	/* No SA_RESTART: a blocked read returns EINTR, and each loop goes on reading. An
	 * exec'd plugin gets the default actions back, and its own contract. */
	struct sigaction sa_sig = { .sa_handler = on_signal };
	sigemptyset(&sa_sig.sa_mask);
	sigaction(SIGTERM, &sa_sig, NULL);
	sigaction(SIGINT, &sa_sig, NULL);
	static char sock_path[4096], node[4096], plugin[4096];
	char *args[5];
	if (argc == 1) {
		if (read_paths(sock_path, node, plugin, sizeof(sock_path)) < 0)
			return fail("cannot read the socket, node and plugin paths from the .shim file beside this executable", "run `vfplane cni install` again");
		args[0] = argv[0];
		args[1] = sock_path;
		args[2] = node;
		args[3] = plugin;
		args[4] = NULL;
		argv = args;
		argc = 4;
	}
	if (argc != 4)
		return fail("usage: vfplane-cni-shim SOCKET NODE PLUGIN_JS", "run `vfplane cni install` to write the wrapper");

	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(argv[1]) >= sizeof(sa.sun_path))
		run_fallback(argv); /* no server can listen there: the plugin runs standalone */
	strcpy(sa.sun_path, argv[1]);

	int fd = dial(&sa);
	if (fd < 0)
		run_fallback(argv); /* no server (not started, or gone): the plugin runs standalone */

	/* The whole request goes in one write: a write per variable would wake the server
	 * for each (a dozen round trips between the two processes, ~1.5 ms here). */
	struct req q = { 0 };
	if (req_add(&q, "VFPCNI2\n", 8) < 0)
		return fail("out of memory", "");
	for (char **e = environ; *e; e++) {
		if (req_add(&q, *e, strlen(*e) + 1) < 0)
			return fail("out of memory", "");
	}
	if (req_add(&q, "", 1) < 0)
		return fail("out of memory", "");
	size_t stdin_at = q.len;
	char buf[65536];
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("cannot read stdin", strerror(errno));
		if (n == 0)
			break;
		if (req_add(&q, buf, (size_t)n) < 0)
			return fail("out of memory", "");
	}
	int status = exchange(fd, &q, 2);
	if (status == RUN_SELF)
		run_self(argv, q.p + stdin_at, q.len - stdin_at);
	if (status != HUNG_UP)
		return status;
	/* Not a byte: a server from before version 2 (an upgrade's shim is installed before
	 * the new server runs) hangs up on a request it cannot parse, having done nothing.
	 * Asked again in version 1 (the same framing; it keeps only CNI_*) it answers,
	 * without stderr. */
	q.p[6] = '1'; /* "VFPCNI2\n" -> "VFPCNI1\n" */
	fd = dial(&sa);
	if (fd < 0)
		return fail("the server closed the connection without an answer, and is gone", strerror(errno));
	status = exchange(fd, &q, 1);
	if (status == RUN_SELF)
		run_self(argv, q.p + stdin_at, q.len - stdin_at);
	return status == HUNG_UP ? fail("the server closed the connection without an answer", "see the server's log") : status;
}
