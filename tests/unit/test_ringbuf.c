// SPDX-License-Identifier: MIT
/*
 * test_ringbuf.c - the per-thread ring buffers: contents, exact loss
 * accounting under a concurrent consumer in both modes, merging, crashes
 * of the writing process, nesting from signal handlers, the consumer lock,
 * recycling of buffers across thousands of threads, reset and stats.
 *
 * Built twice: with ASan+UBSan (every test), and without sanitizers as
 * test_ringbuf_perf (RB_PERF_ONLY: the throughput numbers only).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "trace/clock.h"
#include "trace/ringbuf.h"

/* ---- helpers ---------------------------------------------------------------- */

static __attribute__((unused)) int my_tid(void)
{
	return (int)syscall(SYS_gettid);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct sd_rb_region *region(size_t kb, unsigned int bufs, bool overwrite)
{
	struct sd_rb_config cfg = {.buf_kb = kb, .max_bufs = bufs, .overwrite = overwrite};
	struct sd_rb_region *r = NULL;

	CHECK_EQ(sd_rb_region_create(&cfg, &r), 0);
	CHECK(r);
	return r;
}

static struct sd_rb_reader *reader(struct sd_rb_region *r, bool consuming)
{
	struct sd_rb_reader *rd = NULL;

	CHECK_EQ(sd_rb_reader_open(r, consuming, &rd), 0);
	return rd;
}

static uint8_t pat(uint64_t seq, uint32_t k)
{
	return (uint8_t)(seq * 31 + k * 7 + 1);
}

/* payload: the sequence number, then a pattern derived from it */
static void fill(void *p, uint32_t len, uint64_t seq)
{
	uint8_t *b = p;

	for (uint32_t k = 0; k < len; k++)
		b[k] = k < 8 ? (uint8_t)(seq >> (8 * k)) : pat(seq, k);
}

static uint64_t payload_seq(const struct sd_rb_event *ev)
{
	uint64_t seq;

	CHECK(ev->len >= 8);
	memcpy(&seq, ev->payload, 8);
	return seq;
}

static __attribute__((unused)) bool intact(const struct sd_rb_event *ev)
{
	const uint8_t *b = ev->payload;
	uint64_t seq = payload_seq(ev);

	for (uint32_t k = 8; k < ev->len; k++)
		if (b[k] != pat(seq, k))
			return false;
	return true;
}

/* one record of @len bytes carrying @seq; false when dropped */
static __attribute__((unused)) bool put(struct sd_rb_region *r, uint32_t len, uint64_t seq,
					uint64_t ts)
{
	struct sd_rb_res res;
	void *p = sd_rb_reserve(r, len, ts, (uint16_t)(seq & 0xff), &res);

	if (!p)
		return false;
	CHECK(p == res.payload);
	CHECK(((uintptr_t)p & 7) == 0);
	fill(p, len, seq);
	sd_rb_commit(r, &res);
	return true;
}

/* ---- 1. one thread ---------------------------------------------------------- */

#ifndef RB_PERF_ONLY

TEST(single_thread)
{
	struct sd_rb_region *r = region(64, 4, false);
	struct sd_rb_reader *rd;
	struct sd_rb_event ev;
	struct sd_rb_stats st;
	const int n = 1000;
	int got = 0;

	prctl(PR_SET_NAME, "rb-single");
	for (int i = 0; i < n; i++)
		CHECK(put(r, 8 + (uint32_t)(i % 61), (uint64_t)i, 1000 + (uint64_t)i));
	sd_rb_stats(r, &st);
	CHECK_EQ(st.written, n);
	CHECK_EQ(st.entries, n);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.overrun, 0);
	CHECK_EQ(st.bufs, 1);

	rd = reader(r, true);
	while (sd_rb_read(rd, &ev) == 1) {
		CHECK_EQ(payload_seq(&ev), got);
		CHECK_EQ(ev.len, 8 + got % 61);
		CHECK(intact(&ev));
		CHECK_EQ(ev.ts, 1000 + got);
		CHECK_EQ(ev.cpu, got & 0xff);
		CHECK_EQ(ev.tid, my_tid());
		CHECK_STREQ(ev.comm, "rb-single");
		CHECK_EQ(ev.lost, 0);
		CHECK_EQ(ev.buf, 0);
		got++;
	}
	CHECK_EQ(got, n);
	sd_rb_stats(r, &st);
	CHECK_EQ(st.entries, 0);
	CHECK_EQ(st.written, n);
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(r);
}

/* the longest payload fits a page; one byte more is dropped and counted */
/*
 * A thread renamed after its first record (pthread_setname_np at the top of
 * a thread, after a probe fired in it): the name is read again at the first
 * record comm_ticks after the last read, and from there on the records
 * carry the new one (a new page). With comm_ticks 0, the name of the claim
 * stays.
 */
static void rename_case(uint64_t ticks)
{
	struct sd_rb_config cfg = {.buf_kb = 64, .max_bufs = 4, .comm_ticks = ticks};
	struct sd_rb_region *r = NULL;
	struct sd_rb_reader *rd;
	struct sd_rb_event ev;
	char old[16] = "";
	int got = 0;

	prctl(PR_GET_NAME, old);
	CHECK_EQ(sd_rb_region_create(&cfg, &r), 0);
	prctl(PR_SET_NAME, "rb-before");
	for (int i = 0; i < 10; i++)
		CHECK(put(r, 16, (uint64_t)i,
			  1 + (uint64_t)i)); /* the first sets the due time: 101 */
	prctl(PR_SET_NAME, "rb-after");
	CHECK(put(r, 16, 10, 50)); /* not due yet */
	for (int i = 11; i < 20; i++)
		CHECK(put(r, 16, (uint64_t)i, 200 + (uint64_t)i));
	rd = reader(r, true);
	while (sd_rb_read(rd, &ev) == 1) {
		CHECK_EQ(payload_seq(&ev), got);
		CHECK_STREQ(ev.comm, ticks && got > 10 ? "rb-after" : "rb-before");
		got++;
	}
	CHECK_EQ(got, 20);
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(r);
	prctl(PR_SET_NAME, old);
}

TEST(rename_shows)
{
	rename_case(100);
	rename_case(0);
}

