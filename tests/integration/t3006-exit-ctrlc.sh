#!/bin/sh
# SPDX-License-Identifier: MIT
# t3006: sonde trace passes the program's exit status through, and Ctrl-C
# (or SIGTERM, or sonde's death) leaves a program that ignores it running
# with its code exactly as it was.
#
# 1. Exit status: a program's status (0, 7, 3) is sonde's; a program
#    killed by a signal gives 128+signal (SIGTERM 143, SIGSEGV 139); a
#    command that does not exist, cannot run, or is statically linked
#    (LD_PRELOAD cannot reach it) exits 2 or 127 with a message naming it.
# 2. Ctrl-C: `t3_target loop noint` (SIGINT ignored, calls work() and
#    fflush() every 20 ms) under sonde trace with probes on work (entry and
#    return, in the program) and fflush (in libc), in a process group of its
#    own that gets SIGINT as a terminal's Ctrl-C sends it. While tracing,
#    the program's and libc's code in memory (/proc/PID/mem) differs from
#    the files (the probes are there: the check can see them); after sonde
#    returned (status 130), every byte of both r-x mappings equals the file
#    again, the program keeps running (no SIGTRAP from a breakpoint left
#    behind), and sonde printed the events it saw. The same after SIGTERM to
#    sonde, and after SIGKILL to sonde (the agent notices its command is
#    gone and removes the probes itself). Then the program is killed by pid.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t3_target

TMP=$(mktemp -d /tmp/sonde-t3006.XXXXXX) || exit 1
MARK=t3006-$$-mark
SPID=
TPID=
cleanup() {
	[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null
	[ -n "$TPID" ] && kill -KILL "$TPID" 2>/dev/null
	if [ -n "${T3006_KEEP:-}" ]; then
		echo "t3006: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

FAILS=0
fail() {
	echo "t3006: FAIL: $*" >&2
	exit 1
}
bad() {
	echo "t3006: FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}
skip() {
	echo "t3006: SKIP: $*"
	exit 77
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
[ "$(uname -m)" = x86_64 ] || skip "the register names are x86-64's"
for t in setsid dd od cmp; do
	command -v $t >/dev/null 2>&1 || skip "$t is not installed"
done
ulimit -c 0 2>/dev/null
mkdir "$TMP/run" && cd "$TMP/run" || fail "cannot make $TMP/run"

# ---- 1. exit status ---------------------------------------------------------------------

# status WANT CMD...: sonde trace -e 'p:g/m malloc' -- CMD exits WANT, quietly
# (and prints malloc events if CMD is sh, which allocates)
status() {
	st_want=$1
	shift
	"$SONDE" trace -e 'p:g/m malloc' -- "$@" >"$TMP/st.out" 2>"$TMP/st.err"
	st_rc=$?
	[ $st_rc -eq "$st_want" ] || bad "sonde trace -- $*: status $st_rc, not $st_want:" \
		"$(tail -2 "$TMP/st.err")"
	[ -s "$TMP/st.err" ] && bad "sonde trace -- $*: said '$(head -2 "$TMP/st.err")'"
	[ "$1" != sh ] || grep -q ' m: (' "$TMP/st.out" || bad "sonde trace -- $*: no malloc event printed"
}
status 0 sh -c 'exit 0'
status 7 sh -c 'exit 7'
status 3 "$TARGET" exit 3
status 143 sh -c 'kill -TERM $$'
status 139 sh -c 'kill -SEGV $$'

# cannot CMD...: an error naming CMD, status 2 or 127, no signal
cannot() {
	"$SONDE" trace -e 'p:g/m malloc' -- "$@" >"$TMP/st.out" 2>"$TMP/st.err"
	st_rc=$?
	case $st_rc in
	2 | 126 | 127) ;;
	*) bad "sonde trace -- $*: status $st_rc, want 2 or 127: $(tail -2 "$TMP/st.err")" ;;
	esac
	grep -q -F -- "$1" "$TMP/st.err" || bad "sonde trace -- $*: the message does not name it:" \
		"'$(head -2 "$TMP/st.err")'"
	[ -s "$TMP/st.out" ] && bad "sonde trace -- $*: printed '$(head -2 "$TMP/st.out")'"
}
cannot nosuchcommand-t3006
cannot /nonexistent/t3006/prog
cannot /etc/passwd
if [ -x /sbin/ldconfig ] && command -v readelf >/dev/null 2>&1 &&
	! readelf -lW /sbin/ldconfig 2>/dev/null | grep -q INTERP; then
	cannot /sbin/ldconfig -p
	grep -q -i static "$TMP/st.err" || bad "a static program: the message does not say why:" \
		"$(head -2 "$TMP/st.err")"
fi

# ---- 2. Ctrl-C, SIGTERM, SIGKILL ----------------------------------------------------------------

# ours MARK: the pid of our t3_target (its arguments hold the unique MARK)
ours() {
	[ -n "$1" ] || return 0
	for d in /proc/[0-9]*; do
		[ "$(cat "$d/comm" 2>/dev/null)" = t3_target ] || continue
		tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q -F -- " $1" && echo "${d#/proc/}"
	done
}

# alive PID: PID runs (a zombie does not)
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	case $(ps -o stat= -p "$1") in
	Z*) return 1 ;;
	esac
}

