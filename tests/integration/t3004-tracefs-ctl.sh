#!/bin/sh
# SPDX-License-Identifier: MIT
# t3004: the virtual tracefs by hand, with `sonde ctl PID`: every file the
# kernel's tracefs has for dynamic events, read and written with the
# kernel's strings, has the kernel's effect.
#
# The target (t3_target cmd) is started under `sonde trace` with one event
# and answers commands on a FIFO ("call N": N calls of work(), logged).
# sonde trace is then stopped with SIGINT: it removes its probe and the
# program runs on, its agent still serving the tree, with no consumer in
# the way (trace_pipe has one consuming reader at a time). Then, by hand:
#   ls of /, events/, events/grp/, events/grp/ev/; kprobe_events written
#   with > (write: replaces every probe, an empty write clears) and >>
#   (append), read back in the kernel's canonical form; -:grp/ev; format
#   (the kernel's text for the same definitions) and id; enable files (0, 1,
#   and X for a group of mixed events); set_event (grp:ev, grp:*, !grp:ev,
#   an empty write); EBUSY for > and -: while an event is enabled; filter
#   (set, read back, a bad one read back with its caret, 0 to clear);
#   trace (the kernel's header, entries-in-buffer/entries-written, one line
#   per event with the values the program logged, not consumed); trace_pipe
#   (the same lines, consumed: a second read gets nothing, and trace then
#   shows 0/0 as the kernel's does); tracing_on 0 stops events; the hit
#   counts of kprobe_profile (the kernel counts every hit of an enabled
#   probe, filtered or not); buffer_size_kb; trace_clock with its brackets;
#   available_events; error_log and its clearing by an empty write.
# At the end the program's output is that of a clean run of the same
# commands. T3004_KEEP=1 keeps the files.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t3_target

TMP=$(mktemp -d /tmp/sonde-t3004.XXXXXX) || exit 1
MARK=t3004-$$-mark
SPID=
TPID=
cleanup() {
	exec 3>&- 2>/dev/null
	[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null
	[ -n "$TPID" ] && kill -KILL "$TPID" 2>/dev/null
	if [ -n "${T3004_KEEP:-}" ]; then
		echo "t3004: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

FAILS=0
fail() {
	echo "t3004: FAIL: $*" >&2
	exit 1
}
bad() {
	echo "t3004: FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
command -v timeout >/dev/null 2>&1 || { echo "t3004: SKIP: timeout (coreutils) is not installed"; exit 77; }
[ "$(uname -m)" = x86_64 ] || { echo "t3004: SKIP: the register names are x86-64's"; exit 77; }

# ours MARK: the pid of our t3_target (its arguments hold the unique MARK)
ours() {
	[ -n "$1" ] || return 0
	for d in /proc/[0-9]*; do
		[ "$(cat "$d/comm" 2>/dev/null)" = t3_target ] || continue
		tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q -F -- " $1" && echo "${d#/proc/}"
	done
}

# wait_for FILE LINE: until FILE has the line LINE (10 s at most)
wait_for() {
	i=0
	while ! grep -q -x -F -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 200 ] && return 1
		sleep 0.05
	done
}

CALLS=0
# call N: N more calls of work() in the target, answered
call() {
	CALLS=$((CALLS + $1))
	echo "call $1" >&3
	wait_for "$TMP/prog.out" "done $CALLS" || fail "the target did not answer 'call $1'"
}

ctl() {
	"$SONDE" ctl "$TPID" "$@"
}

# is PATH TEXT: the file reads exactly TEXT (TEXT's lines, printf %b)
is() {
	printf '%b' "$2" >"$TMP/want"
	ctl cat "$1" >"$TMP/got" 2>"$TMP/got.err" || {
		bad "cat $1 failed: $(cat "$TMP/got.err")"
		return 1
	}
	cmp -s "$TMP/want" "$TMP/got" && return 0
	bad "$1 reads '$(tr '\n' '|' <"$TMP/got")', not '$(tr '\n' '|' <"$TMP/want")'"
	return 1
}

# ok VERB PATH TEXT: the write succeeds
ok() {
	ctl "$@" 2>"$TMP/w.err" || bad "$1 $2 '$3' failed: $(tr '\n' '|' <"$TMP/w.err")"
}

# refused ERRTEXT VERB PATH TEXT: the write fails, saying ERRTEXT
refused() {
	r_err=$1
	shift
	if ctl "$@" 2>"$TMP/w.err"; then
		bad "$1 $2 '$3' succeeded; the kernel refuses it ($r_err)"
	else
		grep -q -F -- "$r_err" "$TMP/w.err" ||
			bad "$1 $2 '$3': no '$r_err' in: $(tr '\n' '|' <"$TMP/w.err")"
	fi
}

# has_lines FILE LINE...: FILE has each LINE
has_lines() {
	h_file=$1
	shift
	for l in "$@"; do
		grep -q -x -F -- "$l" "$h_file" || bad "no line '$l' in: $(tr '\n' '|' <"$h_file")"
	done
}

# ---- the target -----------------------------------------------------------------------

mkdir "$TMP/run" && cd "$TMP/run" || fail "cannot make $TMP/run"
mkfifo "$TMP/in" || fail "mkfifo"
exec 3<>"$TMP/in"
T3_OUT=$TMP/prog.out "$SONDE" trace -e 'p:keep/w work a=%di:u64' -- "$TARGET" cmd "$MARK" \
	<"$TMP/in" >"$TMP/trace.out" 2>"$TMP/trace.err" &
SPID=$!
call 1
TPID=$(ours "$MARK")
case $TPID in
'' | *[!0-9]*) fail "cannot find the target's pid (found '$TPID')" ;;
esac
kill -INT "$SPID"
i=0
while kill -0 "$SPID" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 200 ] && fail "sonde trace did not stop on SIGINT"
	sleep 0.05
