/*
 * Traffic generator and sink for bench/datapath (compiled by the bench with
 * `cc -O2`). The bench measures the datapath, so the tools must cost far less
 * per packet than the filters under test: UDP goes out with sendmmsg and in
 * with recvmmsg in batches, request/response is plain blocking C. Every mode
 * is bounded in time (and the sender also in packets); results are one JSON
 * line on stdout.
 *
 *   palbench udp-sink  PORT MAX_SECONDS IDLE_MS CPU
 *       counts datagrams on PORT (IPv4) from the first one until IDLE_MS pass
 *       without any, or MAX_SECONDS: {"received":N,"first_to_last_s":S}
 *   palbench udp-send  DST PORT SECONDS MAX_PACKETS CPU
 *       64-byte datagrams, batches of 64: {"sent":N,"seconds":S}
 *   palbench rr-server PORT MAX_SECONDS CPU
 *       echoes one byte per byte, one connection at a time
 *   palbench rr-client DST PORT COUNT MAX_SECONDS CPU
 *       1-byte TCP round trips (TCP_NODELAY):
 *       {"n":N,"p50_us":A,"p99_us":B}
 *
 * CPU < 0: no pinning.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PAYLOAD 64
#define RR_MAX 1000000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "palbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void pin(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		die("sched_setaffinity");
}

static struct sockaddr_in addr4(const char *ip, int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	if (ip == NULL)
		a.sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
		fprintf(stderr, "palbench: not an IPv4 address: %s\n", ip);
		exit(2);
	}
	return a;
}

static int udp_sink(int port, double max_s, int idle_ms, int cpu)
{
	pin(cpu);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	int buf = 32 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf));
	struct sockaddr_in a = addr4(NULL, port);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("bind");
	printf("{\"ready\":true}\n");
	fflush(stdout);

	static char bufs[BATCH][2048];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	uint64_t received = 0;
	double start = now_s(), first = 0, last = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	for (;;) {
		double t = now_s();
		if (t - start > max_s)
			break;
		/* before the first datagram wait up to max_s; after it, idle_ms ends the count */
		int wait = received == 0 ? 100 : idle_ms;
		int r = poll(&p, 1, wait);
		if (r < 0 && errno != EINTR)
			die("poll");
		if (r == 0) {
			if (received > 0)
				break;
			continue;
		}
		for (;;) {
			int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
			if (got < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				die("recvmmsg");
			}
			if (received == 0)
				first = now_s();
			received += (uint64_t)got;
			last = now_s();
			if (got < BATCH)
				break;
		}
	}
	printf("{\"received\":%llu,\"first_to_last_s\":%.6f}\n", (unsigned long long)received,
	       received ? last - first : 0.0);
	return 0;
}

static int udp_send(const char *dst, int port, double seconds, uint64_t max_packets, int cpu)
{
	pin(cpu);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	struct sockaddr_in a = addr4(dst, port);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("connect");
	static char payload[PAYLOAD];
	struct mmsghdr msgs[BATCH];
	struct iovec iov = {.iov_base = payload, .iov_len = PAYLOAD};
	for (int i = 0; i < BATCH; i++) {
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	uint64_t sent = 0;
	double start = now_s(), t = start;
	while (sent < max_packets && (t = now_s()) - start < seconds) {
		unsigned n = BATCH;
		if (max_packets - sent < n)
			n = (unsigned)(max_packets - sent);
		int r = sendmmsg(fd, msgs, n, 0);
		if (r < 0) {
			/* ENOBUFS/ECONNREFUSED (ICMP from a drop): keep sending, bounded by time */
			if (errno == ENOBUFS || errno == ECONNREFUSED || errno == EAGAIN || errno == EINTR)
				continue;
			die("sendmmsg");
		}
		sent += (uint64_t)r;
	}
	printf("{\"sent\":%llu,\"seconds\":%.6f}\n", (unsigned long long)sent, now_s() - start);
	return 0;
}

static int rr_server(int port, double max_s, int cpu)
{
	pin(cpu);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = addr4(NULL, port);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("bind");
	if (listen(fd, 16) != 0)
		die("listen");
	printf("{\"ready\":true}\n");
	fflush(stdout);
	double start = now_s();
	while (now_s() - start < max_s) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		int c = accept(fd, NULL, NULL);
		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		char b[64];
		for (;;) {
			ssize_t n = read(c, b, sizeof(b));
			if (n <= 0 || write(c, b, (size_t)n) != n)
				break;
			if (now_s() - start > max_s)
				break;
		}
		close(c);
	}
	return 0;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static int rr_client(const char *dst, int port, int count, double max_s, int cpu)
{
	pin(cpu);
	if (count < 1 || count > RR_MAX)
		count = RR_MAX;
	double *lat = malloc(sizeof(double) * (size_t)count);
	if (!lat)
		die("malloc");
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = addr4(dst, port);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("connect");
	int n = 0;
	double start = now_s();
	char b = 'r';
	while (n < count) {
		double t0 = now_s();
		if (t0 - start > max_s)
			break;
		if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1)
			break;
		lat[n++] = (now_s() - t0) * 1e6;
	}
	close(fd);
	if (n == 0) {
		printf("{\"n\":0}\n");
		return 0;
	}
	qsort(lat, (size_t)n, sizeof(double), cmp_double);
	int i50 = (int)(0.50 * n), i99 = (int)(0.99 * n);
	if (i99 >= n)
		i99 = n - 1;
	printf("{\"n\":%d,\"p50_us\":%.2f,\"p99_us\":%.2f}\n", n, lat[i50], lat[i99]);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: palbench udp-sink PORT MAX_S IDLE_MS CPU | udp-send DST PORT S MAX_PKTS CPU |"
			" rr-server PORT MAX_S CPU | rr-client DST PORT COUNT MAX_S CPU\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *m = argv[1];
	if (strcmp(m, "udp-sink") == 0 && argc == 6)
		return udp_sink(atoi(argv[2]), atof(argv[3]), atoi(argv[4]), atoi(argv[5]));
	if (strcmp(m, "udp-send") == 0 && argc == 7)
		return udp_send(argv[2], atoi(argv[3]), atof(argv[4]), strtoull(argv[5], NULL, 10),
				atoi(argv[6]));
	if (strcmp(m, "rr-server") == 0 && argc == 5)
		return rr_server(atoi(argv[2]), atof(argv[3]), atoi(argv[4]));
	if (strcmp(m, "rr-client") == 0 && argc == 7)
		return rr_client(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]), atoi(argv[6]));
	usage();
	return 2;
}
