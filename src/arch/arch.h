/* SPDX-License-Identifier: MIT */
/*
 * arch.h - every hook the generic code may call, implemented per arch
 * under src/arch/<arch>/.
 *
 * What the core guarantees to these hooks: decoding and slot building run
 * in normal context under the probe mutex; sd_arch_emulate() and the
 * register conversions run in the SIGTRAP handler and must not call libc.
 */
#ifndef SD_ARCH_H
#define SD_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sonde/kprobes.h>

/* ---- instructions ------------------------------------------------------- */

#define SD_INSN_MAX 15

enum sd_insn_kind {
	SD_INSN_PLAIN = 0, /* runs out of line as it is (rip-relative operand fixed) */
	SD_INSN_JMP,	   /* relative jmp: emulated */
	SD_INSN_CALL,	   /* relative call: emulated */
	SD_INSN_JCC,	   /* conditional relative jump: emulated */
	SD_INSN_LOOP,	   /* loop / loope / loopne: emulated */
	SD_INSN_JRCXZ,	   /* jrcxz / jecxz: emulated */
	SD_INSN_RET,	   /* near ret [imm16]: emulated */
	SD_INSN_JMP_IND,   /* jmp r/m64: emulated */
	SD_INSN_CALL_IND,  /* call r/m64: emulated */
};

struct sd_insn {
	uint64_t addr; /* where it was decoded from */
	uint8_t bytes[16];
	uint8_t len;
	uint8_t kind;	/* enum sd_insn_kind */
	uint8_t cond;	/* JCC: condition code (low nibble of the opcode); LOOP: 0 loop, 1 loope, 2
			   loopne */
	uint8_t addr32; /* 0x67 prefix: LOOP/JRCXZ test ecx instead of rcx */
	int8_t riprel;	/* offset of a rip-relative disp32 in bytes, or -1 */
	uint16_t ret_pop; /* RET: immediate bytes popped after the return address */
	uint64_t target;  /* relative branches: absolute destination */
};

/*
 * sd_arch_insn_decode - decode the instruction at @code (runtime address
 * @addr, @avail bytes readable) for probing. Returns 0, -EILSEQ when the
 * bytes are not a valid instruction, or -ENOTSUP when it is one a probe
 * cannot sit on (int3, privileged, far transfers, transactions…); the
 * reason is left in sonde_last_error().
 */
int sd_arch_insn_decode(const void *code, size_t avail, uint64_t addr, struct sd_insn *insn);

/*
 * sd_arch_insn_boundary - whether @addr starts an instruction of the
 * function at @func (its bytes at @code, @size long), decoding from the
 * start. Returns 0, or -EILSEQ with the nearest boundaries named in
 * sonde_last_error(); @what names the function in the message.
 */
int sd_arch_insn_boundary(const void *code, size_t size, uint64_t func, uint64_t addr,
			  const char *what);

/* length of the instruction at @code, 0 if it does not decode */
unsigned int sd_arch_insn_len(const void *code, size_t avail);

/* ---- out-of-line execution ----------------------------------------------- */

#define SD_XOL_SLOT_SIZE 64

enum sd_xol_end {
	SD_XOL_EXIT, /* leave through the exit stub: it clears `active`, jumps to `resume` */
	SD_XOL_JMP,  /* jump back directly */
	SD_XOL_TRAP, /* breakpoint: the post_handlers run next */
};

struct sd_xol_tail {
	uint64_t exit_stub; /* SD_XOL_EXIT: sd_arch_xol_exit_stub()'s code */
	uint8_t end;	    /* enum sd_xol_end */
};

/*
 * The way out of a slot. A thread must not be seen quiescent while it still
 * fetches instructions from a slot (it may be freed the moment it is), so a
 * slot ends with an absolute jump, read while the thread is still marked,
 * to this stub in memory that is never freed:
 *
 *     movb $0, %fs:active      the thread is out of every slot
 *     jmp  *%fs:resume         where the handler said to go back to
 *
 * Writes the stub into @buf (at most 32 bytes) and returns its length.
 */
int sd_arch_xol_exit_stub(int32_t active_tls_off, int32_t resume_tls_off, uint8_t *buf);

/* the longest copy sd_arch_xol_build() makes */
#define SD_XOL_COPY_MAX 32

/*
 * sd_arch_xol_build - the out-of-line copy of @insn as it will sit at
 * @slot: the instruction (rip-relative displacement re-aimed), then the
 * tail. Writes into @buf (SD_XOL_COPY_MAX bytes); returns the length, or
 * -ERANGE when @slot is too far from what the instruction addresses.
 */
int sd_arch_xol_build(const struct sd_insn *insn, uint64_t slot, const struct sd_xol_tail *tail,
		      uint8_t *buf);
