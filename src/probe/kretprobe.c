// SPDX-License-Identifier: MIT
/*
 * kretprobe.c - probes on function return.
 *
 * At the function's entry (a kprobe whose pre_handler is ours) the return
 * address in the stack slot at %rsp is swapped for the return trampoline,
 * and the original is pushed on the thread's shadow stack together with
 * the slot's address and an instance taken from the kretprobe's pool of
 * maxactive. When the function returns into the trampoline, the top of the
 * shadow stack says where to go back to.
 *
 * The shadow stack is kept honest by stack address, which is what survives
 * longjmp and exception unwinding: a frame whose slot lies below the current
 * stack pointer is gone (it was jumped over) and is dropped unhandled. Tail
 * calls leave several entries on one slot; they are all handled on the one
 * return. C++ exceptions are handled in unwind.c.
 *
 * Lifetime: the user's struct may be freed once unregister returns. The
 * pool (struct sd_rp) outlives it while instances are still on some shadow
 * stack: each instance holds a reference, and a gone kretprobe's instances
 * are returned without calling any handler.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sd_arch/syscall.h>

#define SD_LOG_PREFIX "kretprobe"
#include "common/compiler.h"
#include "common/log.h"
#include "probe/kretprobe.h"
#include "probe/probe.h"
#include "probe/thread.h"

#define SHADOW_MAX 16384
/* two slots this close are taken to be on the same stack (thread stacks are 8 MiB) */
#define SAME_STACK_SPAN (8UL << 20)

struct sd_ri {
	struct sd_rp *rp;
	uint32_t next_free;
	uint32_t in_use;
	uint32_t self;			     /* its index in the pool, plus one (as in free_head) */
	struct sonde_kretprobe_instance pub; /* last: data[] follows */
};

struct sd_rp {
	struct sonde_kretprobe *user; /* NULL once unregistered */
	sonde_kretprobe_handler_t handler, entry_handler;
	size_t data_size;
	unsigned int nr;
	size_t stride;
	uint64_t free_head; /* tag << 32 | index+1 (0 = empty) */
	/*
	 * Unregistered: instances still on a shadow stack then come back by
	 * counting `outstanding` down, and the last frees the pool. Before,
	 * a hit costs no count at all (sonde_unregister_kretprobes explains).
	 */
	uint32_t dead;
	long outstanding;
	char *pool;
	struct sd_rp *zombie_next;
};

/* pools whose last reference went away, maybe in a signal handler: freed later */
static struct sd_rp *zombies;

struct sd_frame {
	uint64_t slot; /* where the return address was */
	uint64_t ret;  /* what it was */
	struct sd_ri *ri;
	uint32_t unhooked; /* the real address is back in the slot (an exception) */
	uint32_t nofpu;	   /* its handlers touch no vector register (SD_KP_NOFPU) */
};

struct sd_shadow {
	unsigned int depth;
	struct sd_frame f[SHADOW_MAX];
};

static inline struct sd_ri *ri_at(struct sd_rp *rp, uint32_t i)
{
	return (struct sd_ri *)(rp->pool + (size_t)i * rp->stride);
}

static inline uint64_t tramp(void)
{
	return (uint64_t)(uintptr_t)sd_arch_kretprobe_trampoline;
}

/* ---- the instance pool: a lock-free stack with an ABA tag ------------------ */

