#!/bin/sh
# SPDX-License-Identifier: MIT
# t7001: attach to a running multi-threaded process, trace a function with
# its arguments, detach, and leave it exactly as it was (issue 7).
#
#  1. t7_target (4 worker threads calling t7_work(id, n, tag), the main one
#     in sigsuspend) runs on its own; `sonde trace -p PID -e 'p:… t7_work
#     id=%di n=%si tag=+0(%dx):string'` loads the agent with ptrace and
#     prints events of every worker, with its tid and arguments; Ctrl-C
#     detaches: status 130, no sonde thread left in the process, its agent
#     socket gone, the code of every object it maps equal to the file on
#     disk (/proc/PID/mem against the file), and it runs on.
#  2. Attached again, the sonde command is killed (SIGKILL): the agent
#     notices its socket close and leaves by itself, the same way.
#  3. `sonde ctl PID` attaches an agent that stays after ctl ends; `sonde
#     detach PID` makes it leave, the same way.
#  4. The target ends normally (SIGTERM, status 0).
T=t7001
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
	[ -n "${TPID2:-}" ] && kill -KILL "$TPID2" 2>/dev/null
	[ -n "${TPID3:-}" ] && kill -KILL "$TPID3" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
t7_need_ptrace

"$TARGET" -t 4 -o "$TMP/count" >"$TMP/target.out" 2>&1 &
TPID=$!
t7_wait_ready "$TMP/target.out" || fail "t7_target did not start"

# sonde_threads: threads of the target that are sonde's
sonde_threads() {
	cat /proc/$TPID/task/*/comm 2>/dev/null | grep -c '^sonde' || true
}

# left_clean WHAT: the target shows nothing of sonde but idle mapped code
left_clean() {
	n=0
	while [ "$(sonde_threads)" -ne 0 ] && [ $n -lt 100 ]; do
		n=$((n + 1))
		sleep 0.05
	done
	[ "$(sonde_threads)" -eq 0 ] || bad "$1: sonde threads remain: $(cat /proc/$TPID/task/*/comm | grep sonde | tr '\n' ' ')"
	for d in "${XDG_RUNTIME_DIR:-/nonexistent}/sonde" "/tmp/sonde-$(id -u)"; do
		[ -e "$d/$TPID.sock" ] && bad "$1: the agent's socket $d/$TPID.sock remains"
	done
	out=$(t7_code_equal $TPID) || bad "$1: the code differs from the files:
$out"
	kill -0 $TPID 2>/dev/null || fail "$1: the target died"
}

# wait_lines FILE N: FILE has N lines (10 s at most)
wait_lines() {
	n=0
	while [ "$( { wc -l <"$1"; } 2>/dev/null || echo 0)" -lt "$2" ]; do
		n=$((n + 1))
		[ $n -gt 200 ] && return 1
		sleep 0.05
	done
}

DEF='p:t7/work t7_work id=%di:s32 n=%si:s64 tag=+0(%dx):string'

# ---- 1. trace -p, Ctrl-C ----------------------------------------------------------------
"$SONDE" trace -p $TPID -e "$DEF" >"$TMP/trace.out" 2>"$TMP/trace.err" &
SPID=$!
wait_lines "$TMP/trace.out" 2000 || bad "1: fewer than 2000 events in 10 s: $(cat "$TMP/trace.err")"
sleep 1
kill -INT $SPID
wait $SPID
rc=$?
SPID=
[ $rc -eq 130 ] || bad "1: sonde trace -p exited $rc after Ctrl-C, not 130: $(cat "$TMP/trace.err")"
[ -s "$TMP/trace.err" ] && bad "1: sonde trace -p said: $(cat "$TMP/trace.err")"
# every line: comm-tid, the event, the four workers' arguments
bad_lines=$(grep -v -E '^ *t7_target-[0-9]+ +\[[0-9]+\] [.]{5} +[0-9]+\.[0-9]+: work: \(t7_work\+0x0/0x[0-9a-f]+\) id=[0-3] n=[0-9]+ tag="w[0-3]"$' "$TMP/trace.out" | head -3)
[ -z "$bad_lines" ] || bad "1: lines not as expected: $bad_lines"
for id in 0 1 2 3; do
	grep -q "id=$id n=[0-9]* tag=\"w$id\"" "$TMP/trace.out" || bad "1: no event of worker $id"
