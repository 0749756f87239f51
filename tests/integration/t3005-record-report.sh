#!/bin/sh
# SPDX-License-Identifier: MIT
# t3005: sonde record, then sonde report, prints every event of the run
# with the values the program saw and the times it saw them.
#
# Oracles:
#  - the program's own log (t3_target run, T3_CLOCK set): each call's
#    arguments and result, and CLOCK_MONOTONIC read just before and just
#    after each call of work(). Recorded with --clock mono, the report's
#    timestamp of the call's ev and rev events must lie between the two
#    (to the microsecond the format prints), and that of the step event
#    between that call's end and the next call's start; the events in
#    order, the values exactly the logged ones.
#  - `sonde trace` of another run with the same definitions: the report's
#    text after the timestamp (event name, the (sym+off/size) part, the
#    fields) is the live text.
# Also: the header, --no-header, the default file (sonde.dat), the counts
# on stderr, a recording cut short (what came before the cut is printed,
# the damage reported), a missing file and a file that is no recording.
# T3005_KEEP=1 keeps the files.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t3_target
N=20

TMP=$(mktemp -d /tmp/sonde-t3005.XXXXXX) || exit 1
cleanup() {
	if [ -n "${T3005_KEEP:-}" ]; then
		echo "t3005: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

FAILS=0
fail() {
	echo "t3005: FAIL: $*" >&2
	exit 1
}
bad() {
	echo "t3005: FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
[ "$(uname -m)" = x86_64 ] || { echo "t3005: SKIP: the register names are x86-64's"; exit 77; }

mkdir "$TMP/run" && cd "$TMP/run" || fail "cannot make $TMP/run"

E1='p:grp/ev work a=%di:u64 s=+0(%si):string'
E2='r:grp/rev work $retval'
E3='p:grp/st t3_step n=%di:s64 tag=+0(%si):string'

# ---- record, report -----------------------------------------------------------------------

T3_CLOCK=1 T3_OUT=$TMP/rec.log "$SONDE" record -o "$TMP/f.dat" --clock mono \
	-e "$E1" -e "$E2" -e "$E3" -- "$TARGET" run $N >"$TMP/rec.out" 2>"$TMP/rec.err"
rc=$?
[ $rc -eq 0 ] || fail "sonde record exited $rc: $(tail -3 "$TMP/rec.err")"
[ -s "$TMP/rec.out" ] && bad "sonde record printed on stdout: $(head -2 "$TMP/rec.out")"
M=$((3 * N))
grep -q -x -F "sonde: recorded $M events to $TMP/f.dat" "$TMP/rec.err" ||
	bad "sonde record says '$(cat "$TMP/rec.err")', want 'recorded $M events'"
[ "$(grep -c '^work ' "$TMP/rec.log")" -eq $N ] || fail "the program logged no $N calls"

"$SONDE" report "$TMP/f.dat" >"$TMP/report" 2>"$TMP/report.err"
rc=$?
[ $rc -eq 0 ] || fail "sonde report exited $rc: $(tail -3 "$TMP/report.err")"
grep -q -x -F "sonde: $M events" "$TMP/report.err" ||
	bad "sonde report says '$(cat "$TMP/report.err")', want 'sonde: $M events'"

# the kernel's trace header (the entries line left out: report cannot know it)
cat >"$TMP/header" <<'EOF'
# tracer: nop
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
grep '^#' "$TMP/report" | grep -v '^# entries-in-buffer' | cmp -s "$TMP/header" - ||
	bad "report's header: $(grep '^#' "$TMP/report" | diff "$TMP/header" - | head -4 | tr '\n' '|')"
grep -v '^#' "$TMP/report" >"$TMP/lines"
[ "$(wc -l <"$TMP/lines")" -eq $M ] || bad "the report has $(wc -l <"$TMP/lines") event lines, not $M"

# every line in trace_pipe's format, all of one thread of t3_target
LINE_RE='^ {0,15}t3_target-[0-9]+ +\[[0-9]{3}\] [^ ]{5} +[0-9]+\.[0-9]{6}: (ev|rev|st): \([^)]*\) '
grep -v -E "$LINE_RE" "$TMP/lines" | head -3 >"$TMP/odd"
[ -s "$TMP/odd" ] && bad "lines not in the trace format: $(tr '\n' '|' <"$TMP/odd")"
[ "$(sed -E 's/^ *t3_target-([0-9]+) .*/\1/' "$TMP/lines" | sort -u | wc -l)" -eq 1 ] ||
	bad "the events are not all of one thread"

# values and times against the program's log
awk '
	FILENAME == ARGV[1] {
		if ($1 == "work") {
			k++; s = $0; sub(/^work a=[0-9]+ s=/, "", s); sub(/ ret=0x[0-9a-f]+$/, "", s)
			ev[k] = "ev a=" substr($2, 3) " s=" (s == "(null)" ? "(fault)" : "\"" s "\"")
			rv[k] = "rev arg1=" substr($NF, 5)
		} else if ($1 == "clock") {
			t0[k] = us($2); t1[k] = us($3)
		} else if ($1 == "step") {
			st[k] = "st n=" substr($2, 3) " tag=\"" substr($3, 5) "\""
		}
		next
	}
	function us(t,   p) { p = index(t, "."); return substr(t, 1, p - 1) * 1000000 + int(substr(t, p + 1, 6)) }
	function fail(m) { print "t3005: FAIL: report line " NR - lines0 ": " m ": " $0 > "/dev/stderr"; bad++ }
	FNR == 1 { lines0 = NR - 1 }
	{
		n++; call = int((n - 1) / 3) + 1; kind = (n - 1) % 3
		for (i = 1; i < NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) break
		ts = us(substr($i, 1, length($i) - 1))
		name = $(i + 1); sub(/:$/, "", name)
		rest = $0; sub(/^[^(]*\([^)]*\) /, "", rest)
		got = name " " rest
		want = kind == 0 ? ev[call] : kind == 1 ? rv[call] : st[call]
		if (got != want) fail("want \"" want "\"")
		if (kind < 2 && (ts < t0[call] || ts > t1[call]))
			fail("timestamp not within the call (" t0[call] " to " t1[call] " us)")
		if (kind == 2 && (ts < t1[call] || (call < k && ts > t0[call + 1])))
			fail("timestamp not between this call and the next")
		if (ts < last) fail("timestamps go back")
		last = ts
	}
	END { exit bad > 0 }' "$TMP/rec.log" "$TMP/lines" || bad "the report's events are not the program's calls"

"$SONDE" report --no-header "$TMP/f.dat" >"$TMP/noheader" 2>/dev/null
cmp -s "$TMP/lines" "$TMP/noheader" ||
	bad "report --no-header is not the report's event lines: $(head -2 "$TMP/noheader" | tr '\n' '|')"

# ---- the same text as sonde trace's -------------------------------------------------------

T3_CLOCK=1 T3_OUT=$TMP/live.log "$SONDE" trace -e "$E1" -e "$E2" -e "$E3" -- "$TARGET" run $N \
	>"$TMP/live" 2>"$TMP/live.err" || fail "sonde trace failed: $(tail -3 "$TMP/live.err")"
after_ts() {
	sed -E 's/^ *[^ ]+-[0-9]+ +\[[0-9]+\] [^ ]+ +[0-9]+\.[0-9]+: //' "$1"
}
after_ts "$TMP/live" >"$TMP/live.text"
after_ts "$TMP/lines" >"$TMP/report.text"
cmp -s "$TMP/live.text" "$TMP/report.text" ||
	bad "the report's text differs from sonde trace's:" \
		"$(diff "$TMP/live.text" "$TMP/report.text" | head -4 | tr '\n' '|')"

# ---- the default file, a damaged one, bad ones -----------------------------------------------

T3_OUT=$TMP/def.log "$SONDE" record -e "$E1" -- "$TARGET" run 2 >/dev/null 2>"$TMP/def.err" ||
	bad "sonde record without -o failed: $(cat "$TMP/def.err")"
[ -s sonde.dat ] || bad "sonde record without -o wrote no sonde.dat"
"$SONDE" report >"$TMP/def.report" 2>/dev/null || bad "sonde report without a file failed"
[ "$(grep -c ' ev: ' "$TMP/def.report")" -eq 2 ] ||
	bad "sonde report of sonde.dat: $(grep -v '^#' "$TMP/def.report" | tr '\n' '|')"

size=$(wc -c <"$TMP/f.dat")
head -c $((size - 7)) "$TMP/f.dat" >"$TMP/cut.dat"
"$SONDE" report --no-header "$TMP/cut.dat" >"$TMP/cut" 2>"$TMP/cut.err"
rc=$?
[ $rc -lt 128 ] || bad "sonde report of a cut recording died of signal $((rc - 128))"
ncut=$(wc -l <"$TMP/cut")
[ "$ncut" -ge $((M - 1)) ] && [ "$ncut" -lt $M ] ||
	bad "a recording cut in its last record gives $ncut lines, want $((M - 1))"
head -n "$ncut" "$TMP/lines" | cmp -s - "$TMP/cut" ||
	bad "what the cut recording shows is not the start of the whole one"
grep -q -i 'damaged\|cut short\|truncated' "$TMP/cut.err" ||
	bad "no word about the damage: $(cat "$TMP/cut.err")"

"$SONDE" report "$TMP/nosuch.dat" >/dev/null 2>"$TMP/e1"
rc=$?
[ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q 'No such file' "$TMP/e1" ||
	bad "report of a missing file: status $rc, '$(cat "$TMP/e1")'"
printf 'not a recording\n' >"$TMP/junk.dat"
"$SONDE" report "$TMP/junk.dat" >"$TMP/junk.out" 2>"$TMP/e2"
rc=$?
[ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q 'not a sonde recording' "$TMP/e2" ||
	bad "report of a file that is no recording: status $rc, '$(cat "$TMP/e2")'"
[ -s "$TMP/junk.out" ] && bad "report of junk printed: $(head -2 "$TMP/junk.out")"

[ "$FAILS" -eq 0 ] || fail "$FAILS checks failed (above)"
echo "ok: sonde report shows the $M recorded events with the program's values and times"
exit 0
