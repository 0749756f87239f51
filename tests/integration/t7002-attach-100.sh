#!/bin/sh
# SPDX-License-Identifier: MIT
# t7002: attach and detach 100 times to a busy multi-threaded process
# (issue 7): no crash, no error, and neither its mappings nor its memory
# grow from one attach to the next.
#
# Each round loads (or finds loaded) the agent with `sonde ctl PID`, defines
# a probe with arguments and enables it, sees hits in kprobe_profile, and
# `sonde detach PID` removes everything; every tenth round is a `sonde trace
# -p PID` instead, stopped with Ctrl-C once events flow. The number of lines
# of /proc/PID/maps and the resident memory after round 10 (libsonde.so loaded, idle) are
# compared with those after round 100: the maps must be the same, the
# private memory (RssAnon + RssFile) may not grow by more than 2 MiB, and
# the shared memory (the one ring buffer, reused by every attach) stays
# within the ring's size (buffer_total_size_kb). At the end the code equals the files' and the
# process ends normally.
T=t7002
B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t7_target
SRC=${SONDE_SRC:-$(dirname "$0")/../..}
. "$SRC/tests/integration/t7common.inc"
ROUNDS=${T7002_ROUNDS:-100}

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

"$TARGET" -t 6 >"$TMP/target.out" 2>&1 &
TPID=$!
t7_wait_ready "$TMP/target.out" || fail "t7_target did not start"

start=$(date +%s)
r=1
while [ $r -le "$ROUNDS" ]; do
	kill -0 $TPID 2>/dev/null || fail "round $r: the target died"
	if [ $((r % 10)) -eq 0 ]; then
		rm -f "$TMP/trace.out"
		"$SONDE" trace -p $TPID -e "p:t7/r$r t7_work id=%di:s32 tag=+0(%dx):string" \
			>"$TMP/trace.out" 2>"$TMP/trace.err" &
		SPID=$!
		n=0
		while [ "$(cat "$TMP/trace.out" 2>/dev/null | wc -l)" -lt 50 ]; do
			n=$((n + 1))
			[ $n -gt 200 ] && fail "round $r: sonde trace -p printed no events: $(cat "$TMP/trace.err")"
			sleep 0.05
		done
		kill -INT $SPID
		wait $SPID
		rc=$?
		SPID=
		[ $rc -eq 130 ] || fail "round $r: sonde trace -p exited $rc: $(cat "$TMP/trace.err")"
	else
		"$SONDE" ctl $TPID append kprobe_events "p:t7/r$r t7_work id=%di:s32 n=%si:s64" \
			2>"$TMP/ctl.err" || fail "round $r: sonde ctl: $(cat "$TMP/ctl.err")"
		"$SONDE" ctl $TPID write events/t7/r$r/enable 1 2>"$TMP/ctl.err" ||
			fail "round $r: enable: $(cat "$TMP/ctl.err")"
		n=0
		while :; do
			hits=$("$SONDE" ctl $TPID cat kprobe_profile | awk -v e=r$r '$1 == e { print $2 }')
			[ "${hits:-0}" -gt 0 ] && break
			n=$((n + 1))
			[ $n -gt 100 ] && fail "round $r: no hit"
			sleep 0.02
		done
		[ $r -eq 99 ] && ring_kb=$("$SONDE" ctl $TPID cat buffer_total_size_kb)
		"$SONDE" detach $TPID 2>"$TMP/det.err" || fail "round $r: sonde detach: $(cat "$TMP/det.err")"
	fi
	# the agent is gone before the next round (its thread ends right after it answers)
	n=0
	while cat /proc/$TPID/task/*/comm 2>/dev/null | grep -q '^sonde'; do
		n=$((n + 1))
		[ $n -gt 100 ] && fail "round $r: sonde threads remain after detach"
		sleep 0.02
	done
	if [ $r -eq 10 ]; then
		maps10=$(t7_maps $TPID)
		rss10=$(t7_private_kb $TPID)
	fi
	[ -n "${T7002_VERBOSE:-}" ] && [ $((r % 25)) -eq 0 ] &&
		echo "round $r: $(grep -E 'Rss(Anon|File|Shmem)' /proc/$TPID/status | tr -s ' \t\n' ' ')"
	r=$((r + 1))
done
maps=$(t7_maps $TPID)
rss=$(t7_private_kb $TPID)
shm=$(awk '/^RssShmem:/ { print $2 }' /proc/$TPID/status)
echo "$T: $ROUNDS rounds in $(($(date +%s) - start)) s; maps $maps10 -> $maps lines," \
	"RSS (anon+file) $rss10 -> $rss kB, ring in memory $shm kB of ${ring_kb:-?} kB"
FAILS=0
[ "$maps" -eq "$maps10" ] || { echo "$T: FAIL: the mappings grew from $maps10 to $maps lines" >&2; FAILS=1; }
[ "$rss" -le $((rss10 + 2048)) ] || { echo "$T: FAIL: RSS grew from $rss10 to $rss kB" >&2; FAILS=1; }
# the one ring buffer, reused by every attach: never more than its size
[ -z "$ring_kb" ] || [ "$shm" -le $((ring_kb + 1024)) ] ||
	{ echo "$T: FAIL: $shm kB of shared memory, the ring is $ring_kb kB" >&2; FAILS=1; }
out=$(t7_code_equal $TPID) || { echo "$T: FAIL: the code differs from the files:
$out" >&2; FAILS=1; }
kill -TERM $TPID
wait $TPID
rc=$?
TPID=
[ $rc -eq 0 ] || { echo "$T: FAIL: the target exited $rc" >&2; FAILS=1; }
[ $FAILS -eq 0 ] || exit 1
echo "$T: ok"
