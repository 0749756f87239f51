#!/bin/sh
# SPDX-License-Identifier: MIT
# t3100-crash-flush: a target that crashes after writing N events: all N
# are printed, in order.
#
# The target (tests/targets/evcount N segv|abort) calls ev_hit(i) for
# i = 0 .. N-1 as fast as it can, then stores to NULL (SIGSEGV), calls
# abort() (SIGABRT), or sends itself SIGKILL (no handler runs, in sonde's
# agent or anywhere). Traced with a buffer big enough for all N events
# (each thread's buffer: 16 MiB; N events need ~3 MiB), in overwrite mode
# and in discard mode, by
#   - `sonde trace` (live);
#   - `sonde trace` into a reader that sleeps 1 s before reading: the pipe
#     fills, sonde blocks writing to it, and the program dies with nearly
#     all of its events still unread in the buffer;
#   - `sonde record` + `sonde report` (the file);
#   - `sonde record -o /dev/stdout` into a reader that sleeps 2 s, then
#     `sonde report` of what it saved: the program is dead (a zombie, not
#     yet reaped) for most of the recording, which crosses a second.
# Checks, for each run:
#   - exactly N event lines, with n = 0, 1, ..., N-1 in that order, each
#     at its symbol '(ev_hit+0x0/0x..)' as the kernel prints it (an event
#     printed at a bare address is counted and reported apart); no LOST
#     line, no other line (report: after its header);
#   - sonde exits with the program's status: 128 + the signal (139, 134, 137),
#     as a shell reports a program killed by a signal;
#   - sonde says nothing was dropped; record says it recorded N events.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/evcount
N=${T3100_CRASH_CALLS:-100000}
KB=16384
TMP=$(mktemp -d /tmp/sonde-t3100-crash.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
FAILED=0

fail() {
	echo "t3100-crash-flush: FAIL: $*" >&2
	FAILED=1
}

[ -x "$SONDE" ] || { fail "$SONDE is not built"; exit 1; }
[ -x "$TARGET" ] || { fail "$TARGET is not built"; exit 1; }

# check_events FILE WHAT: FILE holds exactly the N events, in order
check_events() {
	res=$(awk -v N="$N" '
	function bad(msg) {
		if (nbad++ < 3)
			printf "line %d: %s: %s\n", NR, msg, $0
	}
	/ e: \((ev_hit\+0x0\/0x[0-9a-f]+|0x[0-9a-f]+)\) n=[0-9]+$/ {
		n = $NF
		sub(/^n=/, "", n)
		if (n + 0 != events)
			bad("expected n=" events)
		if ($0 ~ / e: \(0x/ && !plain++)
			first_plain = $0
		events++
		next
	}
	{ bad("not an event line") }
	END {
		if (events != N)
			printf "%d events, expected %d\n", events, N
		if (plain)
			printf "%d of the events printed at a bare address, not at ev_hit+0x0 " \
			       "(the first: %s)\n", plain, first_plain
		if (events != N || nbad || plain)
			exit 1
	}' "$1") || {
		fail "$2: $res"
		return 1
	}
	echo "ok: $2: $N events, in order"
}

# check_status WHAT RC WANT ERRFILE
check_status() {
	[ "$2" = "$3" ] || fail "$1: sonde exited $2, expected $3 (the program's status)"
	if grep -q 'dropped' "$4"; then
		fail "$1: $(grep dropped "$4")"
	fi
}

for crash in segv abort kill; do
	case $crash in
	segv) want=139 ;;
	abort) want=134 ;;
	kill) want=137 ;;
	esac
	# the program alone dies as expected
	"$TARGET" 10 "$crash" 2>/dev/null
	rc=$?
	[ "$rc" = "$want" ] || fail "evcount 10 $crash alone exited $rc, expected $want"

	for mode in overwrite discard; do
		opt=
		[ "$mode" = discard ] && opt=--discard
		what="trace $crash $mode"
		# shellcheck disable=SC2086 # $opt is empty or one word
		"$SONDE" trace -b "$KB" $opt -e 'p:g/e ev_hit n=%di:u64' -- "$TARGET" "$N" "$crash" \
			>"$TMP/trace" 2>"$TMP/err"
		rc=$?
		check_status "$what" "$rc" "$want" "$TMP/err"
		check_events "$TMP/trace" "$what"

		what="trace $crash $mode, slow reader"
		rm -f "$TMP/rc"
		# shellcheck disable=SC2086
		{
			"$SONDE" trace -b "$KB" $opt -e 'p:g/e ev_hit n=%di:u64' -- "$TARGET" "$N" \
				"$crash" 2>"$TMP/err"
			echo $? >"$TMP/rc"
		} | {
			sleep 1
			cat >"$TMP/trace"
		}
		check_status "$what" "$(cat "$TMP/rc" 2>/dev/null)" "$want" "$TMP/err"
		check_events "$TMP/trace" "$what"

		what="record+report $crash $mode"
		rm -f "$TMP/f.dat"
		# shellcheck disable=SC2086
		"$SONDE" record -o "$TMP/f.dat" -b "$KB" $opt -e 'p:g/e ev_hit n=%di:u64' -- \
			"$TARGET" "$N" "$crash" >"$TMP/out" 2>"$TMP/err"
		rc=$?
		check_status "$what" "$rc" "$want" "$TMP/err"
		grep -q "^sonde: recorded $N events to " "$TMP/err" ||
			fail "$what: record did not say it recorded $N events: $(cat "$TMP/err")"
		[ -s "$TMP/out" ] && fail "$what: record wrote to stdout: $(head -3 "$TMP/out")"
		if "$SONDE" report --no-header "$TMP/f.dat" >"$TMP/report" 2>"$TMP/err"; then
			check_events "$TMP/report" "$what"
		else
			fail "$what: sonde report failed: $(cat "$TMP/err")"
		fi

		what="record+report $crash $mode, slow writer"
		rm -f "$TMP/f.dat" "$TMP/rc"
		# shellcheck disable=SC2086
		{
			"$SONDE" record -o /dev/stdout -b "$KB" $opt -e 'p:g/e ev_hit n=%di:u64' -- \
				"$TARGET" "$N" "$crash" 2>"$TMP/err"
			echo $? >"$TMP/rc"
		} | {
			sleep 2
			cat >"$TMP/f.dat"
		}
		check_status "$what" "$(cat "$TMP/rc" 2>/dev/null)" "$want" "$TMP/err"
		grep -q "^sonde: recorded $N events to " "$TMP/err" ||
			fail "$what: record did not say it recorded $N events: $(cat "$TMP/err")"
		if "$SONDE" report --no-header "$TMP/f.dat" >"$TMP/report" 2>"$TMP/err"; then
			check_events "$TMP/report" "$what"
		else
			fail "$what: sonde report failed: $(cat "$TMP/err")"
		fi
	done
done
[ "$FAILED" = 0 ] || exit 1
echo "t3100-crash-flush: ok"
