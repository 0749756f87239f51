// SPDX-License-Identifier: MIT
/*
 * ftrace_stub.c - the stub of one patched entry nop (function tracers).
 *
 * The nop becomes `jmp stub`. The stub calls sd_arch_ftrace_stub_entry,
 * which says in %r11 whether function_graph took the call. If not, the
 * stub jumps to the function's body (the bytes after the nop). If so, it
 * drops the function's return address (the graph frame keeps it) and
 * calls the body itself: the body's return address is then the stub's, in
 * the same slot, with the stack arguments where the body expects them. The
 * body returns into the stub, which goes on to
 * sd_arch_fgraph_return_call; that ends with `ret` to the real address.
 *
 * Every call here has its return, so the CPU's return-address stack stays
 * in step and no return mispredicts. Swapping the return address instead
 * (the -pg and probe sites) costs a mispredicted return per call.
 *
 *   +0   ff 15 <rel32>         call *ENTRY(%rip)
 *   +6   45 85 db              test %r11d, %r11d
 *   +9   74 10                 jz   +27
 *   +11  48 8d 64 24 08        lea  8(%rsp), %rsp     the return address, dropped
 *   +16  e8 <rel32>            call body
 *   +21  ff 25 <rel32>         jmp  *EXIT(%rip)       where the body returns
 *   +27  e9 <rel32>            jmp  body
 *   +32  ENTRY: sd_arch_ftrace_stub_entry
 *   +40  EXIT:  sd_arch_fgraph_return_call
 */
#include <string.h>

#include "arch/arch.h"

#define IN_STUB	  6  /* where the call to the entry returns */
#define HOOK_RET  21 /* where the body returns when the stub called it */
#define BODY_JMP  27
#define ENTRY_PTR 32
#define EXIT_PTR  40

_Static_assert(EXIT_PTR + 8 == SD_ARCH_FTRACE_STUB_SIZE, "stub layout");

static void put_rel32(uint8_t *buf, int at, uint64_t base, int end, uint64_t to)
{
	int32_t rel = (int32_t)((int64_t)to - (int64_t)(base + (uint64_t)end));

	memcpy(buf + at, &rel, 4);
}

int sd_arch_ftrace_stub(uint8_t *buf, uint64_t at, uint64_t body)
{
	/* clang-format off */
	static const uint8_t code[] = {
		0xff, 0x15, 0, 0, 0, 0,		/* call *ENTRY(%rip) */
		0x45, 0x85, 0xdb,		/* test %r11d, %r11d */
		0x74, BODY_JMP - 11,		/* jz +27 */
		0x48, 0x8d, 0x64, 0x24, 0x08,	/* lea 8(%rsp), %rsp */
		0xe8, 0, 0, 0, 0,		/* call body */
		0xff, 0x25, 0, 0, 0, 0,		/* jmp *EXIT(%rip) */
		0xe9, 0, 0, 0, 0,		/* jmp body */
	};
	/* clang-format on */
	uint64_t entry = (uint64_t)(uintptr_t)sd_arch_ftrace_stub_entry;
	uint64_t exit_ = (uint64_t)(uintptr_t)sd_arch_fgraph_return_call;
	int64_t reach = (int64_t)body - (int64_t)at;

	_Static_assert(sizeof(code) == ENTRY_PTR, "stub code");
	if (reach > INT32_MAX - 64 || reach < INT32_MIN + 64)
		return -1; /* the body out of a rel32's reach */
	memcpy(buf, code, sizeof(code));
	put_rel32(buf, 2, at, 6, at + ENTRY_PTR);
	put_rel32(buf, 17, at, HOOK_RET, body);
	put_rel32(buf, 23, at, BODY_JMP, at + EXIT_PTR);
	put_rel32(buf, 28, at, ENTRY_PTR, body);
	memcpy(buf + ENTRY_PTR, &entry, 8);
	memcpy(buf + EXIT_PTR, &exit_, 8);
	return 0;
}

uint64_t sd_arch_ftrace_stub_body(uint64_t in_stub)
{
	uint64_t stub = in_stub - IN_STUB;
	int32_t rel;

	memcpy(&rel, (const void *)(uintptr_t)(stub + BODY_JMP + 1), 4);
	return stub + ENTRY_PTR + (uint64_t)(int64_t)rel;
}

uint64_t sd_arch_ftrace_stub_hook_ret(uint64_t in_stub)
{
	return in_stub - IN_STUB + HOOK_RET;
}