/* address of the trap byte in a slot built with tail->trap */
uint64_t sd_arch_xol_trap_addr(const struct sd_insn *insn, uint64_t slot);

/* the instruction is emulated rather than run out of line */
static inline bool sd_arch_insn_emulated(const struct sd_insn *insn)
{
	return insn->kind != SD_INSN_PLAIN;
}

/*
 * sd_arch_emulate - apply a branch instruction's effect to @regs
 * (regs->ip is the instruction's address on entry). Signal-safe.
 * Returns 0, or -EFAULT when an indirect branch's memory operand is
 * unreadable: the caller then runs the slot copy, which takes the fault the
 * program would have taken.
 */
int sd_arch_emulate(const struct sd_insn *insn, struct sonde_regs *regs);

/* ---- registers ------------------------------------------------------------ */

/* the interrupted context of a signal (ucontext_t *) to and from sonde_regs */
void sd_arch_regs_from_uc(struct sonde_regs *regs, const void *uc);
/* the n'th function argument at a function's entry (sonde_regs_arg) */
uint64_t sd_arch_regs_arg(const struct sonde_regs *regs, unsigned int n);
/* where in struct sonde_regs the n'th argument is, or -1 (on the stack) */
int sd_arch_regs_arg_offset(unsigned int n);
void sd_arch_regs_to_uc(void *uc, const struct sonde_regs *regs);
uint64_t sd_arch_uc_ip(const void *uc);
uint64_t sd_arch_uc_sp(const void *uc);
void sd_arch_uc_set_ip(void *uc, uint64_t ip);
/* offset in struct sonde_regs of the register named @name ("di", "rdi"…), or -ENOENT */
int sd_arch_reg_offset(const char *name);

/* ---- breakpoints ------------------------------------------------------------ */

#define SD_ARCH_BP_INSN 0xcc
#define SD_ARCH_BP_LEN	1

/* ---- text patching (poke.c) --------------------------------------------------- */

struct sd_poke {
	void *addr;
	uint8_t len;
	uint8_t old[16]; /* filled by sd_text_poke_batch */
	uint8_t new[16];
};

/*
 * sd_text_poke_batch - change live code that other threads may be running,
 * the kernel's text_poke_bp way: a breakpoint over the first byte of every
 * site, serialize every core, the tail bytes, serialize, the first bytes,
 * serialize. A thread that meets a transient breakpoint waits in the trap
 * handler until the batch is done and then runs the new instruction
 * (sd_text_poke_trap). One-byte pokes skip the protocol (a byte is written
 * atomically). Returns 0 or -errno; on failure nothing is changed.
 */
int sd_text_poke_batch(struct sd_poke *pokes, int n);
/*
 * The same, calling @settle(@arg) once the breakpoints are in (no thread
 * can enter a site but through one): a nonzero return puts everything
 * back and is returned.
 */
int sd_text_poke_batch_settle(struct sd_poke *pokes, int n, int (*settle)(void *arg), void *arg);

/* write code no thread can be running yet (a fresh slot); no serialization */
int sd_text_write(void *addr, const void *src, size_t len);

/*
 * Bumped before and after every change of code or of the probe tables: a
 * trap handler that finds nothing at its address, and an int3 there, can
 * tell whether the picture changed while it looked.
 */
extern volatile unsigned long sd_code_gen;

/* make every thread of the process execute a core-serializing instruction */
void sd_sync_cores(void);

/*
 * sd_text_poke_trap - called by the SIGTRAP handler for a breakpoint it does
 * not own at @bp_addr: true when it is a transient one of a poke in progress
 * (after waiting for the poke to finish; the caller resumes at @bp_addr).
 */
bool sd_text_poke_trap(uint64_t bp_addr);

/* ---- jump-optimized probes (optimize.c, optprobe_tramp.S) ------------------------ */

#define SD_OPT_JUMP_LEN	 5 /* jmp rel32 */
#define SD_OPT_MAX_INSNS 5
/* the bytes those instructions span at most: the last starts within the jump */
#define SD_OPT_MAX_BYTES  (SD_OPT_JUMP_LEN - 1 + 15)
#define SD_OPT_DETOUR_MAX 512

/* a piece of original code: the function, and its .cold part if any */
struct sd_opt_code {
	uint64_t start;
	size_t len;
	const uint8_t *bytes; /* as it was before any probe */
};

struct sd_opt_region {
	uint64_t addr;
	unsigned int len; /* bytes the jump replaces: whole instructions, >= 5 */
	int ninsn;
	struct sd_insn insn[SD_OPT_MAX_INSNS];
};

/* the direct branch targets in an object: a bit per byte of [start, end) */
struct sd_targets {
	uint64_t start, end;
	uint64_t *bits;
};

