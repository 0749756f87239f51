#!/bin/sh
# SPDX-License-Identifier: MIT
# t3100-lost-exact: 10^7 calls, one event each: events + lost == 10^7
# exactly, in overwrite mode and in discard mode.
#
# The target (tests/targets/evcount) calls ev_hit(i) for i = 0 .. N-1 and
# prints nothing. `sonde trace -b 16 -e 'p:g/e ev_hit n=%di:u64'` traces it
# with a small buffer, into a reader (awk) that stalls for a moment at the
# start and now and then, so that the buffer surely fills (the pipe fills,
# sonde blocks writing to it, the program runs on). The reader counts:
#   events     lines 'e: ... n=I'
#   lost       the sum of M over the kernel's 'CPU:N [LOST M EVENTS]' lines
#   dropped    'sonde: D events dropped (buffer full)' on sonde's stderr
# and checks, for both modes:
#   - events + lost + dropped == N, and the loss was not zero (the run
#     tested something);
#   - the n values are strictly increasing (nothing duplicated, nothing
#     out of order), each is in [0, N);
#   - the n values missing (before the first, between two, after the last)
#     add up to lost + dropped: the counts name exactly what is missing;
# and in overwrite mode also:
#   - every gap between two events (and before the first) equals the LOST
#     count printed just before the event, nothing is missing after the
#     last event (the newest events survive), and nothing is dropped;
# and in discard mode:
#   - no LOST line: discard mode never overwrites.
# Every line must be an event or a LOST line; sonde and the program exit 0.
#
# Then the same for `sonde record -o /dev/stdout` into a reader that
# sleeps at the start, and `sonde report` of what it saved (N_REC calls,
# 10^6): the same checks on the report, and record's own summary
# ('recorded R events ... (L lost)') must agree with it. Events printed at
# a bare address instead of ev_hit+0x0 are accepted here (t3100-crash-flush
# checks symbols after the program's end).
#
# Everything runs twice: with breakpoint probes only (SONDE_NOOPT=1,
# ~1.4 µs a hit) and with the engine's choice (ev_hit's first instructions
# can take a jump: an optimized probe, ~10x faster, so the buffer overflows
# much more).
#
# T3100_CALLS=N changes N (default 10000000), for a quicker run by hand.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/evcount
N=${T3100_CALLS:-10000000}
N_REC=1000000
[ "$N" -lt "$N_REC" ] && N_REC=$N
KB=16
DEF='p:g/e ev_hit n=%di:u64'
TMP=$(mktemp -d /tmp/sonde-t3100-lost.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

fail() {
	echo "t3100-lost-exact: FAIL: $*" >&2
	exit 1
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"

# check_stream MODE CALLS STALL: reads sonde's output on stdin, prints
# 'bad: ...' lines and last 'summary EVENTS LOST LOSTLINES MISSING BAD'
check_stream() {
	awk -v mode="$1" -v N="$2" -v stall="$3" '
	function bad(msg) {
		if (nbad++ < 5)
			print "bad: line " NR ": " msg ": " $0
	}
	# stall now and then: the pipe fills, sonde blocks, the buffer overflows
	stall && (NR == 1 || NR % 1000000 == 0) { system("sleep 0.3") }
	/^CPU:[0-9]+ \[LOST [0-9]+ EVENTS\]$/ {
		m = $0
		sub(/^.*LOST /, "", m)
		sub(/ .*$/, "", m)
		if (m + 0 <= 0)
			bad("LOST count not positive")
		lost += m
		pending += m
		nlostlines++
		next
	}
	/ e: \((ev_hit\+0x0\/0x[0-9a-f]+|0x[0-9a-f]+)\) n=[0-9]+$/ {
		if (stall && $0 ~ / e: \(0x/)
			bad("not at its symbol ev_hit+0x0")
		n = $NF
		sub(/^n=/, "", n)
		n += 0
		if (n < 0 || n >= N)
			bad("n out of range")
		if (events && n <= prev)
			bad("n not increasing (previous " prev ")")
		gap = events ? n - prev - 1 : n
		if (gap > 0)
			missing += gap
		if (mode == "overwrite" && gap != pending)
			bad("gap of " gap " before this event, LOST said " pending)
		events++
		prev = n
		pending = 0
		next
	}
	{ bad("neither an event nor a LOST line") }
	END {
		if (events)
			missing += N - 1 - prev
		else
			missing = N
		if (pending)
			bad("a LOST line at the end, with no event after it")
		if (mode == "overwrite" && events && prev != N - 1)
			bad("the last event is n=" prev ", not the last call (" N - 1 ")")
		printf "summary %d %d %d %d %d\n", events, lost, nlostlines, missing, nbad
	}'
}

# verify WHAT MODE CALLS OUTFILE ERRFILE RC: the checks on check_stream's
# summary and sonde's stderr; sets events, lost, dropped
verify() {
	what=$1 vmode=$2 calls=$3 outf=$4 errf=$5 rc=$6
	[ "$rc" = 0 ] || fail "$what: sonde exited ${rc:-?}: $(cat "$errf")"
	read -r word events lost lostlines missing bad <<EOF
$(tail -n 1 "$outf")
EOF
	[ "$word" = summary ] || fail "$what: the reader printed no summary: $(cat "$outf")"
	dropped=$(sed -n 's/^sonde: \([0-9][0-9]*\) events dropped (buffer full)$/\1/p' "$errf")
	dropped=${dropped:-0}
	other=$(grep -v -e '^sonde: [0-9][0-9]* events dropped (buffer full)$' \
		-e '^sonde: recorded [0-9]* events to ' "$errf")
	[ -z "$other" ] || fail "$what: unexpected messages from sonde: $other"
	echo "$what: N=$calls events=$events lost=$lost (in $lostlines LOST lines)" \
		"dropped=$dropped, $((t1 - t0)) s"
	if [ "$bad" != 0 ]; then
		grep '^bad:' "$outf" >&2
		fail "$what: $bad wrong line(s) in the output"
	fi
	[ $((events + lost + dropped)) -eq "$calls" ] ||
		fail "$what: events + lost + dropped = $events + $lost + $dropped =" \
			"$((events + lost + dropped)), not $calls"
	[ "$missing" -eq $((lost + dropped)) ] ||
		fail "$what: $missing call numbers are missing from the output, but" \
			"lost + dropped = $((lost + dropped))"
	[ $((lost + dropped)) -gt 0 ] ||
		fail "$what: nothing was lost: the buffer never filled, the test tested nothing"
	if [ "$vmode" = overwrite ]; then
		[ "$dropped" -eq 0 ] || fail "$what: $dropped events dropped (expected 0)"
	else
		[ "$lostlines" -eq 0 ] || fail "$what: $lostlines LOST lines (expected none)"
	fi
}

# trace MODE [--discard]
trace() {
	mode=$1
	shift
	rm -f "$TMP/rc"
	t0=$(date +%s)
	{
		env "$NOOPT" "$SONDE" trace -b "$KB" "$@" -e "$DEF" -- "$TARGET" "$N" 2>"$TMP/err"
		echo $? >"$TMP/rc"
	} | check_stream "$mode" "$N" 1 >"$TMP/out"
	t1=$(date +%s)
	verify "$KIND: trace $mode" "$mode" "$N" "$TMP/out" "$TMP/err" "$(cat "$TMP/rc" 2>/dev/null)"
}

# record MODE [--discard]
record() {
	mode=$1
	shift
	rm -f "$TMP/rc" "$TMP/f.dat"
	t0=$(date +%s)
	{
		env "$NOOPT" "$SONDE" record -o /dev/stdout -b "$KB" "$@" -e "$DEF" -- "$TARGET" "$N_REC" \
			2>"$TMP/err"
		echo $? >"$TMP/rc"
	} | {
		sleep 1
		cat >"$TMP/f.dat"
	}
	"$SONDE" report --no-header "$TMP/f.dat" 2>"$TMP/report.err" |
		check_stream "$mode" "$N_REC" 0 >"$TMP/out"
	t1=$(date +%s)
	verify "$KIND: record+report $mode" "$mode" "$N_REC" "$TMP/out" "$TMP/err" \
		"$(cat "$TMP/rc" 2>/dev/null)"
	# record's summary: 'sonde: recorded R events to F' + ' (L lost)'
	sum=$(grep '^sonde: recorded ' "$TMP/err")
	rec=$(echo "$sum" | sed -n 's/^sonde: recorded \([0-9]*\) events to .*/\1/p')
	rlost=$(echo "$sum" | sed -n 's/.* (\([0-9]*\) lost)$/\1/p')
	if [ "$rec" != "$events" ] || [ "${rlost:-0}" != "$lost" ]; then
		fail "$KIND: record+report $mode: record said '$sum', the report has $events events" \
			"and $lost lost"
	fi
}

for KIND in int3 default; do
	case $KIND in
	int3) NOOPT=SONDE_NOOPT=1 ;;
	*) NOOPT=SONDE_NOOPT=0 ;;
	esac
	trace overwrite
	trace discard --discard
	record overwrite
	record discard --discard
done
echo "t3100-lost-exact: ok"
