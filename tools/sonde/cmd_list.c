// SPDX-License-Identifier: MIT
/* cmd_list.c - sonde list: placeholder until the symbol module lands. */
#include "cli.h"

int cmd_list(int argc, char **argv)
{
	return cli_error("list: not implemented yet");
}
