#!/bin/sh
# SPDX-License-Identifier: MIT
# t5001-usdt-list: sonde list usdt, against readelf --notes.
#
# Oracle: every NT_STAPSDT note readelf prints (provider, name, location,
# base, semaphore, argument string), in order: exactly the lines sonde
# prints after the OBJECT column, for Debian's /usr/bin/python3, libstdc++,
# the t5_usdt target (every operand kind), and files without notes. The
# file offsets in `--defs` lines, against readelf's program headers. Then a
# running process (-p PID: every mapped object's probes, by its mapped
# path), a PROVIDER:NAME glob, and the errors.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t5_usdt
CXX_TARGET=$B/tests/targets/t5_throw
TMP=$(mktemp -d /tmp/sonde-t5001l.XXXXXX) || exit 1
PID=
cleanup() {
	[ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "t5001-usdt-list: FAIL: $*" >&2
	exit 1
}
skip() {
	echo "t5001-usdt-list: SKIP: $*"
	exit 77
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
command -v readelf >/dev/null 2>&1 || skip "readelf is not installed"

# oracle FILE: "provider name location base semaphore [args]" per note, in order
oracle() {
	readelf -nW "$1" | awk '
		/Provider: / { p = $0; sub(/.*Provider: /, "", p); sub(/[ \t].*/, "", p); prov = p }
		/^ *Name: / { name = $2 }
		/^ *Location: / { loc = $2; base = $4; sem = $6; sub(/,$/, "", loc); sub(/,$/, "", base) }
		/^ *Arguments:/ {
			a = $0; sub(/^ *Arguments: ?/, "", a)
			print prov, name, loc, base, sem (a != "" ? " " a : "")
		}'
}

# compare FILE [WANT_AT_LEAST]: sonde's probes of FILE are readelf's
compare() {
	"$SONDE" list usdt "$1" >"$TMP/got" 2>"$TMP/err" ||
		fail "sonde list usdt $1 failed: $(cat "$TMP/err")"
	[ -s "$TMP/err" ] && fail "sonde list usdt $1 wrote to stderr: $(cat "$TMP/err")"
	[ "$(head -1 "$TMP/got")" = "# OBJECT PROVIDER NAME LOCATION BASE SEMAPHORE ARGUMENTS" ] ||
		fail "$1: no header line: $(head -1 "$TMP/got")"
	sed 1d "$TMP/got" | awk -v f="$1" '$1 != f { print "bad object column: " $0; exit 1 }' ||
		fail "$1: the OBJECT column is not the file"
	sed 1d "$TMP/got" | cut -d' ' -f2- >"$TMP/got.probes"
	oracle "$1" >"$TMP/want"
	[ "$(wc -l <"$TMP/want")" -ge "${2:-0}" ] ||
		fail "readelf shows $(wc -l <"$TMP/want") probes in $1, expected at least $2"
	if ! cmp -s "$TMP/got.probes" "$TMP/want"; then
		echo "--- readelf, +++ sonde:" >&2
		diff -u "$TMP/want" "$TMP/got.probes" | sed -n '3,30p' >&2
		fail "the USDT probes of $1 differ from readelf's"
	fi
	echo "ok: $1: $(wc -l <"$TMP/want") probes match readelf --notes"
}

# file_offset ADDR [X]: the file offset of link-time ADDR through the PT_LOAD
# holding it (an executable one with X), from $TMP/loads
file_offset() {
	while read -r off vaddr filesz flags; do
		[ -n "${2:-}" ] && case $flags in *E*) ;; *) continue ;; esac
		if [ $(($1)) -ge $((vaddr)) ] && [ $(($1)) -lt $((vaddr + filesz)) ]; then
			printf '0x%x\n' $(($1 - vaddr + off))
			return 0
		fi
	done <"$TMP/loads"
	return 1
}

# defs FILE: each --defs line's offsets are the file offsets of the note's addresses
defs() {
	"$SONDE" list usdt --defs "$1" >"$TMP/defs" 2>"$TMP/err" ||
		fail "sonde list usdt --defs $1 failed: $(cat "$TMP/err")"
	# LOAD offset vaddr paddr filesz memsz FLAGS... align: flags may be two words ("R E")
	readelf -lW "$1" | awk '$1 == "LOAD" { f = ""; for (i = 7; i < NF; i++) f = f $i; print $2, $3, $5, f }' \
		>"$TMP/loads"
	oracle "$1" >"$TMP/want"
	[ "$(wc -l <"$TMP/defs")" -eq "$(wc -l <"$TMP/want")" ] ||
		fail "--defs of $1: $(wc -l <"$TMP/defs") lines for $(wc -l <"$TMP/want") probes"
	while read -r prov name loc base sem args; do
		read -r line <&3
		want="p:sdt_$prov/$name $1:$(file_offset "$loc" x)"
		[ $((sem)) -ne 0 ] && want="$want($(file_offset "$sem"))"
		case $line in
		"$want" | "$want "*) ;;
		*) fail "--defs of $1: $prov:$name: '$line', want '$want …'" ;;
		esac
		nargs=$(printf '%s\n' "$args" | wc -w)
		got_args=$(printf '%s\n' "$line" | tr ' ' '\n' | grep -c '^arg[0-9]*=')
		[ "$nargs" -eq "$got_args" ] || fail "--defs of $1: $prov:$name: $got_args args, want $nargs"
	done <"$TMP/want" 3<"$TMP/defs"
	echo "ok: $1: --defs offsets match the program headers"
}