# ticks: how many ticks the target logged
ticks() {
	grep -c '^tick ' "$TMP/prog.out" 2>/dev/null || echo 0
}

# wait_ticks N: until the target logged N more ticks (10 s at most)
wait_ticks() {
	wt_from=$(ticks)
	i=0
	while [ "$(ticks)" -lt $((wt_from + $1)) ]; do
		i=$((i + 1))
		[ $i -gt 200 ] && return 1
		sleep 0.05
	done
}

# same_code PID: 0 if every byte of the r-x mappings of the program and of
# libc in PID's memory equals its file's; lists the differing mappings on fd 3
same_code() {
	sc_diff=0
	sc_n=0
	while read -r range perms off dev inode path; do
		[ "$perms" = r-xp ] || continue
		case $path in
		"$TARGET" | */libc.so.6 | */libc-*.so) ;;
		*) continue ;;
		esac
		sc_n=$((sc_n + 1))
		start=$((0x${range%-*}))
		end=$((0x${range#*-}))
		off=$((0x$off))
		fsize=$(wc -c <"$path")
		len=$((end - start))
		[ $((off + len)) -gt "$fsize" ] && len=$((fsize - off))
		dd if=/proc/"$1"/mem of="$TMP/mem" bs=65536 iflag=skip_bytes,count_bytes \
			skip=$start count=$len status=none 2>"$TMP/dd.err" || {
			echo "cannot read /proc/$1/mem: $(cat "$TMP/dd.err")" >&3
			return 2
		}
		dd if="$path" of="$TMP/file" bs=65536 iflag=skip_bytes,count_bytes \
			skip=$off count=$len status=none
		if ! cmp -s "$TMP/mem" "$TMP/file"; then
			sc_diff=1
			echo "$path: $(cmp -l "$TMP/mem" "$TMP/file" 2>/dev/null | wc -l) bytes differ," \
				"first at +$(cmp "$TMP/mem" "$TMP/file" 2>/dev/null | sed -n 's/.*byte \([0-9]*\).*/\1/p')" >&3
		fi
	done <"/proc/$1/maps"
	[ $sc_n -ge 2 ] || {
		echo "found $sc_n r-x mappings of the program and libc" >&3
		return 2
	}
	return $sc_diff
}

# one_run HOW: start the target under sonde trace, stop sonde HOW (INT to
# the process group, TERM or KILL to sonde), check the target and its code
one_run() {
	how=$1
	rm -f "$TMP/prog.out"
	T3_OUT=$TMP/prog.out setsid "$SONDE" trace -e 'p:g/w work a=%di:u64' \
		-e 'r:g/wr work $retval' -e 'p:g/f fflush' -- "$TARGET" loop noint "$MARK" \
		>"$TMP/$how.trace" 2>"$TMP/$how.err" &
	SPID=$!
	wait_ticks 3 || fail "$how: the target does not tick: $(tail -3 "$TMP/$how.err")"
	TPID=$(ours "$MARK")
	case $TPID in
	'' | *[!0-9]*) fail "$how: cannot find the target's pid (found '$TPID')" ;;
	esac
	[ "$(ps -o pgid= -p "$SPID" | tr -d ' ')" = "$SPID" ] ||
		fail "$how: sonde is not the leader of its own process group"

	# the probes are in memory: the comparison sees them
	same_code "$TPID" 3>"$TMP/diff.before"
	rc=$?
	[ $rc -eq 2 ] && skip "$(cat "$TMP/diff.before")"
	[ $rc -eq 1 ] || fail "$how: while tracing, the code in memory equals the files: no probe?"
	grep -q "$TARGET" "$TMP/diff.before" && grep -q libc "$TMP/diff.before" ||
		fail "$how: while tracing, not both the program and libc are patched:" \
			"$(tr '\n' '|' <"$TMP/diff.before")"

	case $how in
	int) kill -INT "-$SPID" ;; # a terminal's Ctrl-C: the whole group
	term) kill -TERM "$SPID" ;;
	kill) kill -KILL "$SPID" ;;
	esac
	i=0
	while alive "$SPID"; do
		i=$((i + 1))
		[ $i -gt 200 ] && fail "$how: sonde did not return within 10 s"
		sleep 0.05
	done
	wait "$SPID"
	rc=$?
	SPID=
	case $how in
	int) [ $rc -eq 130 ] || bad "$how: sonde exited $rc after Ctrl-C, not 130" ;;
	term) [ $rc -lt 128 ] || [ $rc -eq 130 ] || bad "$how: sonde died of signal $((rc - 128))" ;;
	esac
	if [ "$how" != kill ]; then
		[ -s "$TMP/$how.err" ] && bad "$how: sonde said: $(head -3 "$TMP/$how.err")"
		grep -q -E ' w: \(work\+0x0/0x[0-9a-f]+\) a=[0-9]+$' "$TMP/$how.trace" ||
			bad "$how: sonde printed no work event: $(head -3 "$TMP/$how.trace")"
		grep -q -E ' f: \(' "$TMP/$how.trace" || bad "$how: sonde printed no fflush event"
	fi

	# the program goes on, and its code is the files' (the agent of a killed
	# sonde needs a moment to notice)
	i=0
	while ! same_code "$TPID" 3>"$TMP/diff.after"; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			bad "$how: after sonde left, the code in memory is not the files':" \
				"$(tr '\n' '|' <"$TMP/diff.after")"
			break
		fi
		sleep 0.05
	done
	wait_ticks 10 || bad "$how: the target stopped ticking after sonde left"
	alive "$TPID" || bad "$how: the target died after sonde left"
	same_code "$TPID" 3>"$TMP/diff.after" ||
		bad "$how: the code changed after sonde left: $(tr '\n' '|' <"$TMP/diff.after")"
	kill -TERM "$TPID"
	i=0
	while alive "$TPID"; do
		i=$((i + 1))
		[ $i -gt 100 ] && fail "$how: the target does not die of SIGTERM"
		sleep 0.05
	done
	TPID=
}
one_run int
one_run term
one_run kill

[ "$FAILS" -eq 0 ] || fail "$FAILS checks failed (above)"
echo "ok: exit statuses passed through; after Ctrl-C, SIGTERM and SIGKILL of sonde the" \
	"program runs on with its code as in its files"
exit 0
