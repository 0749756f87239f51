#!/bin/sh
# SPDX-License-Identifier: MIT
# t3010: probes on what glibc runs with every signal blocked.
#
# A thread's last steps (glibc's start_thread: getpagesize and madvise;
# free and munmap for a detached thread) run with every signal blocked,
# SIGTRAP included: a breakpoint met there kills the process. Such a probe
# is a jump from the start (refused, with the reason, where it cannot be
# one: test_optprobe), never a breakpoint unless optimization is off.
#
# tests/targets/t6_graph 2 detached: 5 threads end (one joined, four
# detached), each through madvise; it prints "sum=23" and exits 3. And
# system(): its posix_spawn child runs with every signal blocked until its
# execve (any probe in libc is a jump first, for such windows).
# Oracles: its output and status without sonde; one event per thread.
B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t6_graph
TMP=$(mktemp -d /tmp/sonde-t3010.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT

FAILS=0
bad() {
	echo "t3010: FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

[ -x "$SONDE" ] || { echo "t3010: FAIL: $SONDE is not built" >&2; exit 1; }
[ -x "$TARGET" ] || { echo "t3010: FAIL: $TARGET is not built" >&2; exit 1; }
cd "$TMP" || exit 1

"$TARGET" 2 detached >plain.out 2>&1
[ $? -eq 3 ] || bad "the program without sonde: exit status $?"

# an entry probe and a return probe, five runs each: any breakpoint met in
# a thread's last steps would have killed some of them (it did every time)
for def in 'p:t3010/madv madvise' 'r:t3010/madv madvise $retval' 'p:t3010/fr free'; do
	i=0
	while [ $i -lt 5 ]; do
		"$SONDE" trace -e "$def" -o events -- "$TARGET" 2 detached >out 2>err
		rc=$?
		if [ $rc -ne 3 ] || ! cmp -s plain.out out; then
			bad "'$def', run $i: exit status $rc, output '$(cat out)': $(tail -2 err)"
			break
		fi
		i=$((i + 1))
	done
done
"$SONDE" trace -e 'p:t3010/madv madvise' -o events -- "$TARGET" 2 detached >/dev/null 2>&1
n=$(grep -c ' madv: ' events)
[ "$n" -eq 5 ] || bad "madvise events: $n, 5 threads ended: $(head -3 events)"

# the child of posix_spawn (system()) runs with every signal blocked until
# its execve: a probe on execve is a jump, the child runs, the event is there
PY=/usr/bin/python3
if [ -x "$PY" ]; then
	"$SONDE" trace -e 'p:t3010/ex execve' -o events -- "$PY" -c \
		'import os; print(os.system("echo child-ran"))' >out 2>err
	rc=$?
	[ $rc -eq 0 ] || bad "system(): exit status $rc: $(tail -2 err)"
	[ "$(cat out)" = "child-ran
0" ] || bad "system(): the child did not run: '$(cat out)'"
	grep -q ' ex: (execve+0x0/' events || bad "system(): no execve event: $(cat events)"
else
	echo "t3010: note: $PY is not installed: system() not checked" >&2
fi

[ $FAILS -eq 0 ] || exit 1
echo "ok: probes on a thread's last steps are jumps"