done
wait "$SPID"
rc=$?
SPID=
[ $rc -eq 130 ] || bad "sonde trace stopped by SIGINT exited $rc, not 130"
grep -q ' w: (work+0x0/0x[0-9a-f]*) a=7$' "$TMP/trace.out" ||
	bad "sonde trace did not print the first call's event: $(cat "$TMP/trace.out" "$TMP/trace.err")"
kill -0 "$TPID" 2>/dev/null || fail "the target died with sonde trace"

# ---- the tree -----------------------------------------------------------------------------

ctl ls >"$TMP/ls" || fail "ls / failed"
has_lines "$TMP/ls" kprobe_events uprobe_events events/ set_event tracing_on trace trace_pipe \
	kprobe_profile buffer_size_kb trace_clock available_events available_filter_functions error_log
# sonde trace took its probe with it
is kprobe_events ''
is available_events ''

# ---- kprobe_events: > and >> ------------------------------------------------------------

EV='p:grp/ev work a=%di:u64 s=+0(%si):string'
REV='r:grp/rev work $retval'
X='p:other/x t3_step n=%di:s64'
ok write kprobe_events "$EV"
ok append kprobe_events "$REV"
ok append kprobe_events "$X"
# the kernel's canonical form: an unnamed argument is argN
is kprobe_events "$EV\n"'r:grp/rev work arg1=$retval'"\n$X\n"
ok write kprobe_events 'p:tmp/only work'
is kprobe_events 'p:tmp/only work\n'
ok write kprobe_events ''
is kprobe_events ''
ok append kprobe_events "$EV"
ok append kprobe_events "$REV"
ok append kprobe_events "$X"
ok append kprobe_events 'p:grp/gone work'
ok append kprobe_events '-:grp/gone'
is kprobe_events "$EV\n"'r:grp/rev work arg1=$retval'"\n$X\n"
ctl cat available_events | sort >"$TMP/avail"
printf 'grp:ev\ngrp:rev\nother:x\n' | cmp -s - "$TMP/avail" ||
	bad "available_events: $(tr '\n' '|' <"$TMP/avail")"

# ---- the events/ tree, format and id -------------------------------------------------------

ctl ls events >"$TMP/ls" || bad "ls events failed"
has_lines "$TMP/ls" enable grp/ other/
ctl ls events/grp >"$TMP/ls" || bad "ls events/grp failed"
has_lines "$TMP/ls" enable ev/ rev/
grep -q -x 'gone/' "$TMP/ls" && bad "events/grp/gone/ is still there"
ctl ls events/grp/ev >"$TMP/ls" || bad "ls events/grp/ev failed"
has_lines "$TMP/ls" enable filter format id
refused 'No such file' ls events/grp/gone