TEST(payload_limits)
{
	struct sd_rb_region *r = region(8, 1, false);
	struct sd_rb_reader *rd = reader(r, true);
	struct sd_rb_event ev;
	struct sd_rb_stats st;

	/* 2 pages, discard mode: the first record fills page 0 exactly */
	CHECK(put(r, SD_RB_MAX_PAYLOAD, 1, 1));
	CHECK(!put(r, SD_RB_MAX_PAYLOAD + 1, 2, 2));
	CHECK(put(r, 8, 3, 3));
	/* page 2 would take page 0's place, unread yet */
	CHECK(!put(r, SD_RB_MAX_PAYLOAD, 4, 4));
	sd_rb_stats(r, &st);
	CHECK_EQ(st.dropped, 2);
	CHECK_EQ(sd_rb_read(rd, &ev), 1);
	CHECK_EQ(ev.len, SD_RB_MAX_PAYLOAD);
	CHECK_EQ(payload_seq(&ev), 1);
	CHECK(intact(&ev));
	CHECK(put(r, SD_RB_MAX_PAYLOAD, 5, 5)); /* now it is */
	CHECK_EQ(sd_rb_read(rd, &ev), 1);
	CHECK_EQ(payload_seq(&ev), 3);
	CHECK_EQ(sd_rb_read(rd, &ev), 1);
	CHECK_EQ(payload_seq(&ev), 5);
	CHECK(intact(&ev));
	CHECK_EQ(ev.lost, 0);
	CHECK_EQ(sd_rb_read(rd, &ev), 0);
	/* an empty payload is a record too */
	{
		struct sd_rb_res res;

		CHECK(sd_rb_reserve(r, 0, 77, 0, &res));
		sd_rb_commit(r, &res);
	}
	CHECK_EQ(sd_rb_read(rd, &ev), 1);
	CHECK_EQ(ev.len, 0);
	CHECK_EQ(ev.ts, 77);
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(r);
}

/* a discarded reservation is neither read nor counted */
TEST(discard_reservation)
{
	struct sd_rb_region *r = region(8, 1, true);
	struct sd_rb_reader *rd = reader(r, true);
	struct sd_rb_event ev;
	struct sd_rb_stats st;
	uint64_t expect = 0;

	for (uint64_t i = 0; i < 5000; i++) {
		struct sd_rb_res res;
		void *p = sd_rb_reserve(r, 40 + (uint32_t)(i % 200), i, 0, &res);

		CHECK(p);
		fill(p, res.len, i);
		if (i % 3 == 1)
			sd_rb_discard(r, &res);
		else
			sd_rb_commit(r, &res);
		while (sd_rb_read(rd, &ev) == 1) {
			while (expect % 3 == 1)
				expect++;
			CHECK_EQ(payload_seq(&ev), expect);
			CHECK(intact(&ev));
			CHECK_EQ(ev.lost, 0);
			expect++;
		}
	}
	sd_rb_stats(r, &st);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.overrun, 0);
	CHECK_EQ(st.written, 5000 - 5000 / 3 - (5000 % 3 > 1));
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(r);
}

/* ---- 2. exact accounting under a concurrent consumer -------------------------- */

struct acct {
	struct sd_rb_region *r;
	uint64_t n;
	atomic_int done;
	uint64_t read, lost, gaps;
	int bad;
};

/* sizes vary, so that pages end with pads of every length */
static uint32_t acct_len(uint64_t seq)
{
	return 16 + (uint32_t)(seq * 7 % 193);
}

static void *acct_writer(void *arg)
{
	struct acct *a = arg;

	for (uint64_t i = 0; i < a->n; i++)
		put(a->r, acct_len(i), i, i);
	atomic_store(&a->done, 1);
	return NULL;
}

static void acct_check(struct acct *a, const struct sd_rb_event *ev, int64_t *prev, bool overwrite)
{
	uint64_t seq = payload_seq(ev);

	if ((int64_t)seq <= *prev || !intact(ev) || ev->len != acct_len(seq)) {
		if (!a->bad++)
			fprintf(stderr, "bad record: seq %llu after %lld len %u\n",
				(unsigned long long)seq, (long long)*prev, ev->len);
		return;
	}
	/* overwrite mode drops nothing: every gap is exactly what was lost */
	if (overwrite && seq - (uint64_t)(*prev + 1) != ev->lost) {
		if (!a->bad++)
			fprintf(stderr, "gap %llu but lost %llu\n",
				(unsigned long long)(seq - (uint64_t)(*prev + 1)),
				(unsigned long long)ev->lost);
	}
	if (!overwrite && ev->lost && !a->bad++)
		fprintf(stderr, "discard mode lost %llu\n", (unsigned long long)ev->lost);
	a->gaps += seq - (uint64_t)(*prev + 1);
	a->read++;
	a->lost += ev->lost;
	*prev = (int64_t)seq;
}

static void accounting(bool overwrite)
{
	struct acct a = {.r = region(16, 2, overwrite), .n = 10000000};
	struct sd_rb_reader *rd = reader(a.r, true);
	struct sd_rb_event ev;
	struct sd_rb_stats st;
	pthread_t w;
	int64_t prev = -1;
	double t0 = now_s();

	CHECK_EQ(pthread_create(&w, NULL, acct_writer, &a), 0);
	for (;;) {
		int done = atomic_load(&a.done);
		int rc;

		while ((rc = sd_rb_read(rd, &ev)) == 1)
			acct_check(&a, &ev, &prev, overwrite);
		CHECK_EQ(rc, 0);
		if (done)
			break;
	}
	pthread_join(w, NULL);
	sd_rb_stats(a.r, &st);
	printf("  %s: %llu written, %llu read, %llu lost, %llu dropped (%.2f s)\n",
	       overwrite ? "overwrite" : "discard", (unsigned long long)a.n,
	       (unsigned long long)a.read, (unsigned long long)a.lost,
	       (unsigned long long)st.dropped, now_s() - t0);
	CHECK_EQ(a.bad, 0);
	CHECK_EQ(a.read + a.lost + st.dropped, a.n);
	CHECK_EQ(st.written, a.n - st.dropped);
	CHECK_EQ(st.entries, 0);
	if (overwrite) {
		CHECK_EQ(prev, a.n - 1); /* the newest record is never overwritten */
		CHECK_EQ(st.dropped, 0);
		CHECK_EQ(st.overrun, a.lost);
		CHECK_EQ(a.gaps, a.lost);
	} else {
		CHECK_EQ(a.lost, 0);
		CHECK_EQ(st.overrun, 0);
		/* drops after the last record read are no gap */
		CHECK_EQ(a.gaps + (uint64_t)(a.n - 1 - prev), st.dropped);
	}
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(a.r);
}