/*
 * sd_arch_opt_analyze - whether the probe at @addr can become a jump, by the
 * kernel's rules; @code[0] is the function containing @addr, the others are
 * more code of it (.cold); @module_targets are the branch targets of the
 * whole object. 0 and the region, or -EOPNOTSUPP with @why.
 */
int sd_arch_opt_analyze(const struct sd_opt_code *code, int ncode, uint64_t addr,
			const struct sd_targets *module_targets, struct sd_opt_region *r,
			const char **why);
/* mark in @t every direct branch target of some code (at @base) */
void sd_arch_scan_targets(const uint8_t *code, uint64_t base, size_t len, struct sd_targets *t);
/*
 * sd_arch_opt_build_copy - the copies of region @r that threads leave a
 * detour through, to sit at @at in memory never freed (a thread may still
 * run one long after its detour went): the main copy, which marks the
 * thread as in a slot and unmarks it at each of its ways out, then at
 * *@nested the nested one (for a thread that keeps its mark), with plain
 * jumps. Their bytes in @buf (how many, the same wherever @at is), or
 * -ERANGE / -ENOSPC.
 */
#define SD_OPT_COPY_MAX 256
struct sd_opt_copy_spec {
	int32_t active_tls_off; /* %fs offset of the thread's `active` byte */
	uint8_t active_slot;	/* its value while the thread runs the main copy */
};
int sd_arch_opt_build_copy(const struct sd_opt_region *r, const struct sd_opt_copy_spec *spec,
			   uint64_t at, uint8_t *buf, size_t cap, size_t *nested);

struct sd_opt_detour_spec {
	uint64_t detour; /* where it will sit */
	uint32_t index;	 /* the site's index for the trampoline */
	uint64_t common; /* the common trampoline */
	/*
	 * for a lite site at a function's first instruction: the handler
	 * (sd_optprobe_handler), called from the detour itself, which saves
	 * the registers; 0: through @common
	 */
	uint64_t handler;
	uint64_t copy, copy_nested; /* the region's copies (sd_arch_opt_build_copy) */
};

struct sd_opt_layout {
	/*
	 * the trampoline returns here: lea, then out to the copy; from a
	 * detour that saves the registers itself (saves_regs), the handler
	 * returns here, with its return address just below the registers
	 * aligned down to 16, not just above them
	 */
	uint64_t ret_main;
	uint64_t main;	     /* the main copy (an int3 hit resumes here) */
	uint64_t ret_nested; /* as ret_main, then the nested copy */
	uint64_t nested;     /* the nested copy */
	bool saves_regs;
};

/* the detour (@cap bytes, the last 16 hold data); returns bytes of code */
int sd_arch_opt_build_detour(const struct sd_opt_detour_spec *spec, uint8_t *buf, size_t cap,
			     struct sd_opt_layout *lay);
/*
 * the common trampolines (optprobe_tramp.S): with the vector state and
 * without it (_lite); the _entry ones for a function's first instruction,
 * where the ABI has the x87 stack empty, DF clear and the other flags dead
 */
extern const char sd_arch_optprobe_tramp[];
extern const char sd_arch_optprobe_tramp_entry[];
extern const char sd_arch_optprobe_tramp_lite[];
extern const char sd_arch_optprobe_tramp_lite_entry[];

/*
 * sd_arch_code_vec_free - whether the function at @fn provably never
 * touches a vector, x87, MMX or MXCSR register, in any code it reaches (its
 * handlers then run without the vector state saved). False whenever unsure.
 */
bool sd_arch_code_vec_free(uint64_t fn);
/* the bytes to write over the region: the jump, then int3 padding */
void sd_arch_opt_jump(const struct sd_opt_region *r, uint64_t detour, uint8_t *out);

/* ---- function tracer stubs (ftrace_stub.c, ftrace_tramp.S) ------------------------ */

#define SD_ARCH_FTRACE_STUB_SIZE 48
/*
 * The stub a patched entry nop jumps to, for address @at (within a rel32's
 * reach of @body, the code after the nop), into @buf: 0, or -1 if @body is
 * out of reach.
 */
int sd_arch_ftrace_stub(uint8_t *buf, uint64_t at, uint64_t body);
/*
 * From @in_stub, the address the stub's call to sd_arch_ftrace_stub_entry
 * returns to: the function's body, and where the body returns to when the
 * stub calls it (what its return-address slot holds then).
 */
uint64_t sd_arch_ftrace_stub_body(uint64_t in_stub);
uint64_t sd_arch_ftrace_stub_hook_ret(uint64_t in_stub);
extern const char sd_arch_ftrace_stub_entry[];
extern const char sd_arch_fgraph_return_call[];

/* the kretprobe return trampoline (kretprobe_tramp.S) */
extern const char sd_arch_kretprobe_trampoline[];
extern const char sd_arch_kretprobe_trampoline_end[];

#endif
