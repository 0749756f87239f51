#!/bin/sh
# SPDX-License-Identifier: MIT
# t3100-threads: 8 threads, each calling the probed function K times: every
# thread's events are all there, in order, and under loss every thread's
# losses are counted exactly.
#
# The target (tests/targets/evcount K threads 8) starts 8 threads together;
# thread t calls ev_hit(i, t) for i = 0 .. K-1. The probe is
# 'p:g/e ev_hit n=%di:u64 t=%si:u64'. Events are grouped by the tid of
# their line (COMM-TID).
#
# 1. Big buffers (16 MiB per thread, K events need ~4 MiB), in overwrite
#    and in discard mode, with the x86-tsc clock (raw TSC: no two events of
#    a thread share a timestamp) and with the default clock (local, µs):
#    - exactly 8 tids, each with exactly K events, none from the main
#      thread; each tid always carries the same t, and the 8 t are 0..7;
#    - in each thread, n = 0, 1, ..., K-1 in output order, and the
#      timestamps increase strictly (x86-tsc) or never decrease (local);
#    - no LOST line, nothing dropped, sonde exits 0.
#    How often the merged stream goes back in time across threads is
#    printed, not checked: the merge orders what is committed when it
#    looks (see src/trace/ringbuf.c).
# 2. Small buffers (16 KiB per thread) and a reader that stalls, so that
#    the buffers overflow:
#    - overwrite: in each thread, n increases strictly, every gap before
#      an event equals the LOST count printed just before it (a LOST line
#      is reported with the next record of the same buffer), the last
#      event is n = K-1; per thread events + lost == K;
#    - discard: no LOST line; events + dropped == 8 K, and the missing n
#      values of all threads add up to the dropped count.
#    Both must have lost something, or they tested nothing.
#
# Everything runs twice: with breakpoint probes only (SONDE_NOOPT=1) and
# with the engine's choice (a jump-optimized probe on ev_hit).
#
# T3100_THREAD_CALLS=K changes K (default 100000).

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/evcount
K=${T3100_THREAD_CALLS:-100000}
T=8
DEF='p:g/e ev_hit n=%di:u64 t=%si:u64'
TMP=$(mktemp -d /tmp/sonde-t3100-threads.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
FAILED=0

fail() {
	echo "t3100-threads: FAIL: $*" >&2
	FAILED=1
}

[ -x "$SONDE" ] || { fail "$SONDE is not built"; exit 1; }
[ -x "$TARGET" ] || { fail "$TARGET is not built"; exit 1; }

# check FILE WHAT CLOCK(tsc|local) LOSS(none|overwrite|discard) DROPPED
check() {
	res=$(awk -v K="$K" -v T="$T" -v clock="$3" -v loss="$4" -v dropped="$5" '
	function bad(msg) {
		if (nbad++ < 5)
			printf "line %d: %s: %s\n", NR, msg, $0
	}
	/^CPU:[0-9]+ \[LOST [0-9]+ EVENTS\]$/ {
		m = $0
		sub(/^.*LOST /, "", m)
		sub(/ .*$/, "", m)
		lostline = m + 0
		nlostlines++
		next
	}
	/ e: \(ev_hit\+0x0\/0x[0-9a-f]+\) n=[0-9]+ t=[0-9]+$/ {
		task = $1
		tid = task
		sub(/^.*-/, "", tid)
		ts = $0
		sub(/^.*\] [^ ]+ +/, "", ts)
		sub(/:.*$/, "", ts)
		n = $(NF - 1)
		sub(/^n=/, "", n)
		n += 0
		t = $NF
		sub(/^t=/, "", t)
		t += 0
		# the LOST line just before belongs to this record: its buffer
		pend = lostline
		lostline = 0
		if (!(tid in count)) {
			count[tid] = 0
			ntids++
			if (t in tid_of)
				bad("t=" t " also seen in thread " tid_of[t])
			tid_of[t] = tid
			t_of[tid] = t
			gap = n
		} else {
			if (t != t_of[tid])
				bad("thread " tid " had t=" t_of[tid])
			if (n <= last_n[tid])
				bad("n not increasing in thread " tid " (previous " last_n[tid] ")")
			if (clock == "tsc" && ts + 0 <= last_ts[tid] + 0)
				bad("timestamp not increasing in thread " tid " (previous " last_ts[tid] ")")
			if (clock == "local" && ts + 0 < last_ts[tid] + 0)
				bad("timestamp going back in thread " tid " (previous " last_ts[tid] ")")
			gap = n - last_n[tid] - 1
		}
		if (t < 0 || t >= T)
			bad("t out of range")
		if (n < 0 || n >= K)
			bad("n out of range")
		if (loss == "none" && gap != 0)
			bad("expected n=" n - gap " in thread " tid)
		if (loss == "overwrite" && gap != pend)
			bad("gap of " gap " in thread " tid " but LOST said " pend)
		if (pend && loss != "overwrite")
			bad("a LOST line in " loss " mode")
		if (pend)
			nlost[tid] += pend
		if (gap > 0)
			missing += gap
		if (events && ts + 0 < prev_ts + 0)
			backwards++
		prev_ts = ts
		count[tid]++
		last_n[tid] = n
		last_ts[tid] = ts
		events++
		next
	}
	{ bad("neither an event nor a LOST line") }
	END {
		if (lostline)
			bad("a LOST line at the end, with no record after it")
		if (ntids != T)
			bad(ntids " threads seen, expected " T)
		for (tid in count) {
			missing += K - 1 - last_n[tid]
			if (loss != "discard" && last_n[tid] != K - 1)
				bad("thread " tid ": last event n=" last_n[tid] ", expected " K - 1)
			if (loss == "none" && count[tid] != K)
				bad("thread " tid ": " count[tid] " events, expected " K)
			if (loss == "overwrite" && count[tid] + nlost[tid] != K)
				bad("thread " tid ": " count[tid] " events + " nlost[tid] \
				    " lost != " K)
			if (loss == "discard" && nlostlines)
				bad("LOST lines in discard mode")
			lost += nlost[tid]
		}
		if (loss == "discard" && events + dropped != T * K)
			bad(events " events + " dropped " dropped != " T * K)
		if (loss == "discard" && missing != dropped)
			bad(missing " n values missing, but " dropped " dropped")
		if (loss != "none" && lost + dropped == 0)
			bad("nothing was lost: the buffers never overflowed, the run tested nothing")
		printf "%d events in %d threads, %d lost, %d dropped, %d steps back in time " \
		       "across threads\n", events, ntids, lost, dropped, backwards
		exit nbad ? 1 : 0
	}' "$1")
	rc=$?
	if [ "$rc" = 0 ]; then
		echo "ok: $2: $res"
	else
		fail "$2: $(echo "$res" | tr '\n' ';')"
	fi
}

# run_kind KIND: every run, with the probes of KIND (int3: SONDE_NOOPT=1;
# default: the engine's choice)
run_kind() {
	KIND=$1
	case $KIND in
	int3) NOOPT=SONDE_NOOPT=1 ;;
	*) NOOPT=SONDE_NOOPT=0 ;;
	esac

	# ---- 1. big buffers: everything, in order ------------------------------------
	for mode in overwrite discard; do
		opt=
		[ "$mode" = discard ] && opt=--discard
		for clock in x86-tsc local; do
			what="$KIND: $T threads x $K, $mode, clock $clock"
			# shellcheck disable=SC2086 # $opt is empty or one word
			env "$NOOPT" "$SONDE" trace -b 16384 --clock "$clock" $opt -e "$DEF" -- \
				"$TARGET" "$K" threads "$T" >"$TMP/out" 2>"$TMP/err"
			rc=$?
			[ "$rc" = 0 ] || fail "$what: sonde exited $rc: $(cat "$TMP/err")"
			[ -s "$TMP/err" ] && fail "$what: sonde said: $(cat "$TMP/err")"
			case $clock in
			x86-tsc) check "$TMP/out" "$what" tsc none 0 ;;
			*) check "$TMP/out" "$what" local none 0 ;;
			esac
		done
	done

	# ---- 2. small buffers, stalled reader: exact losses per thread ---------------
	for mode in overwrite discard; do
		opt=
		[ "$mode" = discard ] && opt=--discard
		what="$KIND: $T threads x $K, $mode, 16 KiB buffers, slow reader"
		rm -f "$TMP/rc"
		# shellcheck disable=SC2086
		{
			env "$NOOPT" "$SONDE" trace -b 16 --clock x86-tsc $opt -e "$DEF" -- \
				"$TARGET" "$K" threads "$T" 2>"$TMP/err"
			echo $? >"$TMP/rc"
		} | awk 'NR == 1 || NR % 100000 == 0 { system("sleep 0.2") } { print }' >"$TMP/out"
		rc=$(cat "$TMP/rc" 2>/dev/null)
		[ "$rc" = 0 ] || fail "$what: sonde exited ${rc:-?}: $(cat "$TMP/err")"
		dropped=$(sed -n 's/^sonde: \([0-9][0-9]*\) events dropped (buffer full)$/\1/p' "$TMP/err")
		other=$(grep -v '^sonde: [0-9][0-9]* events dropped (buffer full)$' "$TMP/err")
		[ -z "$other" ] || fail "$what: sonde said: $other"
		if [ "$mode" = overwrite ] && [ -n "$dropped" ]; then
			fail "$what: $dropped events dropped in overwrite mode"
		fi
		check "$TMP/out" "$what" tsc "$mode" "${dropped:-0}"
	done
}

run_kind int3
run_kind default

[ "$FAILED" = 0 ] || exit 1
echo "t3100-threads: ok"
