// SPDX-License-Identifier: MIT
/*
 * jump_label.c - flipping tracepoint sites between the 5-byte nop the
 * compiler emitted and a jmp to the out-of-line call (the kernel's
 * arch/x86/kernel/jump_label.c), through the text_poke_bp batch.
 *
 * Like the kernel's __jump_label_patch(), a site is checked before it is
 * written: it must hold exactly what the other state would have. Anything
 * else means someone else changed it (a probe's int3 or jump on it), and
 * writing over that would break them: such a site is skipped and reported.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SD_LOG_PREFIX "jump_label"
#include "arch/arch.h"
#include "common/log.h"
#include "probe/probe.h"
#include "tracepoint/tracepoint.h"

/* P6_NOP5, what <sonde/tracepoint.h> emits */
const uint8_t sd_jump_nop[SD_JUMP_LEN] = {0x0f, 0x1f, 0x44, 0x00, 0x00};

void sd_jump_insn(const struct sd_jump_site *s, uint8_t out[SD_JUMP_LEN])
{
	int32_t rel = (int32_t)(s->target - (s->addr + SD_JUMP_LEN));

	out[0] = 0xe9;
	memcpy(out + 1, &rel, 4);
}

int sd_jump_label_patch(const struct sd_jump_site *sites, unsigned int n, bool on,
			unsigned int *skipped)
{
	struct sd_poke *pokes;
	unsigned int np = 0;
	int err;

	if (skipped)
		*skipped = 0;
	if (!n)
		return 0;
	/* a thread meeting a transient int3 waits in sonde's SIGTRAP handler */
	err = sd_signal_setup();
	if (err)
		return err;
	pokes = calloc(n, sizeof(*pokes));
	if (!pokes)
		return -ENOMEM;
	for (unsigned int i = 0; i < n; i++) {
		uint8_t jmp[SD_JUMP_LEN];
		const uint8_t *want = on ? sd_jump_nop : jmp, *put = on ? jmp : sd_jump_nop;
		int64_t dist = (int64_t)(sites[i].target - (sites[i].addr + SD_JUMP_LEN));

		sd_jump_insn(&sites[i], jmp);
		if (dist != (int32_t)dist ||
		    memcmp((const void *)(uintptr_t)sites[i].addr, want, SD_JUMP_LEN)) {
			if (skipped)
				(*skipped)++;
			continue;
		}
		pokes[np].addr = (void *)(uintptr_t)sites[i].addr;
		pokes[np].len = SD_JUMP_LEN;
		memcpy(pokes[np].new, put, SD_JUMP_LEN);
		np++;
	}
	err = np ? sd_text_poke_batch(pokes, (int)np) : 0;
	free(pokes);
	return err;
}