ID_EV=$(ctl cat events/grp/ev/id)
ID_REV=$(ctl cat events/grp/rev/id)
ID_X=$(ctl cat events/other/x/id)
case "$ID_EV$ID_REV$ID_X" in
'' | *[!0-9]*) bad "ids are not numbers: '$ID_EV' '$ID_REV' '$ID_X'" ;;
esac
[ "$ID_EV" != "$ID_REV" ] && [ "$ID_EV" != "$ID_X" ] && [ "$ID_REV" != "$ID_X" ] ||
	bad "two events share an id: $ID_EV $ID_REV $ID_X"
COMMON='\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;
'
# the kernel's format files for the same definitions (uprobe_events, 6.18)
is events/grp/ev/format "name: ev\nID: $ID_EV\nformat:\n$COMMON
\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;
\tfield:u64 a;\toffset:16;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] s;\toffset:24;\tsize:4;\tsigned:1;

print fmt: \"(%lx) a=%Lu s=\\\\\"%s\\\\\"\", REC->__probe_ip, REC->a, __get_str(s)\n"
is events/grp/rev/format "name: rev\nID: $ID_REV\nformat:\n$COMMON
\tfield:unsigned long __probe_func;\toffset:8;\tsize:8;\tsigned:0;
\tfield:unsigned long __probe_ret_ip;\toffset:16;\tsize:8;\tsigned:0;
\tfield:u64 arg1;\toffset:24;\tsize:8;\tsigned:0;

print fmt: \"(%lx <- %lx) arg1=0x%Lx\", REC->__probe_func, REC->__probe_ret_ip, REC->arg1\n"
is events/other/x/format "name: x\nID: $ID_X\nformat:\n$COMMON
\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;
\tfield:s64 n;\toffset:16;\tsize:8;\tsigned:1;

print fmt: \"(%lx) n=%Ld\", REC->__probe_ip, REC->n\n"
refused 'denied' write events/grp/ev/id 5

# ---- enable files and set_event -----------------------------------------------------------------

is events/grp/ev/enable '0\n'
is events/grp/enable '0\n'
ok write events/grp/ev/enable 1
is events/grp/ev/enable '1\n'
is events/grp/rev/enable '0\n'
is events/grp/enable 'X\n'
is events/enable 'X\n'
ok write events/grp/rev/enable 1
is events/grp/enable '1\n'
ok write events/grp/enable 0
is events/grp/ev/enable '0\n'
is events/grp/rev/enable '0\n'
is events/grp/enable '0\n'
refused 'Invalid argument' write events/grp/ev/enable 2

is set_event ''
ok write set_event 'grp:ev'
is set_event 'grp:ev\n'
is events/grp/ev/enable '1\n'
is events/grp/rev/enable '0\n'
ok append set_event 'grp:*'
ctl cat set_event | sort >"$TMP/se"
printf 'grp:ev\ngrp:rev\n' | cmp -s - "$TMP/se" || bad "set_event after grp:*: $(tr '\n' '|' <"$TMP/se")"
ok append set_event '!grp:ev'
is set_event 'grp:rev\n'
is events/grp/ev/enable '0\n'
ok write set_event 'other:x'
is set_event 'other:x\n'
is events/grp/enable '0\n'
ok write set_event ''
is set_event ''
is events/enable '0\n'
refused 'Invalid argument' append set_event 'nosuch:event'

# ---- EBUSY while enabled, and -: -------------------------------------------------------------------

ok write events/grp/ev/enable 1
refused 'busy' write kprobe_events 'p:tmp/only work'
refused 'busy' append kprobe_events '-:grp/ev'
is kprobe_events "$EV\n"'r:grp/rev work arg1=$retval'"\n$X\n"
ok write events/grp/ev/enable 0
ok append kprobe_events '-:grp/ev'
is kprobe_events 'r:grp/rev work arg1=$retval'"\n$X\n"
ctl ls events/grp >"$TMP/ls"
grep -q -x 'ev/' "$TMP/ls" && bad "events/grp/ev/ is still listed after -:grp/ev"
refused 'No such file' cat events/grp/ev/enable
ctl cat available_events | grep -q -x 'grp:ev' && bad "available_events still lists grp:ev"
ok append kprobe_events "$EV"
ID_EV=$(ctl cat events/grp/ev/id)

# ---- filter -----------------------------------------------------------------------------------------

