#!/bin/sh
# SPDX-License-Identifier: MIT
# t6151: start-up tracing (--init), the kernel's initcall events for a
# program: every constructor of the executable (.preinit_array, DT_INIT,
# .init_array) and of its libraries, in run order, with its object and
# duration; none of sonde's own.
#
# Oracle: t6init logs each of its constructors' start and end
# (CLOCK_MONOTONIC, ns) to $T6_LOG. Traced with --clock mono, each one's
# initcall_start must come at or before its logged start, its duration at
# least the logged one (and not much more), in the logged order; the
# program's output must be what it is without sonde.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t6init
TMP=$(mktemp -d /tmp/sonde-t6151.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT

FAILS=0
fail() {
	echo "t6151: FAIL: $*" >&2
	exit 1
}
bad() {
	echo "t6151: FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built (tests/targets/t6init.cmake)"
[ -f "$B/lib/libsonde-init.so" ] || fail "libsonde-init.so is not built"

"$TARGET" >"$TMP/plain.out" || fail "the target fails without sonde"

T6_LOG=$TMP/log "$SONDE" ftrace --init --clock mono -F main -o "$TMP/trace" -- "$TARGET" \
	>"$TMP/traced.out" 2>"$TMP/err" || fail "sonde ftrace --init failed: $(cat "$TMP/err")"
cmp -s "$TMP/plain.out" "$TMP/traced.out" || bad "the program's output changed under sonde"
[ "$(wc -l <"$TMP/log")" = 5 ] || fail "the program logged $(wc -l <"$TMP/log") constructors, not 5"

# "start|finish NAME OBJ KIND TS DURATION" per initcall line
awk '/initcall_(start|finish): / {
	ts = $0; sub(/:.*$/, "", ts); sub(/.* /, "", ts)
	what = ($0 ~ /initcall_start/) ? "start" : "finish"
	f = $0; sub(/.*func=/, "", f); name = f; sub(/\+.*/, "", name)
	obj = f; sub(/^[^[]*\[/, "", obj); sub(/\].*/, "", obj)
	kind = f; sub(/^[^]]*\] /, "", kind); sub(/ .*/, "", kind)
	d = 0; if (what == "finish") { d = f; sub(/.*duration=/, "", d); sub(/ ns.*/, "", d) }
	print what, name, obj, kind, ts, d
}' "$TMP/trace" >"$TMP/calls"
[ -s "$TMP/calls" ] || fail "no initcall events: $(head -5 "$TMP/trace")"

# in run order, the program's constructors as the program saw them
awk '$1 == "start"' "$TMP/calls" | awk '{print $2}' | grep -x -e pre1 -e lib_ctor -e exe_init \
	-e ctor_a -e ctor_b >"$TMP/order.sonde"
awk '{print $1}' "$TMP/log" >"$TMP/order.prog"
cmp -s "$TMP/order.sonde" "$TMP/order.prog" ||
	bad "order: sonde $(tr '\n' ' ' <"$TMP/order.sonde"), program $(tr '\n' ' ' <"$TMP/order.prog")"

# each start is followed by its own finish (constructors do not nest here)
awk 'NR % 2 == 1 { s = $2 } NR % 2 == 0 && ($1 != "finish" || $2 != s) { print NR; exit 1 }' \
	"$TMP/calls" >/dev/null || bad "starts and finishes do not pair up: $(tr '\n' '|' <"$TMP/calls")"

# kinds and objects
for want in "pre1 t6init .preinit_array" "exe_init t6init DT_INIT" "ctor_a t6init .init_array" \
	"ctor_b t6init .init_array" "lib_ctor libt6init.so .init_array"; do
	set -- $want
	awk -v n="$1" -v o="$2" -v k="$3" '$1 == "start" && $2 == n && $3 == o && index($4, k) == 1 {
		found = 1 } END { exit !found }' "$TMP/calls" || bad "no start of $1 [$2] $3"
done
grep -q ' libc.so.6 ' "$TMP/calls" || bad "libc's constructors are missing"
grep -E ' (libsonde|libelf|libdw|libZydis|libsonde-init)[^ ]* ' "$TMP/calls" &&
	bad "constructors of sonde's own libraries are shown"

# times: start at or before the logged start (µs), duration at least the logged one
while read -r name a b; do
	line=$(awk -v n="$name" '$1 == "start" && $2 == n' "$TMP/calls")
	fin=$(awk -v n="$name" '$1 == "finish" && $2 == n' "$TMP/calls")
	[ -n "$line" ] && [ -n "$fin" ] || { bad "$name: no start/finish"; continue; }
	ts=$(echo "$line" | awk '{print $5}')
	d=$(echo "$fin" | awk '{print $6}')
	awk -v ts="$ts" -v a="$a" -v b="$b" -v d="$d" -v n="$name" 'BEGIN {
		us = int(a / 1000); t = ts * 1000000; logged = b - a
		if (t > us + 1) { print n ": start " t " us after the logged " us; exit 1 }
		if (d < logged) { print n ": duration " d " ns < logged " logged; exit 1 }
		if (d > logged + 5000000) { print n ": duration " d " ns, logged " logged; exit 1 }
	}' || bad "$name: times"
done <"$TMP/log"

# the graph tracer shows them too, and --init needs a program sonde starts
T6_LOG=/dev/null "$SONDE" graph --init -F main -o "$TMP/graph" -- "$TARGET" >/dev/null 2>"$TMP/err" ||
	bad "sonde graph --init failed: $(cat "$TMP/err")"
grep -q 'initcall_finish: func=ctor_a' "$TMP/graph" || bad "sonde graph --init: no ctor_a"

# a recording keeps them
T6_LOG=/dev/null "$SONDE" record --function --init -F main -o "$TMP/rec.dat" -- "$TARGET" \
	>/dev/null 2>"$TMP/err" || bad "sonde record --init failed: $(cat "$TMP/err")"
"$SONDE" report "$TMP/rec.dat" >"$TMP/report" 2>"$TMP/err" || bad "report failed: $(cat "$TMP/err")"
grep -q 'initcall_start: func=lib_ctor+0x0/[0-9a-fx]* \[libt6init.so\] .init_array' "$TMP/report" ||
	bad "the report lacks lib_ctor: $(grep initcall "$TMP/report" | head -3)"

[ $FAILS = 0 ] || fail "$FAILS checks failed (above)"
echo "t6151: ok"