TEST(accounting_discard)
{
	accounting(false);
}

TEST(accounting_overwrite)
{
	accounting(true);
}

/* overwrite mode without a reader: the newest records survive, the rest is overrun */
TEST(overwrite_no_reader)
{
	struct sd_rb_region *r = region(16, 1, true);
	struct sd_rb_reader *snap, *rd;
	struct sd_rb_event ev;
	struct sd_rb_stats st;
	const uint64_t n = 100000;
	uint64_t got = 0, first = 0, seq = 0;

	for (uint64_t i = 0; i < n; i++)
		CHECK(put(r, 8 + (uint32_t)(i % 40), i, i));
	sd_rb_stats(r, &st);
	CHECK_EQ(st.written, n);
	CHECK(st.overrun > 0);
	CHECK_EQ(st.overrun + st.entries, n);

	/* the `trace` file: the oldest present first, no loss reported for the start */
	snap = reader(r, false);
	while (sd_rb_read(snap, &ev) == 1) {
		seq = payload_seq(&ev);
		if (!got)
			first = seq;
		CHECK_EQ(seq, first + got);
		CHECK_EQ(ev.lost, 0);
		CHECK(intact(&ev));
		got++;
	}
	sd_rb_reader_close(snap);
	CHECK_EQ(got, st.entries);
	CHECK_EQ(seq, n - 1);
	CHECK_EQ(first, st.overrun);

	/* trace_pipe: the same records, the overrun reported as lost on the first */
	rd = reader(r, true);
	CHECK_EQ(sd_rb_read(rd, &ev), 1);
	CHECK_EQ(payload_seq(&ev), first);
	CHECK_EQ(ev.lost, first);
	sd_rb_reader_close(rd);
	/* a new consumer goes on where the last one stopped */
	rd = reader(r, true);
	CHECK_EQ(sd_rb_read(rd, &ev), 1);
	CHECK_EQ(payload_seq(&ev), first + 1);
	CHECK_EQ(ev.lost, 0);
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(r);
}

/* ---- 3. many threads, merged by timestamp -------------------------------------- */

#define MT_THREADS 8
#define MT_RECORDS 100000

struct mt {
	struct sd_rb_region *r;
	atomic_ullong clock;
	atomic_int done;
	int tid[MT_THREADS];
};

struct mt_arg {
	struct mt *m;
	int no;
};

static void *mt_writer(void *arg)
{
	struct mt_arg *a = arg;
	struct mt *m = a->m;

	m->tid[a->no] = my_tid();
	for (uint64_t i = 0; i < MT_RECORDS; i++) {
		uint64_t ts = atomic_fetch_add(&m->clock, 1);

		CHECK(put(m->r, 24, (uint64_t)a->no << 32 | i, ts));
	}
	sd_rb_thread_exit(m->r);
	atomic_fetch_add(&m->done, 1);
	return NULL;
}

static void mt_run(bool concurrent)
{
	struct mt m = {.r = region(4096, 16, false)};
	struct mt_arg args[MT_THREADS];
	pthread_t th[MT_THREADS];
	uint64_t next[MT_THREADS] = {0}, last_ts[16] = {0}, prev_ts = 0, total = 0;
	struct sd_rb_reader *rd;
	struct sd_rb_event ev;
	struct sd_rb_stats st;
	int unordered = 0;

	for (int i = 0; i < MT_THREADS; i++) {
		args[i] = (struct mt_arg){&m, i};
		CHECK_EQ(pthread_create(&th[i], NULL, mt_writer, &args[i]), 0);
	}
	if (!concurrent)
		for (int i = 0; i < MT_THREADS; i++)
			pthread_join(th[i], NULL);
	rd = reader(m.r, true);
	for (;;) {
		int done = atomic_load(&m.done);

		while (sd_rb_read(rd, &ev) == 1) {
			uint64_t seq = payload_seq(&ev);
			int no = (int)(seq >> 32);

			CHECK(no >= 0 && no < MT_THREADS);
			CHECK_EQ(seq & 0xffffffff, next[no]);
			CHECK(intact(&ev));
			CHECK_EQ(ev.lost, 0);
			CHECK_EQ(ev.tid, m.tid[no]);
			CHECK(ev.buf < 16);
			/* one buffer is always in order */
			CHECK(ev.ts >= last_ts[ev.buf]);
			last_ts[ev.buf] = ev.ts;
			if (ev.ts < prev_ts)
				unordered++;
			prev_ts = ev.ts;
			next[no]++;
			total++;
		}
		if (done == MT_THREADS)
			break;
	}
	if (concurrent)
		for (int i = 0; i < MT_THREADS; i++)
			pthread_join(th[i], NULL);
	for (int i = 0; i < MT_THREADS; i++)
		CHECK_EQ(next[i], MT_RECORDS);
	CHECK_EQ(total, (uint64_t)MT_THREADS * MT_RECORDS);
	sd_rb_stats(m.r, &st);
	CHECK_EQ(st.written, total);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.entries, 0);
	if (concurrent)
		printf("  concurrent merge: %d records behind the previous ts\n", unordered);
	else
		CHECK_EQ(unordered, 0); /* everything committed: a total order */
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(m.r);
}

TEST(multi_thread_merge)
{
	mt_run(false);
	mt_run(true);
}

/* ---- 4. another process writes, sends the fd, and dies -------------------------- */

static void send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	CHECK_EQ(sendmsg(sock, &msg, 0), 1);
}

static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c;
	int fd = -1;

	CHECK_EQ(recvmsg(sock, &msg, MSG_CMSG_CLOEXEC), 1);
	c = CMSG_FIRSTHDR(&msg);
	CHECK(c && c->cmsg_type == SCM_RIGHTS);
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

#define CRASH_K1 5000
#define CRASH_K2 7000