done
# the tids are the target's worker threads
tids=$(sed -n 's/^ *t7_target-\([0-9]*\) .*/\1/p' "$TMP/trace.out" | sort -u)
[ "$(echo "$tids" | wc -l)" -eq 4 ] || bad "1: events from $(echo "$tids" | wc -l) threads, not 4"
for t in $tids; do
	[ -d /proc/$TPID/task/$t ] || bad "1: tid $t is not a thread of $TPID"
done
# n counts up per worker: consecutive calls, none lost
for id in 0 1 2 3; do
	grep "id=$id " "$TMP/trace.out" | sed 's/.* n=\([0-9]*\) .*/\1/' | awk -v id=$id '
		NR > 1 && $1 != prev + 1 { gaps++ } { prev = $1 }
		END { if (gaps) { print "worker " id ": " gaps " gaps in n"; exit 1 } }' || bad "1: events lost"
done
left_clean "1 (Ctrl-C)"

# ---- 2. the command killed: the agent leaves by itself -----------------------------------
"$SONDE" trace -p $TPID -e "$DEF" >"$TMP/trace2.out" 2>"$TMP/trace2.err" &
SPID=$!
wait_lines "$TMP/trace2.out" 500 || bad "2: attaching again: no events: $(cat "$TMP/trace2.err")"
kill -KILL $SPID
wait $SPID 2>/dev/null
SPID=
left_clean "2 (SIGKILL)"

# ---- 3. sonde ctl attaches an agent that stays; sonde detach --------------------------------
"$SONDE" ctl $TPID append kprobe_events 'p:t7/w t7_work id=%di:s32' 2>"$TMP/ctl.err" ||
	bad "3: sonde ctl append: $(cat "$TMP/ctl.err")"
grep -q "attached to pid $TPID" "$TMP/ctl.err" || bad "3: sonde ctl did not say it attached"
"$SONDE" ctl $TPID write events/t7/w/enable 1 || bad "3: enable"
sleep 0.2
hits=$("$SONDE" ctl $TPID cat kprobe_profile | awk '$1 == "w" { print $2 }')
[ "${hits:-0}" -gt 100 ] || bad "3: kprobe_profile shows ${hits:-no} hits"
[ "$(sonde_threads)" -ge 1 ] || bad "3: no agent thread while attached"
"$SONDE" detach $TPID 2>"$TMP/det.err" || bad "3: sonde detach: $(cat "$TMP/det.err")"
left_clean "3 (sonde detach)"
"$SONDE" detach $TPID 2>"$TMP/det.err" && bad "3: a second detach succeeded"
grep -q "no sonde agent" "$TMP/det.err" || bad "3: a second detach said: $(cat "$TMP/det.err")"

# ---- 3b. several -p at once: both processes traced, both left as they were ------------------
"$TARGET" -t 2 >"$TMP/target2.out" 2>&1 &
TPID2=$!
t7_wait_ready "$TMP/target2.out" || fail "3b: the second t7_target did not start"
"$SONDE" trace -p $TPID -p $TPID2 -e "$DEF" >"$TMP/trace3.out" 2>"$TMP/trace3.err" &
SPID=$!
wait_lines "$TMP/trace3.out" 2000 || bad "3b: fewer than 2000 events in 10 s: $(cat "$TMP/trace3.err")"
sleep 0.5
kill -INT $SPID
wait $SPID
rc=$?
SPID=
[ $rc -eq 130 ] || bad "3b: sonde trace -p -p exited $rc after Ctrl-C: $(cat "$TMP/trace3.err")"
tids=$(sed -n 's/^ *t7_target-\([0-9]*\) .*/\1/p' "$TMP/trace3.out" | sort -u)
n1=0 n2=0
for t in $tids; do
	if [ -d /proc/$TPID/task/$t ]; then
		n1=$((n1 + 1))
	elif [ -d /proc/$TPID2/task/$t ]; then
		n2=$((n2 + 1))
	else
		bad "3b: tid $t is a thread of neither process"
	fi
