#!/bin/sh
# SPDX-License-Identifier: MIT
# t2001: what runs on the probe path (libsonde's sonde_text section: the
# trap handler, trampoline handlers, event writers, function tracers) calls
# no function through the PLT. Such a call could reach a libc function the
# user probes (a hit sonde itself makes, counted as missed), or the dynamic
# linker's lazy binding from inside a trap handler.
T=t2001
B=${SONDE_BUILD:?SONDE_BUILD is not set}
LIB=$B/lib/libsonde.so

[ -f "$LIB" ] || { echo "$T: FAIL: $LIB is not built" >&2; exit 1; }
command -v objdump >/dev/null 2>&1 || { echo "$T: SKIP: no objdump (binutils)" >&2; exit 77; }
dis=$(objdump -d -j sonde_text --no-show-raw-insn "$LIB" 2>&1) || {
	echo "$T: FAIL: objdump: $dis" >&2
	exit 1
}
n=$(printf '%s\n' "$dis" | grep -c '^[0-9a-f]* <.*>:$')
[ "$n" -gt 50 ] || { echo "$T: FAIL: only $n functions in sonde_text: $LIB" >&2; exit 1; }
calls=$(printf '%s\n' "$dis" | awk '/^[0-9a-f]+ <.*>:$/ { fn = $2 } /call.*@plt>/ { print fn " calls " $NF }')
if [ -n "$calls" ]; then
	echo "$T: FAIL: PLT calls on the probe path:" >&2
	echo "$calls" >&2
	exit 1
fi
echo "$T: ok ($n functions in sonde_text, no PLT call)"