static void crash_child(int sock)
{
	struct sd_rb_region *r = region(2048, 4, false);
	struct sd_rb_res res;
	char c;
	void *p;

	prctl(PR_SET_NAME, "rb-victim");
	send_fd(sock, sd_rb_region_fd(r));
	for (uint64_t i = 0; i < CRASH_K1; i++)
		put(r, 8 + (uint32_t)(i % 100), i, i);
	CHECK_EQ(write(sock, "1", 1), 1);
	CHECK_EQ(read(sock, &c, 1), 1);
	for (uint64_t i = CRASH_K1; i < CRASH_K1 + CRASH_K2; i++)
		put(r, 8 + (uint32_t)(i % 100), i, i);
	/* die in the middle of a write: that record must never be seen */
	p = sd_rb_reserve(r, 64, 0, 0, &res);
	CHECK(p);
	memset(p, 0xee, 64);
	raise(SIGKILL);
}

TEST(crash_cross_process)
{
	struct sd_rb_region *r;
	struct sd_rb_reader *rd;
	struct sd_rb_event ev;
	struct sd_rb_stats st;
	uint64_t got = 0;
	int sv[2], fd, status;
	pid_t pid;
	char c;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (!pid) {
		close(sv[0]);
		crash_child(sv[1]);
		_exit(3);
	}
	close(sv[1]);
	fd = recv_fd(sv[0]);
	CHECK(fd >= 0);
	CHECK_EQ(sd_rb_region_attach(fd, &r), 0);
	close(fd); /* the region keeps its own */
	rd = reader(r, true);

	CHECK_EQ(read(sv[0], &c, 1), 1);
	while (sd_rb_read(rd, &ev) == 1) {
		CHECK_EQ(payload_seq(&ev), got);
		CHECK(intact(&ev));
		CHECK_EQ(ev.tid, pid);
		CHECK_STREQ(ev.comm, "rb-victim");
		got++;
	}
	CHECK_EQ(got, CRASH_K1);
	CHECK_EQ(write(sv[0], "2", 1), 1);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	while (sd_rb_read(rd, &ev) == 1) {
		CHECK_EQ(payload_seq(&ev), got);
		CHECK(intact(&ev));
		CHECK_EQ(ev.lost, 0);
		got++;
	}
	CHECK_EQ(got, CRASH_K1 + CRASH_K2);
	sd_rb_stats(r, &st);
	CHECK_EQ(st.written, CRASH_K1 + CRASH_K2);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.entries, 0);
	{
		struct sd_rb_config cfg;

		sd_rb_region_config(r, &cfg);
		CHECK_EQ(cfg.buf_kb, 2048);
		CHECK_EQ(cfg.max_bufs, 4);
		CHECK(!cfg.overwrite);
	}
	sd_rb_reader_close(rd);
	sd_rb_region_detach(r);
	close(sv[0]);
}

/* ---- 5. writes from signal handlers ------------------------------------------ */

static struct sd_rb_region *sig_r;
static volatile int sig_got, sig_dropped;

static void nested_handler(int sig)
{
	if (put(sig_r, 16, 1000 + (uint64_t)sig_got + (uint64_t)sig_dropped, 0))
		sig_got++;
	else
		sig_dropped++;
}

TEST(nested_write)
{
	struct sd_rb_region *r = region(64, 2, false);
	struct sd_rb_reader *rd = reader(r, true);
	struct sigaction sa = {.sa_handler = nested_handler};
	struct sd_rb_event ev;
	struct sd_rb_stats st;
	struct sd_rb_res res;
	void *p;

	sig_r = r;
	sigaction(SIGUSR1, &sa, NULL);

	/* the handler interrupts a write: its record is dropped, the outer one intact */
	p = sd_rb_reserve(r, 32, 5, 0, &res);
	CHECK(p);
	fill(p, 16, 1);
	raise(SIGUSR1);
	fill(p, 32, 1);
	sd_rb_commit(r, &res);
	CHECK_EQ(sig_dropped, 1);
	CHECK_EQ(sig_got, 0);
	sd_rb_stats(r, &st);
	CHECK_EQ(st.dropped, 1);
	CHECK_EQ(st.written, 1);

	/* outside a write, the handler's record goes in */
	raise(SIGUSR1);
	CHECK_EQ(sig_got, 1);

	/* the same around a discarded reservation */
	p = sd_rb_reserve(r, 32, 6, 0, &res);
	CHECK(p);
	raise(SIGUSR1);
	sd_rb_discard(r, &res);
	CHECK_EQ(sig_dropped, 2);

	CHECK_EQ(sd_rb_read(rd, &ev), 1);
	CHECK_EQ(payload_seq(&ev), 1);
	CHECK_EQ(ev.len, 32);
	CHECK(intact(&ev));
	CHECK_EQ(sd_rb_read(rd, &ev), 1);
	CHECK_EQ(payload_seq(&ev), 1001);
	CHECK(intact(&ev));
	CHECK_EQ(sd_rb_read(rd, &ev), 0);
	sd_rb_stats(r, &st);
	CHECK_EQ(st.dropped, 2);
	CHECK_EQ(st.written, 2);
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(r);
}

/* the very first write of a thread (it claims its buffer) interrupted too */
TEST(nested_first_write)
{
	struct sd_rb_region *r = region(64, 2, false);
	struct sigaction sa = {.sa_handler = nested_handler};
	struct sd_rb_stats st;
	struct sd_rb_res res;
	void *p;

	sig_r = r;
	sigaction(SIGUSR1, &sa, NULL);
	p = sd_rb_reserve(r, 16, 1, 0, &res);
	CHECK(p);
	raise(SIGUSR1);
	fill(p, 16, 1);
	sd_rb_commit(r, &res);
	sd_rb_stats(r, &st);
	CHECK_EQ(st.dropped, 1);
	CHECK_EQ(st.written, 1);
	CHECK_EQ(st.bufs, 1);
	sd_rb_region_destroy(r);
}

/* a timer signal firing into a tight write loop: nothing torn, all counted */
static volatile uint64_t alrm_seq, alrm_dropped;

static void alrm_handler(int sig)
{
	uint64_t s = alrm_seq;

	if (put(sig_r, 24, 1ULL << 63 | s, 0))
		alrm_seq = s + 1;
	else
		alrm_dropped++;
}