done
[ $n1 -eq 4 ] && [ $n2 -eq 2 ] || bad "3b: events from $n1 threads of $TPID (want 4), $n2 of $TPID2 (want 2)"
left_clean "3b (two -p, first)"
out=$(t7_code_equal $TPID2) || bad "3b: the second process's code differs from the files:
$out"
cat /proc/$TPID2/task/*/comm | grep -q '^sonde' && bad "3b: sonde threads remain in $TPID2"
kill -TERM $TPID2
wait $TPID2 || bad "3b: the second target exited $?"
TPID2=

# ---- 3d. several -p: tracing goes on while any of them lives -----------------------------------
"$TARGET" -t 1 >"$TMP/t5.out" 2>&1 &
TPID2=$!
"$TARGET" -t 1 >"$TMP/t6.out" 2>&1 &
TPID3=$!
sleep 0.3
"$SONDE" trace -p $TPID2 -p $TPID3 -e "$DEF" >"$TMP/trace6.out" 2>"$TMP/trace6.err" &
SPID=$!
wait_lines "$TMP/trace6.out" 500 || bad "3d: fewer than 500 events: $(cat "$TMP/trace6.err")"
kill -TERM $TPID2
wait $TPID2
TPID2=
sleep 0.5
n1=$(wc -l <"$TMP/trace6.out")
wait_lines "$TMP/trace6.out" $((n1 + 500)) || bad "3d: no events after the first -p ended: $(cat "$TMP/trace6.err")"
kill -0 $SPID 2>/dev/null || bad "3d: sonde ended with the first of its -p"
kill -TERM $TPID3
wait $TPID3
TPID3=
i=0
while kill -0 $SPID 2>/dev/null && [ $i -lt 100 ]; do
	i=$((i + 1))
	sleep 0.05
done
kill -0 $SPID 2>/dev/null && bad "3d: sonde still runs after every -p ended"
wait $SPID
rc=$?
SPID=
[ $rc -eq 0 ] || bad "3d: sonde exited $rc after its processes ended: $(cat "$TMP/trace6.err")"

# ---- 3c. a PATH:OFFSET definition applies to the processes that map PATH ----------------------
# (t7_work's file offset: its address in this PIE, whose text is mapped at its offset)
OFF=$(nm "$TARGET" | awk '$3 == "t7_work" { print $1 }')
sleep 60 &
TPID2=$!
"$SONDE" trace -p $TPID -p $TPID2 -e "p:t7/u $TARGET:0x$OFF id=%di:s32" >"$TMP/trace4.out" 2>"$TMP/trace4.err" &
SPID=$!
wait_lines "$TMP/trace4.out" 500 || bad "3c: fewer than 500 events in 10 s: $(cat "$TMP/trace4.err")"
kill -INT $SPID
wait $SPID
SPID=
grep -q "pid $TPID2 does not map" "$TMP/trace4.err" || bad "3c: nothing said of the process that does not map it: $(cat "$TMP/trace4.err")"
grep -q ' u: (0x[0-9a-f]*) id=[0-3]$' "$TMP/trace4.out" || bad "3c: events not as expected: $(head -2 "$TMP/trace4.out")"
left_clean "3c (a PATH in one of two processes)"
"$SONDE" trace -p $TPID2 -e "p:t7/u $TARGET:0x$OFF" >/dev/null 2>"$TMP/trace5.err" &&
	bad "3c: a PATH no process maps was accepted"
kill $TPID2
wait $TPID2 2>/dev/null
TPID2=

# ---- 4. it ends normally ---------------------------------------------------------------------
kill -TERM $TPID
wait $TPID
rc=$?
TPID=
[ $rc -eq 0 ] || bad "4: the target exited $rc"
[ "$(cat "$TMP/count" 2>/dev/null || echo 0)" -gt 0 ] || bad "4: the target counted no call"

[ $FAILS -eq 0 ] || exit 1
echo "$T: ok"
