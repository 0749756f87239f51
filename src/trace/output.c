// SPDX-License-Identifier: MIT
/* output.c - trace lines in the kernel's format (trace_output.c). */
#include <inttypes.h>
#include <string.h>

#include "trace/output.h"

int sd_clock_in_ns(int id)
{
	return id != SD_CLOCK_COUNTER && id != SD_CLOCK_X86_TSC && id != SD_CLOCK_UPTIME;
}

void sd_render_header(struct sd_seq *s, const char *tracer, uint64_t in_buffer, uint64_t written,
		      int ncpus)
{
	sd_seq_printf(s, "# tracer: %s\n#\n", tracer);
	sd_seq_printf(s,
		      "# entries-in-buffer/entries-written: %" PRIu64 "/%" PRIu64 "   #P:%d\n#\n",
		      in_buffer, written, ncpus);
	sd_seq_puts(s, "#                                _-----=> irqs-off/BH-disabled\n"
		       "#                               / _----=> need-resched\n"
		       "#                              | / _---=> hardirq/softirq\n"
		       "#                              || / _--=> preempt-depth\n"
		       "#                              ||| / _-=> migrate-disable\n"
		       "#                              |||| /     delay\n"
		       "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n"
		       "#              | |         |   |||||     |         |\n");
}

void sd_render_lost(struct sd_seq *s, unsigned int cpu, uint64_t lost)
{
	sd_seq_printf(s, "CPU:%u [LOST %" PRIu64 " EVENTS]\n", cpu, lost);
}

void sd_render_context(struct sd_seq *s, const struct sd_render *r, const struct sd_rb_event *rec)
{
	int32_t pid = rec->tid;
	uint64_t ns;

	if (rec->len >= 8)
		memcpy(&pid, (const unsigned char *)rec->payload + 4, 4);
	/* no irq or preemption state in user space: the five flag columns are dots */
	sd_seq_printf(s, "%16s-%-7d [%03u] ..... ", rec->comm && rec->comm[0] ? rec->comm : "<...>",
		      pid, rec->cpu);
	if (sd_clock_in_ns(r->clock_id)) {
		ns = sd_clock_to_ns(r->clock, r->clock_id, rec->ts);
		sd_seq_printf(s, "%5" PRIu64 ".%06" PRIu64 ": ", (uint64_t)(ns / 1000000000ull),
			      (uint64_t)((ns / 1000) % 1000000));
	} else {
		sd_seq_printf(s, "%12" PRIu64 ": ", rec->ts);
	}
}

void sd_render_record(struct sd_seq *s, const struct sd_render *r, const struct sd_rb_event *rec)
{
	uint16_t id = 0;
	struct sd_event *ev;

	if (rec->len >= 8)
		memcpy(&id, rec->payload, 2);
	ev = r->event ? r->event(r->event_arg, id) : NULL;
	if (ev && ev->ops && ev->ops->render) {
		ev->ops->render(s, r, rec, ev);
		return;
	}
	sd_render_context(s, r, rec);
	if (!ev) {
		sd_seq_printf(s, "Unknown event %u\n", id);
		return;
	}
	sd_seq_printf(s, "%s: ", ev->name);
	if (ev->ops && ev->ops->print)
		ev->ops->print(s, ev, rec->payload, rec->len, &r->pctx);
	sd_seq_putc(s, '\n');
}
