/* SPDX-License-Identifier: MIT */
/* ftlib.h - what ftlib.c and test_ftrace.c share. */
#ifndef FTLIB_H
#define FTLIB_H

/* passed by value: on the stack */
struct ft_big {
	long a, b, c;
};

#endif
