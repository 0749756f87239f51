#!/bin/sh
# SPDX-License-Identifier: MIT
# t7006: two sonde commands reaching one process at the same moment, and
# the sockets agents leave behind when their process is killed (issue 7).
#
#  1. A dead process's socket: a socket file named for a pid that has
#     ended (and the command side's cmd-PID.sock, and the attach lock
#     PID.lock) is removed by the next sonde command that opens a session.
#  2. A stale socket of a live pid (a process of the same pid was killed
#     with its agent in it: the file remains, nothing listens): `sonde ctl
#     PID` does not stop at it; it attaches, and the new agent's socket
#     takes the file's place. `sonde detach` removes it.
#  3. `sonde trace -p PID` and `sonde ctl PID cat kprobe_profile` started
#     together, 8 times: only one of them can ptrace the process, and the
#     other must not fail ("already traced by … (sonde)", or EPERM): they
#     take turns, and the second uses the agent the first one loaded. Both succeed, the trace prints
#     events, and the process is left as it was.
T=t7006
B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t7_target
SRC=${SONDE_SRC:-$(dirname "$0")/../..}
. "$SRC/tests/integration/t7common.inc"
ROUNDS=${T7006_ROUNDS:-8}

TMP=$(mktemp -d /tmp/$T.XXXXXX) || exit 1
TPID=
SPID=
CPID=
cleanup() {
	[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null
	[ -n "$CPID" ] && kill -KILL "$CPID" 2>/dev/null
	[ -n "$TPID" ] && kill -KILL "$TPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
t7_need_ptrace

"$TARGET" -t 2 >"$TMP/target.out" 2>&1 &
TPID=$!
t7_wait_ready "$TMP/target.out" || fail "t7_target did not start"
SOCK=$(t7_agent_sock $TPID)
DIR=$(dirname "$SOCK")
mkdir -p "$DIR" && chmod 700 "$DIR"

# stale_sock PATH: a unix socket file nobody listens on (what a killed agent leaves)
stale_sock() {
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.close()
' "$1"
}

# no_sonde_left WHAT: no agent thread in the target, its code as on disk
no_sonde_left() {
	n=0
	while cat /proc/$TPID/task/*/comm 2>/dev/null | grep -q '^sonde' && [ $n -lt 100 ]; do
		n=$((n + 1))
		sleep 0.05
	done
	cat /proc/$TPID/task/*/comm | grep -q '^sonde' && bad "$1: sonde threads remain"
	[ -e "$SOCK" ] && bad "$1: the agent's socket $SOCK remains"
	out=$(t7_code_equal $TPID) || bad "$1: the code differs from the files:
$out"
	kill -0 $TPID 2>/dev/null || fail "$1: the target died"
}

# ---- 1. sockets of ended processes are swept ------------------------------------------------
sh -c 'exit 0' &
DEAD=$!
wait $DEAD
kill -0 $DEAD 2>/dev/null && fail "1: pid $DEAD still runs"
stale_sock "$DIR/$DEAD.sock" || fail "1: cannot make a socket in $DIR"
stale_sock "$DIR/cmd-$DEAD.sock"
: >"$DIR/$DEAD.lock"
echo keep >"$DIR/notes-$DEAD.txt" # not sonde's: left alone

# ---- 2. a stale socket of a live pid -----------------------------------------------------------
rm -f "$SOCK"
stale_sock "$SOCK"
t7_sock_live "$SOCK" && fail "2: the stale socket accepts connections"
"$SONDE" ctl $TPID ls >"$TMP/ls.out" 2>"$TMP/ls.err" ||
	bad "2: sonde ctl stopped at the stale socket: $(cat "$TMP/ls.err")"
grep -qx 'kprobe_events' "$TMP/ls.out" || bad "2: sonde ctl ls listed: $(head -5 "$TMP/ls.out")"
grep -q "attached to pid $TPID" "$TMP/ls.err" || bad "2: sonde ctl did not attach: $(cat "$TMP/ls.err")"
t7_sock_live "$SOCK" || bad "2: the new agent's socket does not serve"
[ -e "$SOCK.new" ] && bad "2: the agent left its socket's temporary name $SOCK.new"
"$SONDE" detach $TPID 2>"$TMP/det.err" || bad "2: sonde detach: $(cat "$TMP/det.err")"
no_sonde_left "2"

# the session of case 2 swept case 1's files
[ -e "$DIR/$DEAD.sock" ] && bad "1: the socket of ended pid $DEAD remains"
[ -e "$DIR/cmd-$DEAD.sock" ] && bad "1: the command socket of ended pid $DEAD remains"
[ -e "$DIR/$DEAD.lock" ] && bad "1: the attach lock of ended pid $DEAD remains"
[ -e "$DIR/notes-$DEAD.txt" ] || bad "1: a file that is not a socket of sonde's was removed"
rm -f "$DIR/notes-$DEAD.txt"

# ---- 3. trace -p and ctl at the same moment ---------------------------------------------------
DEF='p:race/work t7_work id=%di:s32'
r=0
while [ $r -lt $ROUNDS ]; do
	r=$((r + 1))
	"$SONDE" trace -p $TPID -e "$DEF" >"$TMP/trace.out" 2>"$TMP/trace.err" &
	SPID=$!
	"$SONDE" ctl $TPID cat kprobe_profile >"$TMP/ctl.out" 2>"$TMP/ctl.err" &
	CPID=$!
	wait $CPID
	rc=$?
	CPID=
	[ $rc -eq 0 ] || bad "3.$r: sonde ctl exited $rc: $(cat "$TMP/ctl.err")"
	n=0
	while [ "$(grep -c ' work: ' "$TMP/trace.out")" -lt 20 ]; do
		n=$((n + 1))
		if [ $n -gt 200 ] || ! kill -0 $SPID 2>/dev/null; then
			bad "3.$r: sonde trace -p printed no events: $(cat "$TMP/trace.err")"
			break
		fi
		sleep 0.05
	done
	kill -INT $SPID 2>/dev/null
	wait $SPID
	rc=$?
	SPID=
	[ $rc -eq 130 ] || bad "3.$r: sonde trace -p exited $rc: $(cat "$TMP/trace.err")"
	grep -h 'already traced' "$TMP/trace.err" "$TMP/ctl.err" && bad "3.$r: one command found the other in its way"
	# ctl won the race: its agent stays (as `sonde ctl` leaves one) until detached
	if grep -q "attached to pid $TPID" "$TMP/ctl.err"; then
		"$SONDE" detach $TPID 2>"$TMP/det.err" || bad "3.$r: sonde detach: $(cat "$TMP/det.err")"
	fi
	no_sonde_left "3.$r"
	[ $FAILS -eq 0 ] || break
done

kill -TERM $TPID
wait $TPID || bad "the target exited $?"
TPID=
[ $FAILS -eq 0 ] || exit 1
echo "$T: ok ($r rounds)"
