/* SPDX-License-Identifier: MIT */
/* tpsample.h - libtpsample.so: a library with static tracepoints. */
#ifndef TPSAMPLE_H
#define TPSAMPLE_H

/* each fires one tracepoint of system tpsample */
void tpsample_int(int value);
void tpsample_str(const char *name);
void tpsample_array(const unsigned int *v, int n);
void tpsample_state(unsigned int flags, int state);
/* a loop of calls to tpsample_int (for threads racing enable/disable) */
unsigned long tpsample_spin(unsigned long n);

#endif
