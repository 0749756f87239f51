#!/bin/sh
# SPDX-License-Identifier: MIT
# t7005: --follow (issue 7). t7_target forks a child every 100 ms (-f), or
# forks one that executes the program again (-x); each child calls
# t7_child(k) for k = 0…49 and exits.
#
#  1. attach --follow, forks: t7_child events come from several pids, none
#     the target's own, each pid's k counting 0, 1, 2… (its own events);
#  2. attach --follow, fork + exec: the programs executed are traced too
#     (their agent comes in by LD_PRELOAD and connects to the command);
#  3. attach without --follow: no child's event;
#  4. launch mode (sonde trace --follow -- CMD): the children's events too,
#     with their own pid although the parent wrote events before forking.
# After each attach the target's code equals its files and no sonde thread
# is left in it.
T=t7005
B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t7_target
SRC=${SONDE_SRC:-$(dirname "$0")/../..}
. "$SRC/tests/integration/t7common.inc"

TMP=$(mktemp -d /tmp/$T.XXXXXX) || exit 1
TPID=
SPID=
cleanup() {
	[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null
	[ -n "$TPID" ] && kill -KILL "$TPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
t7_need_ptrace

DEF='p:t7/child t7_child k=%di:s32'

start_target() {
	"$TARGET" -t 1 "$@" >"$TMP/target.out" 2>&1 &
	TPID=$!
	t7_wait_ready "$TMP/target.out" || fail "t7_target did not start"
}

stop_target() {
	kill -TERM $TPID
	wait $TPID
	TPID=
}

# trace_for SECONDS OUT ARGS...: sonde trace ARGS for SECONDS, then Ctrl-C
trace_for() {
	secs=$1
	out=$2
	shift 2
	"$SONDE" trace "$@" >"$out" 2>"$out.err" &
	SPID=$!
	sleep "$secs"
	kill -INT $SPID
	wait $SPID
	rc=$?
	SPID=
	[ $rc -eq 130 ] || bad "sonde trace $*: status $rc: $(cat "$out.err")"
}

# children OUT: the pids (other than the target's) with t7_child events, one a line
children() {
	sed -n 's/^ *[^ ]*-\([0-9]*\) .* child: .*/\1/p' "$1" | sort -u | grep -v "^$TPID\$"
}

# complete OUT: the children seen from their first call have k = 0, 1, 2… in order
complete() {
	awk '/ child: / {
		split($1, a, "-"); pid = a[length(a)]
		k = $NF; sub("k=", "", k)
		if (!(pid in next_k)) { if (k != 0) { skip[pid] = 1 } next_k[pid] = k }
		if (!(pid in skip) && k != next_k[pid]) { print "pid " pid ": k=" k ", expected " next_k[pid]; bad = 1 }
		next_k[pid] = k + 1
	} END { exit bad }' "$1"
}

clean_after() {
	n=0
	while cat /proc/$TPID/task/*/comm 2>/dev/null | grep -q '^sonde' && [ $n -lt 100 ]; do
		n=$((n + 1))
		sleep 0.05
	done
	cat /proc/$TPID/task/*/comm | grep -q '^sonde' && bad "$1: sonde threads remain"
	out=$(t7_code_equal $TPID) || bad "$1: the code differs from the files:
$out"
}

# ---- 1. attach --follow, forks --------------------------------------------------------------------
start_target -f
trace_for 2 "$TMP/1.out" -p $TPID --follow -e "$DEF"
nk=$(children "$TMP/1.out" | wc -l)
[ "$nk" -ge 5 ] || bad "1: events from $nk children in 2 s (a fork every 100 ms)"
grep -q "^ *t7_target-$TPID .* child: " "$TMP/1.out" && bad "1: t7_child events from the target itself"
msg=$(complete "$TMP/1.out") || bad "1: a child's events are not its own: $msg"
clean_after 1
stop_target

# ---- 2. attach --follow, fork + exec ----------------------------------------------------------------
start_target -x
# (each executed child loads libsonde and builds its symbol tables first: 3 s
# for 5 of ~30 leaves room for a busy machine; it once saw 4 in 2 s)
trace_for 3 "$TMP/2.out" -p $TPID --follow -e "$DEF"
nk=$(children "$TMP/2.out" | wc -l)
[ "$nk" -ge 5 ] || bad "2: events from $nk executed children in 3 s"
msg=$(complete "$TMP/2.out") || bad "2: $msg"
clean_after 2
stop_target

# ---- 3. attach without --follow ------------------------------------------------------------------------
start_target -f
trace_for 1 "$TMP/3.out" -p $TPID -e "$DEF" -e 'p:t7/work t7_work id=%di:s32'
grep -q ' work: ' "$TMP/3.out" || bad "3: no event of the target itself"
nk=$(children "$TMP/3.out" | wc -l)
[ "$nk" -eq 0 ] || bad "3: events from $nk children without --follow"
clean_after 3
stop_target

# ---- 4. launch mode ------------------------------------------------------------------------------------
"$SONDE" trace --follow -e "$DEF" -e 'p:t7/susp sigsuspend' -- "$TARGET" -t 1 -f >"$TMP/4.out" 2>"$TMP/4.err" &
SPID=$!
sleep 2
TPID=$(sed -n 1p "$TMP/4.out" | grep -x '[0-9]*')
[ -n "$TPID" ] || TPID=$(grep -m1 -x '[0-9]*' "$TMP/4.out")
[ -n "$TPID" ] && kill -TERM $TPID
LPID=$TPID
wait $SPID
rc=$?
SPID=
TPID=
[ $rc -eq 0 ] || bad "4: sonde trace --follow -- t7_target: status $rc: $(cat "$TMP/4.err")"
nk=$(sed -n 's/^ *[^ ]*-\([0-9]*\) .* child: .*/\1/p' "$TMP/4.out" | sort -u | wc -l)
[ "$nk" -ge 5 ] || bad "4: events from $nk children in 2 s"
# the main thread writes an event (sigsuspend) before each fork: a child's
# events must still carry the child's own id, not its parent's
grep -q "^ *t7_target-$LPID .* susp: " "$TMP/4.out" || bad "4: no sigsuspend event of the target"
grep -q "^ *t7_target-$LPID .* child: " "$TMP/4.out" && bad "4: children's events carry the parent's pid $LPID"

[ $FAILS -eq 0 ] || exit 1
echo "$T: ok"
