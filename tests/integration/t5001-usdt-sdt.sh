#!/bin/sh
# SPDX-License-Identifier: MIT
# t5001-usdt-sdt: a <sys/sdt.h> program's probes, every operand kind, their
# semaphores.
#
# t5_usdt's probes pass arguments in registers of four widths, a stack slot,
# constants, scaled-index array elements, %rip-relative globals (readelf
# --notes must show each kind, or the test proves nothing). Oracle: the
# program logs, after firing each probe, the line its event must print after
# "(0x…) " with sonde's default fields; it logs the semaphore-guarded probe
# only when it fired (its semaphore was raised).
#
#  1. u:PATH:t5:* on `t5_usdt run 4`: every event equals the program's line,
#     in order, the guarded probe included;
#  2. named arguments (a string through a pointer argument, a hex
#     conversion) and a filter on a signed field; the guarded probe is not
#     traced: the program never sees its semaphore raised;
#  3. `t5_usdt loop noint` traced on u:t5:guarded only: the semaphore reads 1
#     in /proc/PID/mem while traced; after Ctrl-C (sonde exits 130) it reads
#     0, the probe's nop is back, the program goes on without firing it;
#     then sonde trace -p PID attaches to the same program (its agent stays)
#     and detaches again (SIGTERM) leaving the semaphore at 0.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t5_usdt
TMP=$(mktemp -d /tmp/sonde-t5001s.XXXXXX) || exit 1
MARK=t5001-$$-mark
SPID=
TPID=
cleanup() {
	[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null
	[ -n "$TPID" ] && kill -KILL "$TPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "t5001-usdt-sdt: FAIL: $*" >&2
	exit 1
}
skip() {
	echo "t5001-usdt-sdt: SKIP: $*"
	exit 77
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
for t in readelf setsid dd od; do
	command -v $t >/dev/null 2>&1 || skip "$t is not installed"
done
readelf -n "$TARGET" | grep -q 'Provider: t5' ||
	skip "$TARGET has no USDT probes (built without <sys/sdt.h>: install systemtap-sdt-dev)"

# the operand kinds the compiler chose
readelf -n "$TARGET" | sed -n 's/^ *Arguments: //p' >"$TMP/specs"
for kind in '%e[a-z][a-z] ' '@%[a-d]l' '@-\?[0-9]*(%r[a-z0-9]*)' '@\$-\?[0-9]' \
	'(%r[a-z0-9]*,%r[a-z0-9]*,8)' '[0-9]\+(%r[a-z0-9]*,%r[a-z0-9]*,8)' '@[a-z]*(%rip)' \
	'@[0-9]*+[a-z]*(%rip)'; do
	grep -q -e "$kind" "$TMP/specs" ||
		fail "no argument of the kind /$kind/ in $TARGET's notes: $(tr '\n' '|' <"$TMP/specs")"
done
echo "ok: the notes have registers, memory, constants, scaled indexes, %rip-relative globals"

# events NAME: the event lines of a trace, as "EVENT: FIELDS"
events() {
	sed -n 's/^.* \([a-z]*\): (0x[0-9a-f]*) /\1: /p' "$TMP/$1"
}

# 1. every probe, default fields
T5_OUT=$TMP/log1 "$SONDE" trace -e "u:$TARGET:t5:*" -- "$TARGET" run 4 >"$TMP/trace1" 2>"$TMP/err" ||
	fail "sonde trace failed: $(cat "$TMP/err")"
[ -s "$TMP/err" ] && fail "sonde said: $(head -3 "$TMP/err")"
grep -v -e '^sem=' -e '^round ' "$TMP/log1" >"$TMP/want1"
events trace1 >"$TMP/got1"
[ "$(grep -c '^guarded: ' "$TMP/want1")" -eq 4 ] ||
	fail "the guarded probe did not fire in every round: its semaphore was not raised"
if ! cmp -s "$TMP/got1" "$TMP/want1"; then
	echo "--- the program, +++ sonde:" >&2
	diff -u "$TMP/want1" "$TMP/got1" >&2
	fail "the events differ from what the program passed"
fi
echo "ok: $(wc -l <"$TMP/got1") events of 5 probes carry the values the program passed"

# 2. named arguments and a filter; guarded is not traced
T5_OUT=$TMP/log2 "$SONDE" trace -e 'u:t5:reg a=arg1 s=arg5:string c=arg3:x8' --filter 'a < -6' \
	-e 'usdt:t5:glob name=arg3:string g=arg1 e=arg4' -- "$TARGET" run 4 >"$TMP/trace2" 2>"$TMP/err" ||
	fail "sonde trace (named) failed: $(cat "$TMP/err")"
events trace2 >"$TMP/got2"
cat >"$TMP/want2" <<'EOF'
glob: name="hello" g=77 e=3000
glob: name="hello" g=78 e=3001
reg: a=-9 s="str2" c=0xca
glob: name="hello" g=79 e=3002
reg: a=-12 s="str3" c=0xcb
glob: name="hello" g=80 e=3003
EOF
if ! cmp -s "$TMP/got2" "$TMP/want2"; then
	echo "--- expected, +++ sonde:" >&2
	diff -u "$TMP/want2" "$TMP/got2" >&2
	fail "named arguments"
fi
grep -q '^guarded' "$TMP/log2" && fail "the guarded probe fired while nobody traced it"
echo "ok: named arguments (a string, hex), a filter; an untraced semaphore stays 0"

# 3. the semaphore in memory, Ctrl-C, attach by pid
SEM=
sem() {
	dd if=/proc/"$TPID"/mem bs=2 count=1 skip=$((SEM)) iflag=skip_bytes status=none 2>/dev/null |
		od -An -tu2 | tr -d ' '
}
byte_at() {
	dd if=/proc/"$TPID"/mem bs=1 count=1 skip=$(($1)) iflag=skip_bytes status=none 2>/dev/null |
		od -An -tx1 | tr -d ' '
}
guarded() {
	grep -c '^guarded' "$TMP/log3" 2>/dev/null || echo 0
}
rounds() {
	grep -c '^round' "$TMP/log3" 2>/dev/null || echo 0
}
# wait_for CMD N: until CMD prints at least N (10 s at most)
wait_for() {
	i=0
	while [ "$($1)" -lt "$2" ]; do
		i=$((i + 1))
		[ $i -gt 200 ] && return 1
		sleep 0.05
	done
}
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	case $(ps -o stat= -p "$1") in
	Z*) return 1 ;;
	esac
}
# stop_sonde SIG: SIGNAL sonde (INT: its process group, as a terminal's Ctrl-C), wait for it
stop_sonde() {
	if [ "$1" = INT ]; then kill -INT "-$SPID"; else kill "-$1" "$SPID"; fi
	i=0
	while alive "$SPID"; do
		i=$((i + 1))
		[ $i -gt 200 ] && fail "sonde did not return within 10 s of SIG$1"
		sleep 0.05
	done
	wait "$SPID"
	rc=$?
	SPID=
}

