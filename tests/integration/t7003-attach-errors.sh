#!/bin/sh
# SPDX-License-Identifier: MIT
# t7003: what `sonde -p PID` says when it cannot attach (issue 7), and that
# it leaves the process as it was. Each case: a non-zero status, one clear
# message naming the cause, and the process still running, untraced.
#
#  - no such pid;
#  - a process already traced (strace, gdb): "already traced by … (strace)";
#  - a statically linked program: "statically linked";
#  - a process stopped by SIGSTOP: "stopped", and it stays stopped;
#  - another user's process, sonde not root (setpriv to nobody): "uid";
#  - as root, another user's process: the agent could not reach root's
#    private socket: "runs as uid";
#  - `sonde detach` of a process without an agent: "no sonde agent";
#  - an uprobe on a file the process does not map: "does not map".
# Cases whose tool is missing (strace, gdb, a static libc, setpriv) are
# skipped with a note.
T=t7003
B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
SRC=${SONDE_SRC:-$(dirname "$0")/../..}
. "$SRC/tests/integration/t7common.inc"

TMP=$(mktemp -d /tmp/$T.XXXXXX) || exit 1
chmod 755 "$TMP"
PIDS=
cleanup() {
	for p in $PIDS; do
		kill -CONT "$p" 2>/dev/null
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
note() {
	echo "$T: note: $*" >&2
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
sleep 300 &
SLEEPER=$!
PIDS="$PIDS $SLEEPER"
t7_ptrace_ok $SLEEPER

# refused WHAT PATTERN CMD...: CMD fails, says PATTERN, prints nothing else
refused() {
	what=$1
	pat=$2
	shift 2
	"$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	[ $rc -ne 0 ] || bad "$what: status 0"
	grep -q -i -e "$pat" "$TMP/err" || bad "$what: the message does not say '$pat': $(cat "$TMP/err")"
	[ "$(wc -l <"$TMP/err")" -le 2 ] || bad "$what: more than one message: $(cat "$TMP/err")"
	[ -s "$TMP/out" ] && bad "$what: printed $(head -2 "$TMP/out")"
}

# untouched PID WHAT: PID runs, nobody traces it, no sonde thread in it
untouched() {
	kill -0 "$1" 2>/dev/null || bad "$2: the process is gone"
	tr=$(awk '/^TracerPid:/ { print $2 }' /proc/$1/status 2>/dev/null)
	[ "${tr:-0}" -eq 0 ] || bad "$2: still traced by $tr"
	# (the agent leaves once it sees sonde's end: its threads, a moment later)
	u_wait=0
	while cat /proc/$1/task/*/comm 2>/dev/null | grep -q '^sonde' && [ $u_wait -lt 40 ]; do
		sleep 0.05
		u_wait=$((u_wait + 1))
	done
	if cat /proc/$1/task/*/comm 2>/dev/null | grep -q '^sonde'; then
		bad "$2: a sonde thread runs in it 2 s later: $(grep -l '^sonde' /proc/$1/task/*/comm | head -3 | tr '\n' ' ')"
	fi
}

DEF='p:t7/m malloc size=%di:u64'

# ---- no such pid ---------------------------------------------------------------------------
nopid=4194303
while kill -0 $nopid 2>/dev/null; do nopid=$((nopid - 1)); done
refused "no such pid (trace)" "no process with pid $nopid" "$SONDE" trace -p $nopid -e "$DEF"
refused "no such pid (ctl)" "no process with pid $nopid" "$SONDE" ctl $nopid ls
refused "no such pid (detach)" "no sonde agent" "$SONDE" detach $nopid

# ---- an uprobe on a file the process does not map ---------------------------------------------
# (a launched program gets it, placed when it loads the file; an attached one
# is told, and left as it was)
refused "a file it does not map" "pid $SLEEPER does not map /usr/bin/true" \
	"$SONDE" trace -p $SLEEPER -e 'p:t7/nomap /usr/bin/true:0x1000'
untouched $SLEEPER "a file it does not map"

# ---- a process under a debugger ---------------------------------------------------------------
if command -v strace >/dev/null 2>&1; then
	strace -p $SLEEPER -o /dev/null 2>/dev/null &
	STRACE=$!
	PIDS="$PIDS $STRACE"
	n=0
	while [ "$(awk '/^TracerPid:/ { print $2 }' /proc/$SLEEPER/status)" = 0 ] && [ $n -lt 100 ]; do
		n=$((n + 1))
		sleep 0.05
	done
	refused "under strace" "already traced by pid $STRACE (strace)" "$SONDE" trace -p $SLEEPER -e "$DEF"
	kill $STRACE
	wait $STRACE 2>/dev/null
	untouched $SLEEPER "under strace"
else
	note "strace is not installed: the traced-process case is not checked with it"
fi
if command -v gdb >/dev/null 2>&1; then
	sleep 300 &
	G=$!
	PIDS="$PIDS $G"
	gdb -q -nx -batch -p $G -ex 'shell sleep 3' >/dev/null 2>&1 &
	GDB=$!
	PIDS="$PIDS $GDB"
	n=0
	while [ "$(awk '/^TracerPid:/ { print $2 }' /proc/$G/status)" = 0 ] && [ $n -lt 100 ]; do
		n=$((n + 1))
		sleep 0.05
	done
	refused "under gdb" "already traced by" "$SONDE" ctl $G ls
	wait $GDB 2>/dev/null
fi

# ---- a statically linked program ----------------------------------------------------------------
if command -v cc >/dev/null 2>&1 &&
	printf '#include <unistd.h>\nint main(void){for(;;)pause();}\n' >"$TMP/static.c" &&
	cc -static -O1 -o "$TMP/static" "$TMP/static.c" 2>/dev/null; then
	"$TMP/static" &
	S=$!
	PIDS="$PIDS $S"
	sleep 0.1
	refused "static" "statically linked" "$SONDE" trace -p $S -e "$DEF"
	untouched $S "static"
else
	note "no static libc: the statically linked case is not checked"
fi

# ---- a stopped process --------------------------------------------------------------------------
kill -STOP $SLEEPER
sleep 0.1
refused "stopped" "stopped" "$SONDE" trace -p $SLEEPER -e "$DEF"
st=$(awk '/^State:/ { print $2 }' /proc/$SLEEPER/status)
[ "$st" = T ] || bad "stopped: the process is no longer stopped ($st)"
kill -CONT $SLEEPER
untouched $SLEEPER "stopped"

# ---- not a process id: refused before anything is touched ------------------------------------------
BAD="${SLEEPER}x"
refused "trace -p $BAD" "'$BAD' is not a process id" "$SONDE" trace -e "$DEF" -p "$BAD"
refused "graph -p $BAD" "'$BAD' is not a process id" "$SONDE" graph -p "$BAD"
refused "ctl $BAD" "'$BAD' is not a process id" "$SONDE" ctl "$BAD" ls
refused "detach $BAD" "'$BAD' is not a process id" "$SONDE" detach "$BAD"
untouched $SLEEPER "a pid with junk after it"

# ---- another user's process -----------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1 &&
	setpriv --reuid=65534 --regid=65534 --clear-groups "$SONDE" --version >/dev/null 2>&1; then
	# sonde as nobody, the process root's
	refused "not root, another user's process" "uid" \
		setpriv --reuid=65534 --regid=65534 --clear-groups "$SONDE" trace -p $SLEEPER -e "$DEF"
	untouched $SLEEPER "not root"
	# sonde as root, the process nobody's
	setpriv --reuid=65534 --regid=65534 --clear-groups sleep 300 &
	N=$!
	PIDS="$PIDS $N"
	sleep 0.1
	refused "root, nobody's process" "runs as uid 65534" "$SONDE" trace -p $N -e "$DEF"
	untouched $N "root, nobody's process"
else
	note "not root, no setpriv, or nobody cannot run $SONDE: the other-user cases are not checked"
fi

[ $FAILS -eq 0 ] || exit 1
echo "$T: ok"