is events/grp/ev/filter 'none\n'
ok write events/grp/ev/filter 'a > 1000'
is events/grp/ev/filter 'a > 1000\n'
refused 'Invalid argument' write events/grp/ev/filter 'a >'
# read back: the filter string the kernel stores (error included) and a newline
is events/grp/ev/filter 'a >\n   ^\nparse_error: Invalid value (did you forget quotes)?\n\n'
ctl cat error_log >"$TMP/elog"
tail -3 "$TMP/elog" | sed 's/^\[ *[0-9]*\.[0-9]*\] /[TS] /' >"$TMP/elog3"
printf '[TS] event filter parse error: error: Invalid value (did you forget quotes)?\n  Command: a >\n               ^\n' |
	cmp -s - "$TMP/elog3" || bad "error_log does not end with the filter's error: $(tr '\n' '|' <"$TMP/elog3")"
ok write error_log ''
is error_log ''
ok write events/grp/ev/filter 0
is events/grp/ev/filter 'none\n'
ok write events/grp/ev/filter 'a > 1000'

# ---- trace, trace_pipe, tracing_on, kprobe_profile ----------------------------------------------------

is tracing_on '1\n'
ok write trace ''
ok write events/grp/enable 1
first=$((CALLS + 1))
call 7
# what the events must show, from the program's own log of its calls
awk -v from="$first" -v to="$CALLS" '
	/^work / { n++ }
	/^work / && n >= from && n <= to {
		a = substr($2, 3); s = $0; sub(/^work a=[0-9]+ s=/, "", s); sub(/ ret=0x[0-9a-f]+$/, "", s)
		ret = $NF; sub(/^ret=/, "", ret)
		if (a + 0 > 1000) print "ev: a=" a " s=" (s == "(null)" ? "(fault)" : "\"" s "\"")
		print "rev: arg1=" ret
	}' "$TMP/prog.out" >"$TMP/want.ev"
nwant=$(wc -l <"$TMP/want.ev")
[ "$nwant" -eq 11 ] || fail "expected 11 events (4 filtered ev, 7 rev), computed $nwant"

# event lines -> "ev: fields" (the context and the (…) part dropped)
fields() {
	sed -n -E 's/^ *[^ ]+-[0-9]+ +\[[0-9]+\] [^ ]+ +[0-9]+\.[0-9]+: ([a-z]+): \([^)]*\) /\1: /p' "$1"
}

ctl cat trace >"$TMP/trace1" || bad "cat trace failed"
NCPU=$(getconf _NPROCESSORS_ONLN)
cat >"$TMP/header" <<EOF
# tracer: nop
#
# entries-in-buffer/entries-written: 11/11   #P:$NCPU
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
EOF
head -12 "$TMP/trace1" | cmp -s "$TMP/header" - ||
	bad "trace's header is not the kernel's: $(head -12 "$TMP/trace1" | diff "$TMP/header" - | head -6 | tr '\n' '|')"
tail -n +13 "$TMP/trace1" >"$TMP/lines1"
fields "$TMP/lines1" | cmp -s "$TMP/want.ev" - ||
	bad "trace's events are not the calls': $(fields "$TMP/lines1" | diff "$TMP/want.ev" - | head -6 | tr '\n' '|')"
[ "$(fields "$TMP/lines1" | wc -l)" -eq "$(wc -l <"$TMP/lines1")" ] ||
	bad "trace has lines that are not events: $(tr '\n' '|' <"$TMP/lines1")"
grep -q -E "^ +t3_target-$TPID +\[[0-9]{3}\] " "$TMP/lines1" ||
	bad "the events are not t3_target-$TPID's: $(head -1 "$TMP/lines1")"
ctl cat trace >"$TMP/trace2"
cmp -s "$TMP/trace1" "$TMP/trace2" || bad "a second read of trace differs (trace does not consume)"

# trace_pipe follows until interrupted: give it a second
timeout -s INT -k 5 2 "$SONDE" ctl "$TPID" cat trace_pipe >"$TMP/pipe1" 2>"$TMP/pipe1.err"
cmp -s "$TMP/lines1" "$TMP/pipe1" ||
	bad "trace_pipe's lines are not trace's: $(diff "$TMP/lines1" "$TMP/pipe1" | head -4 | tr '\n' '|') $(cat "$TMP/pipe1.err")"
timeout -s INT -k 5 1 "$SONDE" ctl "$TPID" cat trace_pipe >"$TMP/pipe2" 2>"$TMP/pipe2.err"
[ -s "$TMP/pipe2" ] && bad "a second read of trace_pipe returned lines again: $(head -2 "$TMP/pipe2")"
ctl cat trace >"$TMP/trace3"
grep -q -x -F "# entries-in-buffer/entries-written: 0/0   #P:$NCPU" "$TMP/trace3" ||
	bad "after trace_pipe consumed everything, trace's header says" \
		"'$(grep entries-in "$TMP/trace3")', the kernel's says 0/0"
