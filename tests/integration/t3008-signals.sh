#!/bin/sh
# SPDX-License-Identifier: MIT
# t3008: a program's own SIGTRAP handler and signal masks under sonde.
#
# sonde needs SIGTRAP for its breakpoints, and a breakpoint met while
# SIGTRAP is blocked would kill the process; the program must not notice
# either: it reads and gets its own handler, its int3 reaches it, and it
# may block every signal around probed calls. Oracle: the program's output
# without sonde, and one probe event per work() call.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t3_signals
TMP=$(mktemp -d /tmp/sonde-t3008.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT

fail() {
	echo "t3008: FAIL: $*" >&2
	exit 1
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"

"$TARGET" >"$TMP/plain" || fail "the target fails without sonde"
grep -q "^work calls: 3$" "$TMP/plain" || fail "the target's own run: $(cat "$TMP/plain")"

# the breakpoint probe stays a breakpoint: SONDE_NOOPT
SONDE_NOOPT=1 "$SONDE" trace -o "$TMP/events" -e 'p:t/work work x=%di:s32' -- "$TARGET" \
	>"$TMP/traced" 2>"$TMP/err" || fail "under sonde the target failed: $(cat "$TMP/err")"
diff "$TMP/plain" "$TMP/traced" >"$TMP/diff" ||
	fail "the program saw something else under sonde: $(tr '\n' '|' <"$TMP/diff")"
n=$(grep -c ' work: (work+0x0/' "$TMP/events")
[ "$n" = 3 ] || fail "$n work events, expected 3: $(cat "$TMP/events")"
for x in 1 2 10; do
	grep -q " x=$x\$" "$TMP/events" || fail "no event with x=$x: $(cat "$TMP/events")"
done

# registers stored as they are, at every width (no fetch interpreter there)
"$SONDE" trace -o "$TMP/widths" -e 'p:t/w work x=%di:s32 b=%di:u8 h=%di:x16 q=%di:s64 n=%di:s8' \
	-- "$TARGET" >/dev/null 2>"$TMP/err" || fail "under sonde (widths): $(cat "$TMP/err")"
for x in 1 2 10; do
	grep -q " x=$x b=$x h=0x$(printf %x $x) q=$x n=$x\$" "$TMP/widths" ||
		fail "no event with x=$x at every width: $(cat "$TMP/widths")"
done
echo "t3008: ok"
