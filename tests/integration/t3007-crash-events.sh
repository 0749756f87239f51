#!/bin/sh
# SPDX-License-Identifier: MIT
# t3007: a program that crashes (abort()) right after N calls of a probed
# function: every one of its events is printed, and sonde exits with the
# program's status (128 + SIGABRT = 134).
#
# t3_target crash N calls work() N times, logging each call (flushed), then
# aborts. Under `sonde trace` with an entry and a return probe on work, the
# output must hold exactly 2N events, in order, with the logged values, the
# last call's included; no loss is reported. The same under `sonde record`,
# read back by `sonde report`. Sizes: a small N, and one large enough that
# most events are still in the buffers when the program dies (the consumer
# cannot keep up with a probe that costs a few microseconds).
# T3007_KEEP=1 keeps the files.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t3_target

TMP=$(mktemp -d /tmp/sonde-t3007.XXXXXX) || exit 1
cleanup() {
	if [ -n "${T3007_KEEP:-}" ]; then
		echo "t3007: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

FAILS=0
fail() {
	echo "t3007: FAIL: $*" >&2
	exit 1
}
bad() {
	echo "t3007: FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
[ "$(uname -m)" = x86_64 ] || { echo "t3007: SKIP: the register names are x86-64's"; exit 77; }
ulimit -c 0 2>/dev/null
mkdir "$TMP/run" && cd "$TMP/run" || fail "cannot make $TMP/run"

E1='p:g/w work a=%di:u64 s=+0(%si):string'
E2='r:g/wr work $retval'

# expect TAG: the events the log of run TAG says there must be
expect() {
	awk '/^work / {
		s = $0; sub(/^work a=[0-9]+ s=/, "", s); sub(/ ret=0x[0-9a-f]+$/, "", s)
		print "w: a=" substr($2, 3) " s=" (s == "(null)" ? "(fault)" : "\"" s "\"")
		print "wr: arg1=" substr($NF, 5)
	}' "$TMP/$1.log"
}

# events FILE: "NAME: fields" of FILE's event lines
events() {
	sed -n -E 's/^ *[^ ]+-[0-9]+ +\[[0-9]+\] [^ ]+ +[0-9]+\.[0-9]+: ([a-z]+): \([^)]*\) /\1: /p' "$1"
}

# check TAG N OUT: OUT holds the 2N events of run TAG, nothing lost
check() {
	[ "$(grep -c '^work ' "$TMP/$1.log")" -eq "$2" ] ||
		fail "$1: the program logged $(grep -c '^work ' "$TMP/$1.log") calls, not $2"
	expect "$1" >"$TMP/$1.want"
	events "$3" >"$TMP/$1.got"
	ngot=$(wc -l <"$TMP/$1.got")
	[ "$ngot" -eq $((2 * $2)) ] || bad "$1: $ngot events printed, not $((2 * $2))"
	cmp -s "$TMP/$1.want" "$TMP/$1.got" ||
		bad "$1: the events are not the calls: $(diff "$TMP/$1.want" "$TMP/$1.got" | head -4 | tr '\n' '|')"
	grep -q 'LOST' "$3" && bad "$1: events lost: $(grep -m1 LOST "$3")"
}

for n in 5 20000; do
	# live
	T3_OUT=$TMP/trace$n.log "$SONDE" trace -b 16384 -e "$E1" -e "$E2" -- "$TARGET" crash $n \
		>"$TMP/trace$n.out" 2>"$TMP/trace$n.err"
	rc=$?
	[ $rc -eq 134 ] || bad "trace, $n calls: sonde exited $rc, not 134 (SIGABRT): $(tail -2 "$TMP/trace$n.err")"
	grep -q -i 'dropped' "$TMP/trace$n.err" && bad "trace, $n calls: $(grep -i dropped "$TMP/trace$n.err")"
	check trace$n $n "$TMP/trace$n.out"

	# recorded
	T3_OUT=$TMP/rec$n.log "$SONDE" record -b 16384 -o "$TMP/rec$n.dat" -e "$E1" -e "$E2" -- \
		"$TARGET" crash $n >"$TMP/rec$n.out" 2>"$TMP/rec$n.err"
	rc=$?
	[ $rc -eq 134 ] || bad "record, $n calls: sonde exited $rc, not 134 (SIGABRT): $(tail -2 "$TMP/rec$n.err")"
	grep -q -x -F "sonde: recorded $((2 * n)) events to $TMP/rec$n.dat" "$TMP/rec$n.err" ||
		bad "record, $n calls: '$(cat "$TMP/rec$n.err")', want $((2 * n)) events recorded"
	"$SONDE" report "$TMP/rec$n.dat" >"$TMP/rep$n.out" 2>"$TMP/rep$n.err" ||
		bad "report, $n calls: failed: $(tail -2 "$TMP/rep$n.err")"
	check rec$n $n "$TMP/rep$n.out"
	echo "t3007: $n calls then abort(): $(events "$TMP/trace$n.out" | wc -l) events traced," \
		"$(events "$TMP/rep$n.out" | wc -l) recorded"
done

[ "$FAILS" -eq 0 ] || fail "$FAILS checks failed (above)"
echo "ok: every event written before the crash is printed, and the status is 134"
exit 0
