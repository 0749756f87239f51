// SPDX-License-Identifier: MIT
/*
 * claim.c - code another patcher holds: the function tracers' patched
 * entry nops.
 *
 * Two patchers on the same bytes undo each other: a probe placed on a
 * patched nop takes the patch for the original code and puts it back when
 * it goes (the target left modified), and a tracer patching under a probe
 * writes over the probe's jump. So the tracer claims each nop before it
 * patches it, and gives the claim up only once the nop is back. A claim is
 * refused where a probe is (or a probe's jump may reach), and no probe is
 * placed on a claim: the tracer hooks such a function through a probe of
 * its own instead, as the kernel's function tracer meets kprobes on its
 * sites through ftrace.
 *
 * Static tracepoints claim their jump-label nops too, for as long as their
 * object is loaded: as in the kernel (jump_label_text_reserved), no probe
 * goes there, and no probe's jump covers one; the nop is the tracepoint's
 * to patch when its event is enabled.
 *
 * Claims are kept sorted and changed in batches, under sd_probe_mutex.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"
#include "probe/probe.h"
#include "probe/thread.h"

struct claim {
	uint64_t start, end;
	int owner; /* enum sd_claim_owner */
};

static struct claim *claims;
static size_t nclaims, capclaims;
static int (*release_fn)(uint64_t addr);

static int cmp_claim(const void *a, const void *b)
{
	const struct claim *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* the first of claims[0, n) ending after @addr, or n */
static size_t first_after(uint64_t addr, size_t n)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t m = (lo + hi) / 2;

		if (claims[m].end <= addr)
			lo = m + 1;
		else
			hi = m;
	}
	return lo;
}

static const struct claim *claimed_in(uint64_t addr, size_t len, size_t n)
{
	size_t i = first_after(addr, n);

	return i < n && claims[i].start < addr + len ? &claims[i] : NULL;
}

uint64_t sd_text_claimed(uint64_t addr, size_t len, int *owner)
{
	const struct claim *c = claimed_in(addr, len, nclaims);

	if (c && owner)
		*owner = c->owner;
	return c ? c->start : 0;
}

/* a probe site whose code (its jump, once optimized) may reach into [addr, addr + len) */
static bool probed_near(uint64_t addr, size_t len)
{
	uint64_t from = addr > SD_OPT_MAX_BYTES ? addr - SD_OPT_MAX_BYTES : 0;

	for (uint64_t a = from; a < addr + len; a++)
		if (sd_site_lookup(a))
			return true;
	return false;
}

int sd_text_claim_held(const uint64_t *addrs, int n, size_t len, int owner, bool *ok)
{
	if (nclaims + (size_t)n > capclaims) {
		size_t cap = (nclaims + (size_t)n) * 2;
		struct claim *c = realloc(claims, cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		claims = c;
		capclaims = cap;
	}
	for (int i = 0, sorted = (int)nclaims; i < n; i++) {
		/* (the sorted ones: a batch names each address once) */
		/*
		 * (a function tracer's nop may be under a probe's jump already;
		 * a tracepoint's site was read as its nop, so no jump covers it)
		 */
		ok[i] = !(owner == SD_CLAIM_FTRACE && probed_near(addrs[i], len)) &&
			!claimed_in(addrs[i], len, (size_t)sorted);
		if (ok[i])
			claims[nclaims++] = (struct claim){addrs[i], addrs[i] + len, owner};
	}
	qsort(claims, nclaims, sizeof(*claims), cmp_claim);
	return 0;
}

int sd_text_claim(const uint64_t *addrs, int n, size_t len, int owner, bool *ok)
{
	int err;

	sd_enter_sonde();
	pthread_mutex_lock(&sd_probe_mutex);
	err = sd_text_claim_held(addrs, n, len, owner, ok);
	pthread_mutex_unlock(&sd_probe_mutex);
	sd_leave_sonde();
	return err;
}

void sd_text_claim_set_release(int (*release)(uint64_t addr))
{
	__atomic_store_n(&release_fn, release, __ATOMIC_RELEASE);
}

int sd_text_release(uint64_t addr)
{
	int (*release)(uint64_t) = __atomic_load_n(&release_fn, __ATOMIC_ACQUIRE);

	return release ? release(addr) : -EBUSY;
}

void sd_text_unclaim_held(const uint64_t *addrs, int n)
{
	size_t k = 0;

	for (int i = 0; i < n; i++) {
		size_t j = first_after(addrs[i], nclaims);

		/* (marked gone by the start, which the search does not read) */
		if (j < nclaims && claims[j].start == addrs[i])
			claims[j].start = 0;
	}
	for (size_t j = 0; j < nclaims; j++)
		if (claims[j].start)
			claims[k++] = claims[j];
	nclaims = k;
}

void sd_text_unclaim(const uint64_t *addrs, int n)
{
	sd_enter_sonde();
	pthread_mutex_lock(&sd_probe_mutex);
	sd_text_unclaim_held(addrs, n);
	pthread_mutex_unlock(&sd_probe_mutex);
	sd_leave_sonde();
}