TEST(signal_storm)
{
	struct sd_rb_region *r = region(64, 2, true);
	struct sd_rb_reader *rd = reader(r, true);
	struct sigaction sa = {.sa_handler = alrm_handler, .sa_flags = SA_RESTART};
	struct itimerval it = {{0, 20}, {0, 20}};
	struct sd_rb_event ev;
	struct sd_rb_stats st;
	uint64_t n = 0, read = 0, lost = 0, hread = 0;
	int64_t prev = -1, hprev = -1;
	double t0 = now_s();

	sig_r = r;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	while (now_s() - t0 < 1.0) {
		for (int k = 0; k < 1000; k++, n++) {
			struct sd_rb_res res;
			void *p = sd_rb_reserve(r, 64, n, 0, &res);

			CHECK(p);
			fill(p, 64, n);
			sd_rb_commit(r, &res);
		}
		while (sd_rb_read(rd, &ev) == 1) {
			uint64_t seq = payload_seq(&ev);

			CHECK(intact(&ev));
			read++;
			lost += ev.lost;
			if (seq >> 63) {
				CHECK((int64_t)(seq & ~(1ULL << 63)) > hprev);
				hprev = (int64_t)(seq & ~(1ULL << 63));
				hread++;
			} else {
				CHECK((int64_t)seq > prev);
				prev = (int64_t)seq;
			}
		}
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	signal(SIGALRM, SIG_IGN);
	while (sd_rb_read(rd, &ev) == 1) {
		read++;
		lost += ev.lost;
		CHECK(intact(&ev));
	}
	sd_rb_stats(r, &st);
	printf("  %llu writes, %llu from the handler, %llu nested (dropped), %llu read, %llu "
	       "lost\n",
	       (unsigned long long)n, (unsigned long long)alrm_seq,
	       (unsigned long long)alrm_dropped, (unsigned long long)read,
	       (unsigned long long)lost);
	CHECK_EQ(st.dropped, alrm_dropped);
	CHECK_EQ(read + lost + st.dropped, n + alrm_seq + alrm_dropped);
	CHECK(alrm_seq + alrm_dropped > 100);
	CHECK(alrm_dropped > 0); /* the loop is mostly inside reserve..commit */
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(r);
}

/* ---- 6. the consumer lock ---------------------------------------------------- */

TEST(consumer_lock)
{
	struct sd_rb_region *r = region(64, 2, false);
	struct sd_rb_reader *c1, *c2 = NULL, *snap;
	struct sd_rb_event ev;
	int status, n;
	pid_t pid;

	for (int i = 0; i < 10; i++)
		CHECK(put(r, 16, (uint64_t)i, (uint64_t)i));
	c1 = reader(r, true);
	CHECK_EQ(sd_rb_reader_open(r, true, &c2), -EBUSY);

	/* another process is refused as well */
	pid = fork();
	if (!pid) {
		struct sd_rb_reader *x;

		_exit(sd_rb_reader_open(r, true, &x) == -EBUSY ? 0 : 1);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* a non-consuming reader sees the records and leaves them */
	for (int pass = 0; pass < 2; pass++) {
		snap = reader(r, false);
		for (n = 0; sd_rb_read(snap, &ev) == 1; n++)
			CHECK_EQ(payload_seq(&ev), n);
		CHECK_EQ(n, 10);
		sd_rb_reader_close(snap);
	}
	/* the consumer takes five; a snapshot then shows the other five */
	for (n = 0; n < 5; n++) {
		CHECK_EQ(sd_rb_read(c1, &ev), 1);
		CHECK_EQ(payload_seq(&ev), n);
	}
	snap = reader(r, false);
	for (n = 0; sd_rb_read(snap, &ev) == 1; n++)
		CHECK_EQ(payload_seq(&ev), 5 + n);
	CHECK_EQ(n, 5);
	sd_rb_reader_close(snap);
	sd_rb_reader_close(c1);

	/* the next consumer goes on from there */
	c2 = reader(r, true);
	CHECK_EQ(sd_rb_read(c2, &ev), 1);
	CHECK_EQ(payload_seq(&ev), 5);
	sd_rb_reader_close(c2);

	/* a consumer that died holding the lock does not keep it */
	pid = fork();
	if (!pid) {
		struct sd_rb_reader *x;

		_exit(sd_rb_reader_open(r, true, &x) == 0 ? 0 : 1); /* exits holding it */
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	c2 = reader(r, true);
	CHECK_EQ(sd_rb_read(c2, &ev), 1);
	CHECK_EQ(payload_seq(&ev), 6);
	sd_rb_reader_close(c2);
	sd_rb_region_destroy(r);
}

/* ---- 7. buffers recycled across thousands of short threads --------------------- */

#define RC_THREADS 5000
#define RC_BATCH   8
#define RC_RECS	   3

struct rc {
	struct sd_rb_region *r;
	atomic_int done;
	bool exit_call;
	uint64_t read, lost;
	int bad;
	uint8_t seen[RC_THREADS];
};

struct rc_arg {
	struct rc *c;
	int no;
	int tid;
};

static void *rc_writer(void *arg)
{
	struct rc_arg *a = arg;
	char name[16];
	int tid = my_tid();

	a->tid = tid;
	snprintf(name, sizeof(name), "w%d", a->no);
	prctl(PR_SET_NAME, name);
	for (int i = 0; i < RC_RECS; i++) {
		struct sd_rb_res res;
		uint64_t *p = sd_rb_reserve(a->c->r, 24, (uint64_t)a->no, 0, &res);

		if (!p)
			continue;
		p[0] = (uint64_t)a->no << 8 | (uint64_t)i;
		p[1] = (uint64_t)tid;
		p[2] = ~p[0];
		sd_rb_commit(a->c->r, &res);
	}
	if (a->c->exit_call)
		sd_rb_thread_exit(a->c->r);
	return NULL;
}

static void *rc_consumer(void *arg)
{
	struct rc *c = arg;
	struct sd_rb_reader *rd = reader(c->r, true);
	struct sd_rb_event ev;

	for (;;) {
		int done = atomic_load(&c->done);

		while (sd_rb_read(rd, &ev) == 1) {
			const uint64_t *p = ev.payload;
			int no = (int)(p[0] >> 8), i = (int)(p[0] & 0xff);
			char name[16];

			snprintf(name, sizeof(name), "w%d", no);
			c->lost += ev.lost;
			c->read++;
			if (ev.len != 24 || no < 0 || no >= RC_THREADS || p[2] != ~p[0] ||
			    (int)p[1] != ev.tid || strcmp(ev.comm, name) || i < c->seen[no] ||
			    (!ev.lost && i != c->seen[no])) {
				if (!c->bad++)
					fprintf(stderr, "bad record from %d (%s)\n", no, ev.comm);
				continue;
			}
			c->seen[no] = (uint8_t)(i + 1);
		}
		if (done)
			break;
		usleep(100);
	}
	sd_rb_reader_close(rd);
	return NULL;
}

static void recycle(int threads, unsigned int bufs, bool exit_call)
{
	static struct rc c;
	static struct rc_arg args[RC_THREADS];
	struct sd_rb_stats st;
	pthread_t cons, th[RC_BATCH];

	memset(&c, 0, sizeof(c));
	/* overwrite mode: a drop can only be a failure to find a buffer */
	c.r = region(64, bufs, true);
	c.exit_call = exit_call;
	CHECK_EQ(pthread_create(&cons, NULL, rc_consumer, &c), 0);
	for (int i = 0; i < threads; i += RC_BATCH) {
		int k;

		for (k = 0; k < RC_BATCH && i + k < threads; k++) {
			args[i + k] = (struct rc_arg){&c, i + k, 0};
			CHECK_EQ(pthread_create(&th[k], NULL, rc_writer, &args[i + k]), 0);
		}
		while (k--) {
			pthread_join(th[k], NULL);
			/* a joined thread stays listed until it is fully reaped */
			while (!exit_call && syscall(SYS_tgkill, getpid(), args[i + k].tid, 0) == 0)
				usleep(10);
		}
	}
	atomic_store(&c.done, 1);
	pthread_join(cons, NULL);
	sd_rb_stats(c.r, &st);
	printf("  %d threads, %u buffers: %llu read, %llu lost, %llu dropped, %u claimed\n",
	       threads, bufs, (unsigned long long)c.read, (unsigned long long)c.lost,
	       (unsigned long long)st.dropped, st.bufs);
	CHECK_EQ(c.bad, 0);
	CHECK_EQ(c.read + c.lost + st.dropped, (uint64_t)threads * RC_RECS);
	CHECK_EQ(st.dropped, 0); /* every thread found a buffer */
	CHECK_EQ(st.written, (uint64_t)threads * RC_RECS);
	if (exit_call)
		CHECK_EQ(st.bufs, 0);
	sd_rb_region_destroy(c.r);
}

TEST(recycle_buffers)
{
	recycle(RC_THREADS, 64, true);
}

/* threads that never call sd_rb_thread_exit: their buffers are reclaimed when they are gone */
TEST(reclaim_dead_threads)
{
	recycle(400, 16, false);
}

/* one buffer passed from thread to thread: each record keeps its writer's name */
struct handoff {
	struct sd_rb_region *r;
	int no, tid, n;
	bool exit_call;
};

static void *handoff_writer(void *arg)
{
	struct handoff *h = arg;
	char name[16];

	snprintf(name, sizeof(name), "owner%d", h->no);
	prctl(PR_SET_NAME, name);
	h->tid = my_tid();
	for (int i = 0; i < 5; i++)
		h->n += put(h->r, 16, (uint64_t)h->no * 100 + (uint64_t)i, (uint64_t)h->no);
	if (h->exit_call)
		sd_rb_thread_exit(h->r);
	return NULL;
}

TEST(buffer_handoff)
{
	struct sd_rb_region *r = region(64, 1, false);
	struct handoff h[3] = {{r, 1, 0, 0, true}, {r, 2, 0, 0, false}, {r, 3, 0, 0, true}};
	struct sd_rb_reader *rd;
	struct sd_rb_event ev;
	struct sd_rb_stats st;
	pthread_t th;
	int n = 0;

	/* 1 exits without anything read; 2 takes the buffer with 1's records in it */
	for (int k = 0; k < 2; k++) {
		CHECK_EQ(pthread_create(&th, NULL, handoff_writer, &h[k]), 0);
		pthread_join(th, NULL);
		CHECK_EQ(h[k].n, 5);
	}
	sd_rb_stats(r, &st);
	CHECK_EQ(st.written, 10);
	CHECK_EQ(st.bufs, 1);
	rd = reader(r, true);
	while (sd_rb_read(rd, &ev) == 1) {
		struct handoff *w = &h[n / 5];
		char name[16];

		snprintf(name, sizeof(name), "owner%d", w->no);
		CHECK_EQ(payload_seq(&ev), w->no * 100 + n % 5);
		CHECK_EQ(ev.tid, w->tid);
		CHECK_STREQ(ev.comm, name);
		CHECK_EQ(ev.lost, 0);
		n++;
	}
	CHECK_EQ(n, 10);
	/* the only buffer is held by this thread: a newcomer's records are dropped */
	CHECK(put(r, 16, 7, 7));
	CHECK_EQ(pthread_create(&th, NULL, handoff_writer, &h[2]), 0);
	pthread_join(th, NULL);
	CHECK_EQ(h[2].n, 0);
	sd_rb_stats(r, &st);
	CHECK_EQ(st.dropped, 5);
	CHECK_EQ(sd_rb_read(rd, &ev), 1);
	CHECK_EQ(payload_seq(&ev), 7);
	CHECK_EQ(ev.tid, my_tid());
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(r);
}

/* a thread writing to two regions in turn keeps one buffer in each */
TEST(two_regions)
{
	struct sd_rb_region *a = region(16, 4, true), *b = region(16, 4, false);
	struct sd_rb_reader *ra, *rb;
	struct sd_rb_event ev;
	struct sd_rb_stats st;
	int n;

	for (int i = 0; i < 100; i++) {
		CHECK(put(a, 16, (uint64_t)i, (uint64_t)i));
		CHECK(put(b, 16, (uint64_t)i, (uint64_t)i));
	}
	sd_rb_stats(a, &st);
	CHECK_EQ(st.bufs, 1);
	CHECK_EQ(st.written, 100);
	sd_rb_stats(b, &st);
	CHECK_EQ(st.bufs, 1);
	CHECK_EQ(st.written, 100);
	ra = reader(a, true);
	rb = reader(b, true);
	for (n = 0; sd_rb_read(ra, &ev) == 1; n++) {
		CHECK_EQ(payload_seq(&ev), n);
		CHECK_EQ(ev.lost, 0);
	}
	CHECK_EQ(n, 100);
	for (n = 0; sd_rb_read(rb, &ev) == 1; n++)
		CHECK_EQ(payload_seq(&ev), n);
	CHECK_EQ(n, 100);
	sd_rb_reader_close(ra);
	sd_rb_reader_close(rb);
	sd_rb_region_destroy(a);
	sd_rb_region_destroy(b);
}

/* fork: the child's thread writes to a buffer of its own */
TEST(fork_child_writes)
{
	struct sd_rb_region *r = region(64, 4, false);
	struct sd_rb_reader *rd;
	struct sd_rb_event ev;
	int status, parent = 0, child = 0;
	pid_t pid;

	CHECK(put(r, 16, 1, 1));
	pid = fork();
	if (!pid) {
		for (int i = 0; i < 10; i++)
			put(r, 16, 100 + (uint64_t)i, 2 + (uint64_t)i);
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(put(r, 16, 2, 100));
	rd = reader(r, true);
	while (sd_rb_read(rd, &ev) == 1) {
		uint64_t seq = payload_seq(&ev);

		if (seq >= 100) {
			CHECK_EQ(ev.tid, pid);
			CHECK_EQ(seq, 100 + (uint64_t)child++);
			CHECK_EQ(ev.buf, 1);
		} else {
			CHECK_EQ(ev.tid, my_tid());
			CHECK_EQ(seq, 1 + (uint64_t)parent++);
			CHECK_EQ(ev.buf, 0);
		}
	}
	CHECK_EQ(parent, 2);
	CHECK_EQ(child, 10);
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(r);
}

/* a replaced region: the thread's cached buffer belongs to the old one */
TEST(region_generations)
{
	for (int round = 0; round < 5; round++) {
		struct sd_rb_region *r = region(8 + 4 * (size_t)round, 2, round & 1);
		struct sd_rb_reader *rd;
		struct sd_rb_event ev;
		struct sd_rb_stats st;

		for (int i = 0; i < 100; i++)
			CHECK(put(r, 16, (uint64_t)i, 0));
		sd_rb_stats(r, &st);
		CHECK_EQ(st.written, 100);
		CHECK_EQ(st.bufs, 1);
		rd = reader(r, true);
		for (int i = 0; i < 100; i++) {
			CHECK_EQ(sd_rb_read(rd, &ev), 1);
			CHECK_EQ(payload_seq(&ev), i);
			CHECK_EQ(ev.lost, 0);
		}
		CHECK_EQ(sd_rb_read(rd, &ev), 0);
		sd_rb_reader_close(rd);
		sd_rb_region_destroy(r);
	}
}

/* ---- 8. reset and stats ----------------------------------------------------- */

TEST(reset_and_stats)
{
	struct sd_rb_region *r = region(8, 2, false);
	struct sd_rb_reader *snap, *rd;
	struct sd_rb_event ev;
	struct sd_rb_stats st;
	uint64_t i, n;

	/* fill it: discard mode refuses the rest */
	for (i = 0, n = 0; i < 1000; i++)
		n += put(r, 40, i, i);
	sd_rb_stats(r, &st);
	CHECK(n < 1000);
	CHECK_EQ(st.written, n);
	CHECK_EQ(st.dropped, 1000 - n);
	CHECK_EQ(st.entries, n);
	CHECK_EQ(st.overrun, 0);
	CHECK_EQ(st.bufs, 1);

	snap = reader(r, false);
	for (i = 0; sd_rb_read(snap, &ev) == 1; i++)
		CHECK_EQ(payload_seq(&ev), i);
	CHECK_EQ(i, n);
	sd_rb_reader_close(snap);

	/* a consumer is open while the reset comes */
	rd = reader(r, true);
	CHECK_EQ(sd_rb_read(rd, &ev), 1);
	CHECK_EQ(payload_seq(&ev), 0);
	sd_rb_reset(r);
	sd_rb_stats(r, &st);
	CHECK_EQ(st.written, 0);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.entries, 0);
	CHECK_EQ(st.overrun, 0);
	CHECK_EQ(st.bufs, 1);
	snap = reader(r, false);
	CHECK_EQ(sd_rb_read(snap, &ev), 0);
	sd_rb_reader_close(snap);
	/* the one copied aside before the reset may still come; nothing else */
	while (sd_rb_read(rd, &ev) == 1)
		CHECK(payload_seq(&ev) <= 1);

	/* the space is free again */
	for (i = 0; i < 10; i++)
		CHECK(put(r, 40, 5000 + i, i));
	sd_rb_stats(r, &st);
	CHECK_EQ(st.written, 10);
	CHECK_EQ(st.entries, 10);
	CHECK_EQ(st.dropped, 0);
	for (i = 0; sd_rb_read(rd, &ev) == 1; i++) {
		CHECK_EQ(payload_seq(&ev), 5000 + i);
		CHECK_EQ(ev.lost, 0);
	}
	CHECK_EQ(i, 10);
	sd_rb_stats(r, &st);
	CHECK_EQ(st.entries, 0);
	CHECK_EQ(st.written, 10);
	sd_rb_reader_close(rd);

	/* overwrite mode: written == overrun + entries, and a consumer agrees */
	sd_rb_region_destroy(r);
	r = region(8, 2, true);
	for (i = 0; i < 3000; i++)
		CHECK(put(r, 40, i, i));
	sd_rb_stats(r, &st);
	CHECK_EQ(st.written, 3000);
	CHECK_EQ(st.overrun + st.entries, 3000);
	rd = reader(r, true);
	{
		uint64_t read = 0, lost = 0, entries = st.entries, overrun = st.overrun;

		while (sd_rb_read(rd, &ev) == 1) {
			read++;
			lost += ev.lost;
		}
		CHECK_EQ(read, entries);
		CHECK_EQ(lost, overrun);
		sd_rb_stats(r, &st);
		CHECK_EQ(st.overrun, overrun);
		CHECK_EQ(st.entries, 0);
	}
	sd_rb_reset(r);
	sd_rb_stats(r, &st);
	CHECK_EQ(st.overrun, 0);
	CHECK_EQ(st.written, 0);
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(r);
}

TEST(attach_checks)
{
	struct sd_rb_region *r = region(8, 2, true), *a = NULL;
	struct sd_clock_params cp = {.tsc_hz = 123456789, .mult = 7, .shift = 3}, got;
	int fd = memfd_create("not-a-ring", MFD_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_EQ(sd_rb_region_attach(fd, &a), -EINVAL);
	CHECK_EQ(ftruncate(fd, 1 << 20), 0);
	CHECK_EQ(sd_rb_region_attach(fd, &a), -EINVAL);
	close(fd);

	CHECK_EQ(sd_rb_get_clock_params(r, &got), -ENOENT);
	sd_rb_set_clock_params(r, &cp);
	CHECK_EQ(sd_rb_region_attach(sd_rb_region_fd(r), &a), 0);
	CHECK_EQ(sd_rb_get_clock_params(a, &got), 0);
	CHECK_EQ(got.tsc_hz, 123456789);
	CHECK_EQ(got.mult, 7);
	CHECK_EQ(got.shift, 3);
	/* a truncated region is refused */
	fd = memfd_create("short", MFD_CLOEXEC);
	{
		char page[4096];

		CHECK_EQ(pread(sd_rb_region_fd(r), page, sizeof(page), 0), (ssize_t)sizeof(page));
		CHECK_EQ(write(fd, page, sizeof(page)), (ssize_t)sizeof(page));
	}
	CHECK_EQ(sd_rb_region_attach(fd, &a), -EINVAL);
	close(fd);
	sd_rb_region_detach(a);
	sd_rb_region_destroy(r);
}

/*
 * The trace clocks' cpu: on each cpu this thread may run on, pinned there,
 * every clock reports that cpu (rseq's cpu_id, or TSC_AUX as fallback), and
 * the TSC clock never goes back on one cpu.
 */
TEST(clock_reports_the_cpu)
{
	cpu_set_t orig, one;
	int tried = 0;

	CHECK_EQ(sched_getaffinity(0, sizeof(orig), &orig), 0);
	for (int c = 0; c < CPU_SETSIZE && tried < 8; c++) {
		uint16_t cpu = 0xffff, cpu2 = 0xffff, cpu3 = 0xffff;
		uint64_t t0, t1;

		if (!CPU_ISSET(c, &orig))
			continue;
		CPU_ZERO(&one);
		CPU_SET(c, &one);
		CHECK_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
		tried++;
		t0 = sd_clock_read(SD_CLOCK_LOCAL, &cpu);
		sd_clock_cpu(&cpu2);
		t1 = sd_clock_read(SD_CLOCK_LOCAL, NULL);
		sd_clock_read(SD_CLOCK_MONO, &cpu3);
		CHECK_EQ(cpu, c);
		CHECK_EQ(cpu2, c);
		CHECK_EQ(cpu3, c);
		CHECK(t1 >= t0);
	}
	CHECK_EQ(sched_setaffinity(0, sizeof(orig), &orig), 0);
	CHECK(tried > 0);
}

#endif /* RB_PERF_ONLY */

/* ---- 9. throughput (printed, not asserted) --------------------------------------- */

struct tp {
	struct sd_rb_region *r;
	uint64_t n;
	atomic_int done;
	double secs;
};

static void *tp_writer(void *arg)
{
	struct tp *t = arg;
	double t0 = now_s();

	for (uint64_t i = 0; i < t->n; i++) {
		struct sd_rb_res res;
		uint64_t *p = sd_rb_reserve(t->r, 32, i, 0, &res);

		if (p) {
			p[0] = i;
			p[1] = i;
			p[2] = i;
			p[3] = i;
			sd_rb_commit(t->r, &res);
		}
	}
	t->secs = now_s() - t0;
	atomic_store(&t->done, 1);
	return NULL;
}

TEST(throughput)
{
	struct tp t = {.r = region(SD_RB_DEFAULT_KB, 4, true), .n = 10000000};
	struct sd_rb_reader *rd;
	struct sd_rb_event ev;
	uint64_t read = 0, lost = 0;
	pthread_t w;

	tp_writer(&t); /* warm: claims and touches the pages */
	tp_writer(&t);
	printf("  writer alone:        %6.1f M records/s (%.1f ns each, 32-byte payload)\n",
	       t.n / t.secs / 1e6, t.secs * 1e9 / t.n);

	sd_rb_region_destroy(t.r);
	t.r = region(SD_RB_DEFAULT_KB, 4, true);
	atomic_store(&t.done, 0);
	rd = reader(t.r, true);
	CHECK_EQ(pthread_create(&w, NULL, tp_writer, &t), 0);
	for (;;) {
		int done = atomic_load(&t.done);

		while (sd_rb_read(rd, &ev) == 1) {
			read++;
			lost += ev.lost;
		}
		if (done)
			break;
	}
	pthread_join(w, NULL);
	printf("  with a consumer:     %6.1f M records/s written, %llu read, %llu lost\n",
	       t.n / t.secs / 1e6, (unsigned long long)read, (unsigned long long)lost);
	CHECK_EQ(read + lost, t.n);
	sd_rb_reader_close(rd);
	sd_rb_region_destroy(t.r);

	/* the reader alone, over a full buffer (48 bytes a record) */
	t.r = region(96 * 1024, 4, false);
	t.n = 2000000;
	tp_writer(&t);
	{
		double t0 = now_s();

		rd = reader(t.r, true);
		for (read = 0; sd_rb_read(rd, &ev) == 1; read++)
			;
		t0 = now_s() - t0;
		printf("  reader alone:        %6.1f M records/s (%.1f ns each)\n", read / t0 / 1e6,
		       t0 * 1e9 / read);
		CHECK_EQ(read, t.n);
		sd_rb_reader_close(rd);
	}
	sd_rb_region_destroy(t.r);
}
