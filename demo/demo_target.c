// SPDX-License-Identifier: MIT
/*
 * demo_target.c - a small program to trace: it counts the words of a few
 * lines, keeping them in a hash table it grows with malloc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct word {
	struct word *next;
	unsigned int count;
	char text[];
};

static struct word *table[64];

__attribute__((noinline)) unsigned int hash(const char *s)
{
	unsigned int h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

__attribute__((noinline)) struct word *add_word(const char *text)
{
	unsigned int slot = hash(text) % 64;
	struct word *w;

	for (w = table[slot]; w; w = w->next)
		if (!strcmp(w->text, text))
			break;
	if (!w) {
		w = malloc(sizeof(*w) + strlen(text) + 1);
		if (!w)
			exit(1);
		strcpy(w->text, text);
		w->count = 0;
		w->next = table[slot];
		table[slot] = w;
	}
	w->count++;
	return w;
}

int main(void)
{
	static const char *const lines[] = {
	    "the kernel is the reference",
	    "a probe on any instruction of the process",
	    "the probe fires and the handler runs",
	};
	unsigned int best = 0;
	const char *best_word = "";

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		char buf[128], *save = NULL;

		snprintf(buf, sizeof(buf), "%s", lines[i]);
		for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
			struct word *w = add_word(t);

			if (w->count > best) {
				best = w->count;
				best_word = w->text;
			}
		}
	}
	printf("most frequent: '%s' (%u times)\n", best_word, best);
	return 0;
}