T5_OUT=$TMP/log3 setsid "$SONDE" trace -e 'u:t5:guarded' -- "$TARGET" loop noint "$MARK" \
	>"$TMP/trace3" 2>"$TMP/err3" &
SPID=$!
wait_for guarded 3 || fail "the guarded probe does not fire under sonde: $(tail -3 "$TMP/err3")"
for d in /proc/[0-9]*; do
	[ "$(cat "$d/comm" 2>/dev/null)" = t5_usdt ] || continue
	tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q -F -- " $MARK" && TPID=${d#/proc/}
done
[ -n "$TPID" ] || fail "cannot find the target's pid"
SEM=$(sed -n 's/^sem=//p' "$TMP/log3")
[ -n "$SEM" ] || fail "the target logged no semaphore address"
[ "$(sem)" = 1 ] || fail "while traced, the semaphore at $SEM reads '$(sem)', not 1"
SITE=$(sed -n 's/.* guarded: (\(0x[0-9a-f]*\)) .*/\1/p' "$TMP/trace3" | head -1)
[ -n "$SITE" ] || fail "no guarded event printed: $(head -3 "$TMP/trace3")"

stop_sonde INT
[ $rc -eq 130 ] || fail "sonde exited $rc after Ctrl-C, not 130"
[ -s "$TMP/err3" ] && fail "sonde said: $(head -3 "$TMP/err3")"
[ "$(sem)" = 0 ] || fail "after Ctrl-C the semaphore reads '$(sem)', not 0"
[ "$(byte_at "$SITE")" = 90 ] || fail "after Ctrl-C the probe site $SITE holds $(byte_at "$SITE"), not a nop"
n=$(guarded)
r=$(rounds)
wait_for rounds $((r + 10)) || fail "the target stopped after sonde left"
[ "$(guarded)" -eq "$n" ] || fail "the guarded probe still fires after sonde left"
alive "$TPID" || fail "the target died"
echo "ok: the semaphore is 1 while traced, 0 after Ctrl-C; the program goes on untouched"

# the agent stays: attach by pid, then SIGTERM
setsid "$SONDE" trace -p "$TPID" -e 'u:t5:guarded n=arg1' >"$TMP/trace4" 2>"$TMP/err4" &
SPID=$!
wait_for guarded $((n + 3)) || fail "-p $TPID: the guarded probe does not fire: $(tail -3 "$TMP/err4")"
[ "$(sem)" = 1 ] || fail "-p: while traced, the semaphore reads '$(sem)', not 1"
i=0
until grep -q ' guarded: (0x[0-9a-f]*) n=[0-9]' "$TMP/trace4"; do
	i=$((i + 1))
	[ $i -gt 200 ] && fail "-p: no event printed: $(head -3 "$TMP/trace4")"
	sleep 0.05
done
stop_sonde TERM
[ "$(sem)" = 0 ] || fail "after sonde -p left, the semaphore reads '$(sem)', not 0"
[ "$(byte_at "$SITE")" = 90 ] || fail "after sonde -p left, the probe site is not a nop"
alive "$TPID" || fail "the target died"
kill -KILL "$TPID"
TPID=
echo "ok: sonde trace -p PID: raised while attached, 0 after"
exit 0
