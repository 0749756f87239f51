#!/bin/sh
# SPDX-License-Identifier: MIT
# t4001: sonde list functions, against readelf's symbol tables.
#
# Oracle: the FUNC and IFUNC symbols with a value, a size and a section
# (readelf -sW), version suffixes removed, one line per (name, address):
# exactly the names sonde prints for a binary. Then a running process
# (-p PID) and the error cases.

SONDE=${SONDE_BUILD:?SONDE_BUILD is not set}/bin/sonde
TMP=$(mktemp -d /tmp/sonde-t4001.XXXXXX) || exit 1
SLEEP_PID=
cleanup() {
	if [ -n "$SLEEP_PID" ]; then
		kill "$SLEEP_PID" 2>/dev/null
		wait "$SLEEP_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "t4001: FAIL: $*" >&2
	exit 1
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
command -v readelf >/dev/null 2>&1 || { echo "t4001: SKIP: readelf is not installed"; exit 77; }

oracle() {
	readelf -sW "$1" | awk '
		NF >= 8 && $1 ~ /^[0-9]+:$/ && ($4 == "FUNC" || $4 == "IFUNC") &&
		$7 != "UND" && $3 != "0" && $2 !~ /^0+$/ {
			name = $8; sub(/@.*/, "", name)
			if (name != "") print name, $2
		}' | sort -u | cut -d' ' -f1 | LC_ALL=C sort
}

# compare_binary FILE: sonde's list for FILE is readelf's
compare_binary() {
	"$SONDE" list functions "$1" >"$TMP/got" 2>"$TMP/err" ||
		fail "sonde list functions $1 failed: $(cat "$TMP/err")"
	[ -s "$TMP/err" ] && fail "sonde list functions $1 wrote to stderr: $(cat "$TMP/err")"
	LC_ALL=C sort "$TMP/got" >"$TMP/got.sorted"
	oracle "$1" >"$TMP/want"
	[ -s "$TMP/want" ] || fail "readelf lists no functions in $1"
	if ! cmp -s "$TMP/got.sorted" "$TMP/want"; then
		echo "--- readelf, +++ sonde (first differences):" >&2
		diff -u "$TMP/want" "$TMP/got.sorted" | sed -n '3,23p' >&2
		fail "functions of $1 differ from readelf's"
	fi
	echo "ok: $1: $(wc -l <"$TMP/want") functions match readelf"
}

# an unstripped PIE with local symbols: sonde itself
compare_binary "$SONDE"
# a stripped binary, only .dynsym (non-PIE on Debian)
[ -e /usr/bin/python3 ] && compare_binary /usr/bin/python3

# a running process: the executable's functions, then its libraries'
sleep 30 &
SLEEP_PID=$!
SLEEP_EXE=$(command -v sleep)
i=0
# wait until the child has become sleep and its libraries are mapped
while ! grep -q 'libc\.so' "/proc/$SLEEP_PID/maps" 2>/dev/null ||
	[ "$(readlink -f "/proc/$SLEEP_PID/exe")" != "$(readlink -f "$SLEEP_EXE")" ]; do
	i=$((i + 1))
	[ $i -gt 100 ] && fail "sleep did not start"
	sleep 0.05
done

LIBC=$(awk '$6 ~ /\/libc\.so/ { print $6; exit }' "/proc/$SLEEP_PID/maps")
[ -n "$LIBC" ] && compare_binary "$LIBC"

"$SONDE" list functions -p "$SLEEP_PID" >"$TMP/pid" 2>"$TMP/err" ||
	fail "sonde list functions -p $SLEEP_PID failed: $(cat "$TMP/err")"
grep -qx 'malloc \[libc\.so\.6\]' "$TMP/pid" ||
	fail "no 'malloc [libc.so.6]' in the functions of pid $SLEEP_PID"
if [ -n "$LIBC" ]; then
	n_libc=$(grep -c ' \[libc\.so\.6\]$' "$TMP/pid")
	[ "$n_libc" -eq "$(oracle "$LIBC" | wc -l)" ] ||
		fail "pid $SLEEP_PID: $n_libc libc functions, readelf has $(oracle "$LIBC" | wc -l)"
fi
# load order: libc before the dynamic loader (last in the loader's own list)
awk '/\[libc\.so\.6\]$/ { if (ld) bad = 1; libc = 1 } /\[ld-linux/ { ld = 1 }
	END { exit bad || !libc }' "$TMP/pid" ||
	fail "pid $SLEEP_PID: libc's functions do not all come before the loader's"
echo "ok: -p $SLEEP_PID: $(wc -l <"$TMP/pid") functions, malloc [libc.so.6] among them"

# a glob
"$SONDE" list functions -p "$SLEEP_PID" 'mall*' >"$TMP/glob" || fail "list with a glob failed"
grep -qx 'malloc \[libc\.so\.6\]' "$TMP/glob" || fail "glob 'mall*' lost malloc"
grep -v '^mall' "$TMP/glob" && fail "glob 'mall*' let other names through"
echo "ok: glob"

# errors: clear, and a failing exit status
"$SONDE" list functions /nonexistent >"$TMP/out" 2>"$TMP/err" && fail "/nonexistent succeeded"
grep -qx 'sonde: list: /nonexistent: No such file or directory' "$TMP/err" ||
	fail "unexpected error for /nonexistent: $(cat "$TMP/err")"
"$SONDE" list functions /etc/passwd >"$TMP/out" 2>"$TMP/err" && fail "/etc/passwd succeeded"
grep -q 'not an ELF file' "$TMP/err" || fail "unexpected error for /etc/passwd: $(cat "$TMP/err")"
"$SONDE" list nosuchkind >"$TMP/out" 2>"$TMP/err" && fail "an unknown kind succeeded"
grep -q "unknown kind 'nosuchkind'.*functions" "$TMP/err" ||
	fail "unexpected error for an unknown kind: $(cat "$TMP/err")"
"$SONDE" list functions -p notapid >"$TMP/out" 2>"$TMP/err" && fail "-p notapid succeeded"
grep -q "'notapid' is not a process id" "$TMP/err" || fail "unexpected error for -p notapid"
"$SONDE" list functions --help >"$TMP/out" 2>&1 || fail "--help failed"
grep -q '^usage: sonde list functions' "$TMP/out" || fail "--help printed no usage"
echo "ok: errors"
exit 0
