#!/bin/sh
# SPDX-License-Identifier: MIT
# t5001-usdt-cxx: libstdc++'s exception probes (libstdcxx:throw, catch,
# rethrow) fire on C++ throws, found three ways: searched in the program's
# libraries (u:PROVIDER:NAME), by library name (u:libstdc++:…) and by path
# (usdt:/…/libstdc++.so.6:…).
#
# Oracle: t5_throw N throws N exceptions, an std::runtime_error in even
# rounds and a t5_error in odd ones, rethrows one, enters H catch blocks,
# and says so. The events: N throws whose type_info names (read through the
# throw probe's second argument) alternate St13runtime_error / 8t5_error,
# H catches, 1 rethrow; each catch and rethrow carries the object the throw
# before it carried; a filter on a string field keeps the odd rounds.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t5_throw
N=6
TMP=$(mktemp -d /tmp/sonde-t5001c.XXXXXX) || exit 1
cleanup() {
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "t5001-usdt-cxx: FAIL: $*" >&2
	exit 1
}
skip() {
	echo "t5001-usdt-cxx: SKIP: $*"
	exit 77
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
command -v readelf >/dev/null 2>&1 || skip "readelf is not installed"
LIBSTDCXX=$(ldd "$TARGET" 2>/dev/null | awk '/libstdc\+\+/ { print $3; exit }')
[ -n "$LIBSTDCXX" ] || fail "cannot find the libstdc++ of $TARGET"
readelf -n "$LIBSTDCXX" | grep -q 'Name: throw' || skip "$LIBSTDCXX has no libstdcxx:throw probe"

"$TARGET" $N >"$TMP/plain" || fail "$TARGET $N failed"
read -r _ THROWS _ RETHROWS _ HANDLERS <"$TMP/plain"
[ "$THROWS" -eq $N ] && [ "$RETHROWS" -eq 1 ] || fail "$TARGET says: $(cat "$TMP/plain")"

# run NAME SPEC...: sonde trace with the -e given, the program's output unchanged
run() {
	name=$1
	shift
	"$SONDE" trace "$@" -- "$TARGET" $N >"$TMP/$name" 2>"$TMP/$name.err" ||
		fail "$name: sonde trace failed: $(cat "$TMP/$name.err")"
	[ -s "$TMP/$name.err" ] && fail "$name: sonde said: $(head -3 "$TMP/$name.err")"
	grep -v -E ' (throw|catch|rethrow): \(' "$TMP/$name" | cmp -s - "$TMP/plain" ||
		fail "$name: the program's output changed: $(grep -v -E ' (throw|catch|rethrow): ' "$TMP/$name")"
}

# count NAME EVENT
count() {
	grep -c " $2: (" "$TMP/$1"
}

run search -e 'u:libstdcxx:throw obj=arg1 type=+0(+8(arg2)):string' \
	-e 'u:libstdcxx:catch obj=arg1' -e 'u:libstdcxx:rethrow obj=arg1'
[ "$(count search throw)" -eq "$THROWS" ] ||
	fail "$(count search throw) throw events for $THROWS throws: $(head -5 "$TMP/search")"
[ "$(count search catch)" -eq "$HANDLERS" ] ||
	fail "$(count search catch) catch events for $HANDLERS handlers"
[ "$(count search rethrow)" -eq "$RETHROWS" ] ||
	fail "$(count search rethrow) rethrow events for $RETHROWS rethrows"
sed -n 's/.* throw: (0x[0-9a-f]*) obj=[0-9]* type=//p' "$TMP/search" | tr '\n' ' ' >"$TMP/types"
want=""
i=0
while [ $i -lt $N ]; do
	if [ $((i % 2)) -eq 0 ]; then want="$want\"St13runtime_error\" "; else want="$want\"8t5_error\" "; fi
	i=$((i + 1))
done
[ "$(cat "$TMP/types")" = "$want" ] || fail "thrown types: $(cat "$TMP/types"), want $want"
# every catch and rethrow is about the object last thrown
awk '
	/ throw: \(/ { for (i = 1; i <= NF; i++) if ($i ~ /^obj=/) obj = $i }
	/ (catch|rethrow): \(/ { for (i = 1; i <= NF; i++) if ($i ~ /^obj=/ && $i != obj) { print; bad = 1 } }
	END { exit bad }' "$TMP/search" >"$TMP/badobj" ||
	fail "a catch or rethrow carries another object than the throw before it: $(head -2 "$TMP/badobj")"
echo "ok: u:libstdcxx:*: $THROWS throws (types alternate), $HANDLERS catches, $RETHROWS rethrow"

# by library name, by path; a filter on the type string
run byname -e 'u:libstdc++:libstdcxx:throw type=+0(+8(arg2)):string' --filter 'type == "8t5_error"'
[ "$(count byname throw)" -eq $((N / 2)) ] || fail "by name, filtered: $(count byname throw) events"
grep ' throw: (' "$TMP/byname" | grep -v -q 'type="8t5_error"$' && fail "the filter let another type through"
run bypath -e "usdt:$(readlink -f "$LIBSTDCXX"):libstdcxx:thr*"
[ "$(count bypath throw)" -eq "$THROWS" ] || fail "by path: $(count bypath throw) events"
grep ' throw: (' "$TMP/bypath" | head -1 | grep -q -E 'arg1=[0-9]+ arg2=[0-9]+$' ||
	fail "by path: default arguments: $(grep ' throw: (' "$TMP/bypath" | head -1)"
echo "ok: by library name with a filter, by path with default arguments"

# a probe that is not there, an object that is not mapped
"$SONDE" trace -e 'u:libstdcxx:nosuch' -- "$TARGET" 1 >"$TMP/out" 2>"$TMP/err" &&
	fail "a missing probe was accepted"
grep -q 'no USDT probe libstdcxx:nosuch' "$TMP/err" || fail "missing probe: $(cat "$TMP/err")"
"$SONDE" trace -e 'u:libnosuch:libstdcxx:throw' -- "$TARGET" 1 >"$TMP/out" 2>"$TMP/err" &&
	fail "a missing object was accepted"
grep -q 'no object named libnosuch' "$TMP/err" || fail "missing object: $(cat "$TMP/err")"
"$SONDE" trace -e 'u:libstdcxx:throw x=arg3' -- "$TARGET" 1 >"$TMP/out" 2>"$TMP/err" &&
	fail "a third argument of throw was accepted"
grep -q 'libstdcxx:throw has 2 arguments' "$TMP/err" || fail "arg3: $(cat "$TMP/err")"
echo "ok: errors"
exit 0