[ "$(grep -c -v '^#' "$TMP/trace3")" -eq 0 ] || bad "trace still shows consumed events"

ok write tracing_on 0
is tracing_on '0\n'
call 2
ctl cat trace >"$TMP/trace4"
[ "$(grep -c -v '^#' "$TMP/trace4")" -eq 0 ] ||
	bad "events written with tracing_on 0: $(grep -v '^#' "$TMP/trace4" | head -2)"
ok write tracing_on 1
call 1
ctl cat trace >"$TMP/trace5"
awk -v n="$CALLS" '/^work / { k++ } /^work / && k == n { print "rev: arg1=" substr($NF, 5) }' \
	"$TMP/prog.out" >"$TMP/want5"
grep -v '^#' "$TMP/trace5" >"$TMP/lines5"
fields "$TMP/lines5" | cmp -s "$TMP/want5" - ||
	bad "after tracing_on 1: $(tr '\n' '|' <"$TMP/lines5"), want $(cat "$TMP/want5")"

# every hit of an enabled probe counts, filtered out or not, traced or not
hits=$((CALLS - first + 1))
ctl cat kprobe_profile >"$TMP/profile"
printf '  %-44s %15d %15d\n' ev $hits 0 rev $hits 0 x 0 0 | sort >"$TMP/want.profile"
sort "$TMP/profile" | cmp -s "$TMP/want.profile" - ||
	bad "kprobe_profile: $(tr '\n' '|' <"$TMP/profile"), want $(tr '\n' '|' <"$TMP/want.profile")"

# ---- buffer_size_kb, trace_clock, set_event's view ----------------------------------------------------

ok write events/grp/enable 0
is buffer_size_kb '1408\n'
ok write buffer_size_kb 256
is buffer_size_kb '256\n'
refused 'Invalid argument' write buffer_size_kb lots
is buffer_size_kb '256\n'
ctl cat trace_clock >"$TMP/clock"
[ "$(tr -cd '[' <"$TMP/clock" | wc -c)" -eq 1 ] && grep -q '\[local\]' "$TMP/clock" ||
	bad "trace_clock: $(cat "$TMP/clock"), want one [local]"
for c in local global mono boot; do
	grep -q -w "$c" "$TMP/clock" || bad "trace_clock offers no $c: $(cat "$TMP/clock")"
done
ok write trace_clock mono
ctl cat trace_clock >"$TMP/clock"
[ "$(tr -cd '[' <"$TMP/clock" | wc -c)" -eq 1 ] && grep -q '\[mono\]' "$TMP/clock" ||
	bad "trace_clock after 'mono': $(cat "$TMP/clock")"
refused 'Invalid argument' write trace_clock nosuchclock
grep -q '\[mono\]' "$TMP/clock" && ctl cat trace_clock | grep -q '\[mono\]' ||
	bad "trace_clock changed on a bad write: $(ctl cat trace_clock)"
# events still work on the new clock and buffer
ok write events/grp/rev/enable 1
call 1
ctl cat trace | grep -v '^#' >"$TMP/lines6"
[ "$(fields "$TMP/lines6" | grep -c '^rev: ')" -eq 1 ] ||
	bad "after buffer_size_kb and trace_clock: $(tr '\n' '|' <"$TMP/lines6")"
ok write events/grp/rev/enable 0

# ---- the end: the program did what it does alone --------------------------------------------------------

echo exit >&3
i=0
while kill -0 "$TPID" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 200 ] && fail "the target did not exit"
	sleep 0.05
done
TPID=
{
	echo "call 1"
	echo "call 7"
	echo "call 2"
	echo "call 1"
	echo "call 1"
	echo exit
} | "$TARGET" cmd >"$TMP/clean.out"
cmp -s "$TMP/clean.out" "$TMP/prog.out" ||
	bad "the program's output differs from a clean run's: $(diff "$TMP/clean.out" "$TMP/prog.out" | head -4 | tr '\n' '|')"

[ "$FAILS" -eq 0 ] || fail "$FAILS checks failed (above)"
echo "ok: the virtual tracefs answers as the kernel's tracefs does"
exit 0