[ -x "$TARGET" ] || fail "$TARGET is not built"
oracle "$TARGET" | grep -q . || skip "$TARGET has no USDT probes (no <sys/sdt.h> at build time?)"
compare "$TARGET" 5
defs "$TARGET"
compare "$B/tests/test_usdt" 3

PY=/usr/bin/python3
if [ -e "$PY" ] && oracle "$PY" | grep -q '^python '; then
	compare "$PY" 8
	defs "$PY"
	# a glob
	"$SONDE" list usdt "$PY" 'python:function__*' >"$TMP/glob" || fail "a glob failed"
	[ "$(sed 1d "$TMP/glob" | cut -d' ' -f2,3 | tr '\n' ' ')" = \
		"python function__entry python function__return " ] ||
		fail "glob python:function__* gave: $(cat "$TMP/glob")"
	"$SONDE" list usdt "$PY" '*:gc__*' | sed 1d | cut -d' ' -f3 | sort | tr '\n' ' ' >"$TMP/glob2"
	[ "$(cat "$TMP/glob2")" = "gc__done gc__start " ] || fail "glob *:gc__* gave: $(cat "$TMP/glob2")"
	echo "ok: globs"
else
	echo "t5001-usdt-list: note: $PY has no python USDT probes here; not compared"
fi

LIBSTDCXX=$(ldd "$CXX_TARGET" 2>/dev/null | awk '/libstdc\+\+/ { print $3; exit }')
[ -n "$LIBSTDCXX" ] || fail "cannot find the libstdc++ of $CXX_TARGET"
LIBSTDCXX=$(readlink -f "$LIBSTDCXX")
compare "$LIBSTDCXX"
defs "$LIBSTDCXX"
LIBC=$(ldd "$CXX_TARGET" 2>/dev/null | awk '/libc\.so/ { print $3; exit }')
[ -n "$LIBC" ] && compare "$(readlink -f "$LIBC")"

# a running process: its executable, then its libraries, by their mapped paths
"$CXX_TARGET" loop >/dev/null &
PID=$!
i=0
until grep -q 'libstdc++' "/proc/$PID/maps" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 100 ] && fail "t5_throw did not start"
	sleep 0.05
done
"$SONDE" list usdt -p "$PID" >"$TMP/pid" 2>"$TMP/err" ||
	fail "sonde list usdt -p $PID failed: $(cat "$TMP/err")"
MAPPED=$(awk '$6 ~ /libstdc\+\+/ { print $6; exit }' "/proc/$PID/maps")
grep " libstdcxx " "$TMP/pid" | cut -d' ' -f1 | sort -u >"$TMP/objs"
[ "$(cat "$TMP/objs")" = "$MAPPED" ] ||
	fail "-p: libstdcxx probes attributed to '$(cat "$TMP/objs")', not $MAPPED"
grep " libstdcxx " "$TMP/pid" | cut -d' ' -f2- >"$TMP/pid.probes"
oracle "$LIBSTDCXX" | grep '^libstdcxx ' >"$TMP/want"
cmp -s "$TMP/pid.probes" "$TMP/want" || fail "-p: libstdc++'s probes differ from readelf's"
"$SONDE" list usdt -p "$PID" 'libstdcxx:throw' | sed 1d | cut -d' ' -f2,3 >"$TMP/pidglob"
[ "$(cat "$TMP/pidglob")" = "libstdcxx throw" ] || fail "-p with a glob: $(cat "$TMP/pidglob")"
kill "$PID"
wait "$PID" 2>/dev/null
PID=
echo "ok: -p PID: $(sed 1d "$TMP/pid" | wc -l) probes, libstdc++'s as readelf shows them"

# errors: clear, and a failing exit status
"$SONDE" list usdt /nonexistent >"$TMP/out" 2>"$TMP/err" && fail "/nonexistent succeeded"
grep -qx 'sonde: list: /nonexistent: No such file or directory' "$TMP/err" ||
	fail "unexpected error for /nonexistent: $(cat "$TMP/err")"
"$SONDE" list usdt /etc/passwd >"$TMP/out" 2>"$TMP/err" && fail "/etc/passwd succeeded"
grep -q 'not an ELF file' "$TMP/err" || fail "unexpected error for /etc/passwd: $(cat "$TMP/err")"
"$SONDE" list usdt >"$TMP/out" 2>"$TMP/err" && fail "no file succeeded"
grep -q 'give a BINARY or -p PID' "$TMP/err" || fail "unexpected error without a file"
"$SONDE" list usdt -p notapid >"$TMP/out" 2>"$TMP/err" && fail "-p notapid succeeded"
grep -q "'notapid' is not a process id" "$TMP/err" || fail "unexpected error for -p notapid"
"$SONDE" list usdt --help >"$TMP/out" 2>&1 || fail "--help failed"
grep -q '^usage: sonde list usdt' "$TMP/out" || fail "--help printed no usage"
grep -q 'OBJECT PROVIDER NAME LOCATION BASE SEMAPHORE ARGUMENTS' "$TMP/out" ||
	fail "--help does not document the format"
echo "ok: errors"
exit 0
