#!/bin/sh
# SPDX-License-Identifier: MIT
# t5001-usdt-python: Debian's /usr/bin/python3 traced through its USDT
# probes, python:function__entry and python:function__return.
#
# Python fires them only while their semaphores are raised (sonde raises
# them while the events are enabled) and, in 3.11, only where the
# interpreter checks: every function it enters while a profile function is
# set (the script sets one; without it, 3.11 reports entries from generator
# throws only). Oracle: the script itself, which knows the functions it
# calls, their file and the lines of their `def`s:
#   main 20, Thing.__init__ 13, Thing.method 16, middle 8, leaf 4
# (and returns, which 3.11 reports always: the class body's, then each of
# those functions' return statement, the module's last line)
# with file names as python reports them, the script's output unchanged,
# the events at the probes' addresses (readelf's Location, for a non-PIE
# python), the default arguments (arg3 is the line, an s32) usable in a
# filter, and function__return's lines (the return statements).

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/sonde-t5001p.XXXXXX) || exit 1
cleanup() {
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "t5001-usdt-python: FAIL: $*" >&2
	exit 1
}
skip() {
	echo "t5001-usdt-python: SKIP: $*"
	exit 77
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$PY" ] || skip "$PY is not installed"
# the script's output shares a file with sonde's lines: written whole at
# its exit, not a piece at a time (PYTHONUNBUFFERED in the environment
# would let a line of sonde's land between "result" and " 8")
unset PYTHONUNBUFFERED
command -v readelf >/dev/null 2>&1 || skip "readelf is not installed"
readelf -n "$PY" | grep -q 'Name: function__entry' ||
	skip "$PY carries no python:function__entry probe (not Debian's build?)"

cat >"$TMP/script.py" <<'EOF'
import sys


def leaf(n):
    return n + 1


def middle(n):
    return leaf(n) * 2


class Thing:
    def __init__(self, v):
        self.v = v

    def method(self):
        return middle(self.v)


def main():
    t = Thing(3)
    return t.method()


sys.setprofile(lambda frame, event, arg: None)
print("result", main())
sys.setprofile(None)
EOF

"$PY" -S "$TMP/script.py" >"$TMP/plain.out" 2>&1 || fail "the script fails without sonde: $(cat "$TMP/plain.out")"

# the probes' addresses: in a non-PIE python they are the runtime ones
PIE=$(readelf -hW "$PY" | awk '/Type:/ { print $2 }')
loc() {
	readelf -n "$PY" | awk -v n="$1" '/Name: / { name = $2 } /Location: / && name == n { sub(/,$/, "", $2); print $2 }'
}
ENTRY_AT=$(printf '%x' $(($(loc function__entry))))
RETURN_AT=$(printf '%x' $(($(loc function__return))))

# 1. named arguments: strings and the line
cd "$TMP" || fail "cd $TMP"
"$SONDE" trace -e 'u:python:function__entry file=arg1:string fn=arg2:string line=arg3' \
	--filter 'file ~ "*/script.py"' \
	-e 'usdt:python:function__return file=arg1:string fn=arg2:string line=arg3' \
	--filter 'file ~ "*/script.py" && fn != "<lambda>"' \
	-- "$PY" -S "$TMP/script.py" >"$TMP/trace" 2>"$TMP/err" ||
	fail "sonde trace failed ($?): $(cat "$TMP/err")"
[ -s "$TMP/err" ] && fail "sonde said: $(head -3 "$TMP/err")"
grep -v 'function__' "$TMP/trace" >"$TMP/prog.out"
cmp -s "$TMP/prog.out" "$TMP/plain.out" ||
	fail "the script's output changed under sonde: $(cat "$TMP/prog.out")"

F="$TMP/script.py"
cat >"$TMP/want" <<EOF
function__return: ($RETURN_AT) file="$F" fn="Thing" line=16
function__entry: ($ENTRY_AT) file="$F" fn="main" line=20
function__entry: ($ENTRY_AT) file="$F" fn="__init__" line=13
function__return: ($RETURN_AT) file="$F" fn="__init__" line=14
function__entry: ($ENTRY_AT) file="$F" fn="method" line=16
function__entry: ($ENTRY_AT) file="$F" fn="middle" line=8
function__entry: ($ENTRY_AT) file="$F" fn="leaf" line=4
function__return: ($RETURN_AT) file="$F" fn="leaf" line=5
function__return: ($RETURN_AT) file="$F" fn="middle" line=9
function__return: ($RETURN_AT) file="$F" fn="method" line=17
function__return: ($RETURN_AT) file="$F" fn="main" line=22
function__return: ($RETURN_AT) file="$F" fn="<module>" line=27
EOF
grep 'function__' "$TMP/trace" | sed 's/^.*: \(function__[a-z]*: \)/\1/' >"$TMP/got"
if [ "$PIE" != EXEC ]; then
	# a PIE python: addresses are the load address's business, not the note's
	sed -i 's/^\(function__[a-z]*: \)(0x[0-9a-f]*)/\1(ADDR)/' "$TMP/got" "$TMP/want"
else
	sed -i 's/(\([0-9a-f]*\))/(0x\1)/' "$TMP/want"
fi
if ! cmp -s "$TMP/got" "$TMP/want"; then
	echo "--- expected, +++ sonde:" >&2
	diff -u "$TMP/want" "$TMP/got" >&2
	fail "the function events differ from the script's calls"
fi
echo "ok: function__entry/return report the script's calls, files and lines"

# 2. the default arguments: arg1..arg3 (u64, u64, s32), in a filter (the
# script's functions are the only ones entered under the profile function,
# besides generators of python's startup code, far down their files)
"$SONDE" trace -e 'u:python:function__entry' --filter 'arg3 < 100' \
	-- "$PY" -S "$TMP/script.py" >"$TMP/trace2" 2>"$TMP/err" ||
	fail "sonde trace (default args) failed: $(cat "$TMP/err")"
grep 'function__entry' "$TMP/trace2" | sed 's/^.*) //' | awk '{ print $3 }' | tr '\n' ' ' >"$TMP/lines"
[ "$(cat "$TMP/lines")" = "arg3=20 arg3=13 arg3=16 arg3=8 arg3=4 " ] ||
	fail "default args with a filter: got '$(cat "$TMP/lines")': $(head -3 "$TMP/trace2")"
grep 'function__entry' "$TMP/trace2" | grep -q -E ' arg1=[0-9]+ arg2=[0-9]+ arg3=8$' ||
	fail "default args: not arg1=<u64> arg2=<u64> arg3=<s32>: $(head -1 "$TMP/trace2")"
echo "ok: default arguments arg1..arg3, filtered on arg3"

# 3. only what is traced fires: function__return alone (its semaphore), not
# function__entry
"$SONDE" trace -e 'u:python:function__return file=arg1:string line=arg3' \
	--filter 'file ~ "*/script.py" && line == 5' \
	-- "$PY" -S "$TMP/script.py" >"$TMP/trace3" 2>"$TMP/err" ||
	fail "sonde trace (return only) failed: $(cat "$TMP/err")"
[ "$(grep -c ' function__return: ' "$TMP/trace3")" -eq 1 ] ||
	fail "function__return of leaf(): $(grep -c function__ "$TMP/trace3") events"
grep -q 'function__entry' "$TMP/trace3" && fail "function__entry fired without being traced"
echo "ok: only the traced probe fires"
exit 0