SD_NOTRACE static struct sd_ri *ri_get(struct sd_rp *rp)
{
	uint64_t head = __atomic_load_n(&rp->free_head, __ATOMIC_ACQUIRE), next;
	struct sd_ri *ri;

	do {
		uint32_t idx = (uint32_t)head;

		if (!idx)
			return NULL;
		ri = ri_at(rp, idx - 1);
		next = ((head >> 32) + 1) << 32 | __atomic_load_n(&ri->next_free, __ATOMIC_RELAXED);
	} while (!__atomic_compare_exchange_n(&rp->free_head, &head, next, true, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	ri->in_use = 1;
	return ri;
}

static unsigned long npools; /* allocated, not freed yet (tests) */

static void rp_free(struct sd_rp *rp)
{
	free(rp->pool);
	free(rp);
	__atomic_sub_fetch(&npools, 1, __ATOMIC_RELAXED);
}

unsigned long sd_kretprobe_pools(void)
{
	return __atomic_load_n(&npools, __ATOMIC_RELAXED);
}

/* the pool's last reference went, maybe in a signal handler: free() it later */
SD_NOTRACE static void rp_zombie(struct sd_rp *rp)
{
	rp->zombie_next = __atomic_load_n(&zombies, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&zombies, &rp->zombie_next, rp, true, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED))
		;
}

/* @n more instances are back (negative) or out (positive) of a dead pool */
SD_NOTRACE static void rp_outstanding(struct sd_rp *rp, long n)
{
	if (!__atomic_add_fetch(&rp->outstanding, n, __ATOMIC_ACQ_REL))
		rp_zombie(rp);
}

void sd_kretprobe_reap(void)
{
	struct sd_rp *rp = __atomic_exchange_n(&zombies, NULL, __ATOMIC_ACQUIRE);

	while (rp) {
		struct sd_rp *next = rp->zombie_next;

		rp_free(rp);
		rp = next;
	}
}

SD_NOTRACE static void ri_put(struct sd_ri *ri)
{
	struct sd_rp *rp = ri->rp;
	uint32_t idx = ri->self;
	uint64_t head = __atomic_load_n(&rp->free_head, __ATOMIC_ACQUIRE), next;

	ri->in_use = 0;
	if (unlikely(__atomic_load_n(&rp->dead, __ATOMIC_ACQUIRE))) {
		rp_outstanding(rp, -1);
		return;
	}
	do {
		__atomic_store_n(&ri->next_free, (uint32_t)head, __ATOMIC_RELAXED);
		next = ((head >> 32) + 1) << 32 | idx;
	} while (!__atomic_compare_exchange_n(&rp->free_head, &head, next, true, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
}

/* ---- the shadow stack ------------------------------------------------------- */

SD_NOTRACE static struct sd_shadow *shadow_get(struct sd_thread *t)
{
	void *p;

	if (likely(t->shadow))
		return t->shadow;
	p = (void *)sd_raw_syscall6(SYS_mmap, 0, sizeof(struct sd_shadow), PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if ((unsigned long)p > -4096UL)
		return NULL;
	t->shadow = p;
	if (!t->registered)
		sd_thread_register(t);
	return t->shadow;
}

/* drop frames that were jumped over (longjmp, unwinding): their slot is below @sp */
SD_NOTRACE static void shadow_trim(struct sd_shadow *sh, uint64_t sp)
{
	while (sh->depth && sh->f[sh->depth - 1].slot < sp &&
	       sp - sh->f[sh->depth - 1].slot < SAME_STACK_SPAN)
		ri_put(sh->f[--sh->depth].ri);
}

void sd_shadow_thread_exit(struct sd_thread *t)
{
	struct sd_shadow *sh = t->shadow;
	uint8_t prev = t->active;

	/* marked: an unregister waits for these instances to be back */
	t->active = prev | SD_ACTIVE_HANDLER;
	barrier();
	t->shadow = NULL;
	while (sh->depth)
		ri_put(sh->f[--sh->depth].ri);
	barrier();
	t->active = prev;
	munmap(sh, sizeof(*sh));
}

unsigned int sd_shadow_depth(void)
{
	return sd_self.shadow ? sd_self.shadow->depth : 0;
}

SD_NOTRACE void sd_shadow_unhook_all(void)
{
	struct sd_shadow *sh = sd_self.shadow;

	for (unsigned int i = 0; sh && i < sh->depth; i++) {
		struct sd_frame *f = &sh->f[i];

		if (!f->unhooked && *(uint64_t *)f->slot == tramp()) {
			*(uint64_t *)f->slot = f->ret;
			f->unhooked = 1;
		}
	}
}

SD_NOTRACE void sd_shadow_rehook(uint64_t sp)
{
	struct sd_shadow *sh = sd_self.shadow;

	if (!sh)
		return;
	shadow_trim(sh, sp);
	for (unsigned int i = 0; i < sh->depth; i++) {
		struct sd_frame *f = &sh->f[i];

		if (f->unhooked && *(uint64_t *)f->slot == f->ret) {
			*(uint64_t *)f->slot = tramp();
			f->unhooked = 0;
		}
	}
}

/* ---- entry and return --------------------------------------------------------- */

SD_NOTRACE int sd_kretprobe_pre_handler(struct sonde_kprobe *kp, struct sonde_regs *regs)
{
	struct sonde_kretprobe *urp = container_of(kp, struct sonde_kretprobe, kp);
	struct sd_rp *rp = urp->__priv;
	uint64_t slot = regs->sp, ret = *(uint64_t *)slot;
	struct sd_shadow *sh = shadow_get(&sd_self);
	struct sd_ri *ri;

	if (!rp || !sh)
		goto missed;
	/*
	 * Entries at or below this slot belong to frames that are gone, except
	 * a tail call (the slot then still holds the trampoline) and frames on
	 * another stack: a signal handler on an alternate stack, a coroutine.
	 * Those are left for the return path, which finds its frame by slot.
	 */
	while (sh->depth) {
		struct sd_frame *top = &sh->f[sh->depth - 1];

		if ((top->slot < slot && slot - top->slot < SAME_STACK_SPAN) ||
		    (top->slot == slot && ret != tramp()))
			ri_put(sh->f[--sh->depth].ri);
		else
			break;
	}
	if (sh->depth == SHADOW_MAX)
		goto missed;
	ri = ri_get(rp);
	if (!ri)
		goto missed;
	ri->pub.rp = urp;
	ri->pub.ret_addr = (void *)ret;
	ri->pub.stack = (void *)slot;
	if (rp->entry_handler && rp->entry_handler(&ri->pub, regs)) {
		ri_put(ri);
		return 0;
	}
	sh->f[sh->depth].slot = slot;
	sh->f[sh->depth].ret = ret;
	sh->f[sh->depth].ri = ri;
	sh->f[sh->depth].unhooked = 0;
	sh->f[sh->depth].nofpu = !!(kp->__reserved[0] & SD_KP_NOFPU);
	sh->depth++;
	*(uint64_t *)slot = tramp();
	return 0;
missed:
	__atomic_add_fetch(&urp->nmissed, 1, __ATOMIC_RELAXED);
	return 0;
}

/*
 * Before the trampoline saves the vector state: 1 when every handler this
 * return runs (its frame, and the tail calls hooked at the same slot) is
 * SD_KP_NOFPU, so that none is saved. Reads this thread's shadow stack only.
 */
SD_NOTRACE int sd_kretprobe_return_nofpu(const struct sonde_regs *regs);
SD_NOTRACE int sd_kretprobe_return_nofpu(const struct sonde_regs *regs)
{
	const struct sd_shadow *sh = sd_self.shadow;
	uint64_t slot = regs->sp - 8;
	int top = -1;

	for (int i = sh ? (int)sh->depth - 1 : -1; i >= 0; i--)
		if (sh->f[i].slot == slot && !sh->f[i].unhooked) {
			top = i;
			break;
		}
	if (top < 0)
		return 0; /* the handler reports it */
	for (int i = top; i >= 0; i--) {
		if (!sh->f[i].nofpu)
			return 0;
		if (!(i > 0 && sh->f[i].ret == tramp() && sh->f[i - 1].slot == slot))
			break;
	}
	return 1;
}

/* called by the trampoline, on the returning thread's stack */
SD_NOTRACE uint64_t sd_kretprobe_trampoline_handler(struct sonde_regs *regs);
SD_NOTRACE uint64_t sd_kretprobe_trampoline_handler(struct sonde_regs *regs)
{
	struct sd_thread *t = &sd_self;
	struct sd_shadow *sh = t->shadow;
	uint64_t slot = regs->sp - 8, ret = 0;
	uint8_t prev = t->active;
	int top = -1, first;

	sd_thread_enter(t, prev);
	/*
	 * no fence: unregister marks the pool dead, then sd_sync_threads() orders
	 * every thread with a membarrier before it looks at `active`
	 */
	barrier();

	/*
	 * The newest frame hooked at this slot is ours. Frames above it on the
	 * shadow stack were jumped over (longjmp, an exception) and are gone.
	 */
	for (int i = sh ? (int)sh->depth - 1 : -1; i >= 0; i--)
		if (sh->f[i].slot == slot && !sh->f[i].unhooked) {
			top = i;
			break;
		}
	if (top < 0) {
		static const char msg[] = "sonde: kretprobe: return address lost (shadow stack "
					  "out of step); cannot continue\n";

		sd_raw_syscall3(SYS_write, 2, msg, sizeof(msg) - 1);
		sd_raw_syscall2(SYS_kill, sd_raw_syscall0(SYS_getpid), SIGABRT);
		return 0;
	}
	while ((int)sh->depth > top + 1)
		ri_put(sh->f[--sh->depth].ri);

	/* tail calls hook one slot several times: the real address is the oldest */
	first = top;
	while (first > 0 && sh->f[first].ret == tramp() && sh->f[first - 1].slot == slot)
		first--;
	ret = sh->f[first].ret;
	/* the word above the frame is S: make the frame unwindable at once */
	regs->ss = ret;
	while ((int)sh->depth > first) {
		struct sd_ri *ri = sh->f[--sh->depth].ri;
		bool alive = !__atomic_load_n(&ri->rp->dead, __ATOMIC_ACQUIRE);

		ri->pub.ret_addr = (void *)ret;
		regs->ip = ret;
		if (alive && ri->rp->handler)
			ri->rp->handler(&ri->pub, regs);
		ri_put(ri);
	}
	regs->ip = ret;
	barrier();
	t->active = prev;
	return ret;
}

/* ---- registration --------------------------------------------------------------- */

static int rp_create(struct sonde_kretprobe *urp, struct sd_rp **out)
{
	struct sd_rp *rp = calloc(1, sizeof(*rp));
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	unsigned int nr = urp->maxactive;

	if (!rp)
		return -ENOMEM;
	if (urp->maxactive <= 0)
		nr = ncpu > 5 ? 2 * ncpu : 10; /* the kernel's max(10, 2 * NR_CPUS) */
	if (nr > SD_KRETPROBE_MAXACTIVE_MAX) {
		free(rp);
		return sd_error(-E2BIG, "maxactive %u is more than %d", nr,
				SD_KRETPROBE_MAXACTIVE_MAX);
	}
	rp->user = urp;
	rp->handler = urp->handler;
	rp->entry_handler = urp->entry_handler;
	rp->data_size = urp->data_size;
	rp->nr = nr;
	rp->stride = SD_ALIGN_UP(sizeof(struct sd_ri) + urp->data_size, 16);
	rp->pool = calloc(nr, rp->stride);
	if (!rp->pool) {
		free(rp);
		return -ENOMEM;
	}
	__atomic_add_fetch(&npools, 1, __ATOMIC_RELAXED);
	for (unsigned int i = 0; i < nr; i++) {
		struct sd_ri *ri = ri_at(rp, i);

		ri->rp = rp;
		ri->next_free = i + 1 < nr ? i + 2 : 0;
		ri->self = i + 1;
	}
	rp->free_head = 1;
	*out = rp;
	return 0;
}

bool sd_kretprobe_vec_free(const struct sonde_kprobe *kp)
{
	const struct sonde_kretprobe *urp = container_of(kp, struct sonde_kretprobe, kp);

	return sd_arch_code_vec_free((uint64_t)(uintptr_t)urp->entry_handler) &&
	       sd_arch_code_vec_free((uint64_t)(uintptr_t)urp->handler);
}

SONDE_API int sonde_register_kretprobe(struct sonde_kretprobe *urp)
{
	struct sd_rp *rp = NULL;
	int err;

	if (!urp)
		return -EINVAL;
	sd_kretprobe_reap();
	if (urp->kp.pre_handler || urp->kp.post_handler)
		return sd_error(-EINVAL, "a kretprobe's kp must not have its own handlers");
	if (urp->kp.offset)
		return sd_error(-EINVAL, "%s+0x%lx: a kretprobe must be at a function's entry",
				urp->kp.symbol_name ? urp->kp.symbol_name : "", urp->kp.offset);
	err = rp_create(urp, &rp);
	if (err)
		return err;
	urp->nmissed = 0;
	urp->__priv = rp;
	urp->kp.pre_handler = sd_kretprobe_pre_handler;
	err = sonde_register_kprobe(&urp->kp);
	if (err) {
		urp->kp.pre_handler = NULL;
		urp->__priv = NULL;
		rp_free(rp);
		return err;
	}
	sd_unwind_hooks_get();
	return 0;
}

SONDE_API void sonde_unregister_kretprobe(struct sonde_kretprobe *urp)
{
	if (urp)
		sonde_unregister_kretprobes(&urp, 1);
}

SONDE_API int sonde_register_kretprobes(struct sonde_kretprobe **rps, int num)
{
	if (!rps || num <= 0)
		return -EINVAL;
	for (int i = 0; i < num; i++) {
		int err = sonde_register_kretprobe(rps[i]);

		if (err) {
			sonde_unregister_kretprobes(rps, i);
			return err;
		}
	}
	return 0;
}

SONDE_API void sonde_unregister_kretprobes(struct sonde_kretprobe **rps, int num)
{
	struct sonde_kprobe **kps;
	int n = 0;

	if (!rps || num <= 0)
		return;
	kps = calloc(num, sizeof(*kps));
	if (!kps)
		return;
	for (int i = 0; i < num; i++)
		if (rps[i] && rps[i]->__priv)
			kps[n++] = &rps[i]->kp;
	/* no new instance can start once this returns */
	sonde_unregister_kprobes(kps, n);
	free(kps);

	sd_enter_sonde();
	for (int i = 0; i < num; i++) {
		struct sd_rp *rp = rps[i] ? rps[i]->__priv : NULL;

		if (!rp)
			continue;
		__atomic_store_n(&rp->user, NULL, __ATOMIC_RELEASE);
		__atomic_store_n(&rp->dead, 1, __ATOMIC_RELEASE);
	}
	/*
	 * A return handler may still be running for one of them, and an
	 * instance may be on its way back to the free list, having seen the
	 * pool alive: every such thread is marked, and waited for. From here
	 * on no handler of theirs starts (a return sees the pool dead),
	 * instances come back by counting down, and the free list stays.
	 */
	sd_sync_threads();
	for (int i = 0; i < num; i++) {
		struct sd_rp *rp = rps[i] ? rps[i]->__priv : NULL;
		long free_n = 0;

		if (!rp)
			continue;
		/*
		 * Only now: a handler that began before sees its kretprobe
		 * (sonde_get_kretprobe) until it ends, as it was called for it.
		 */
		for (unsigned int k = 0; k < rp->nr; k++)
			__atomic_store_n(&ri_at(rp, k)->pub.rp, NULL, __ATOMIC_RELEASE);
		rps[i]->__priv = NULL;
		rps[i]->kp.pre_handler = NULL;
		for (uint32_t k = (uint32_t)rp->free_head; k; k = ri_at(rp, k - 1)->next_free)
			free_n++;
		/* those still out, less those back already */
		rp_outstanding(rp, (long)rp->nr - free_n);
		sd_unwind_hooks_put();
	}
	sd_kretprobe_reap();
	sd_leave_sonde();
}
