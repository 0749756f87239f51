#!/bin/sh
# SPDX-License-Identifier: MIT
# t5101: static tracepoints (TRACE_EVENT + jump labels) through the CLI.
#
# libtpsample.so declares its events the kernel's way (tpsample_trace.h:
# an int field, a string, fixed and dynamic arrays, a class with two
# events); tpsample_prog uses it and, on request, dlopen()s libtpdl.so.
#   - built with tracepoints, nothing of sonde is needed: no libsonde in
#     `ldd`, no NEEDED entry, the program runs and prints what it prints;
#   - `sonde trace -e 'tpsample:*'`: every record with its values, printed
#     with its TP_printk (numbers, strings, NULL as "(null)", __print_array,
#     __print_flags, __print_symbolic, ?:), the program's own pid, and its
#     output the same as without sonde;
#   - `-e tpsample:tps_str --filter 'len > 4'`: the filter on the fields;
#   - the virtual tracefs while the program waits: available_events,
#     events/tpsample/tps_array/{format,id,enable}, the format laid out as
#     the kernel's own format files (compared line by line with
#     /sys/kernel/tracing/events/sched/sched_switch/format when it is there);
#   - a library opened with dlopen() after tracing started: its event is in
#     available_events at once, enabled by hand, and its record printed;
#   - sonde record + sonde report: the same text from the file.
# T5101_KEEP=1 keeps the files.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TB=$B/tests/targets
PROG=$TB/tpsample_prog

TMP=$(mktemp -d /tmp/sonde-t5101.XXXXXX) || exit 1
SPID=
cleanup() {
	[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null
	if [ -n "${T5101_KEEP:-}" ]; then
		echo "t5101: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

FAILS=0
fail() {
	echo "t5101: FAIL: $*" >&2
	exit 1
}
bad() {
	echo "t5101: FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$PROG" ] && [ -f "$TB/libtpsample.so" ] && [ -f "$TB/libtpdl.so" ] ||
	fail "the tpsample targets are not built (tests/targets/tpsample.cmake)"

# the event text of trace lines: "name: text"
events_of() {
	sed -n -E 's/^ *.+-[0-9]+ +\[[0-9]+\] [^ ]+ +[0-9.]+: //p' "$1"
}

# ---- no sonde needed -------------------------------------------------------------------

ldd "$PROG" > "$TMP/ldd" 2>&1 || fail "ldd $PROG"
grep -q libsonde "$TMP/ldd" && bad "tpsample_prog depends on libsonde: $(cat "$TMP/ldd")"
for o in "$PROG" "$TB/libtpsample.so" "$TB/libtpdl.so"; do
	readelf -d "$o" | grep NEEDED | grep -q sonde && bad "$o has libsonde as NEEDED"
done
for o in "$TB/libtpsample.so" "$TB/libtpdl.so"; do
	readelf -S -W "$o" | grep -q __sonde_tracepoints || bad "$o has no __sonde_tracepoints"
	# nothing but data: no symbol of sonde's is needed
	nm -D --undefined-only "$o" | grep -q sonde && bad "$o needs a sonde symbol"
done
"$PROG" run 5 > "$TMP/plain.out" 2>&1 || bad "tpsample_prog without sonde: status $?"
[ "$(cat "$TMP/plain.out")" = "tpsample: 5 rounds" ] ||
	bad "tpsample_prog without sonde printed: $(cat "$TMP/plain.out")"

# ---- every event, printed with TP_printk ------------------------------------------------

"$SONDE" trace -o "$TMP/all.trace" -e 'tpsample:*' -- "$PROG" run 5 > "$TMP/all.out" 2> "$TMP/all.err"
st=$?
[ $st -eq 0 ] || bad "sonde trace -e 'tpsample:*': status $st: $(cat "$TMP/all.err")"
cmp -s "$TMP/plain.out" "$TMP/all.out" || bad "the program's output differs under sonde"
events_of "$TMP/all.trace" > "$TMP/all.events"
cat > "$TMP/all.want" <<'EOF'
tps_int: value=-4 seq=1 odd=no
tps_str: name=alpha len=5
tps_array: first={7,11,0,0} n=2 all={0x7,0xb}
tps_enter: flags= state=idle
tps_leave: flags= state=idle
tps_int: value=-1 seq=2 odd=yes
tps_str: name=beta len=4
tps_array: first={7,11,13,0} n=3 all={0x7,0xb,0xd}
tps_enter: flags=READ state=busy
tps_leave: flags=READ state=busy
tps_int: value=2 seq=3 odd=no
tps_str: name=alpha len=5
tps_array: first={7,11,13,17} n=4 all={0x7,0xb,0xd,0x11}
tps_enter: flags=WRITE state=idle
tps_leave: flags=WRITE state=idle
tps_int: value=5 seq=4 odd=yes
tps_str: name=beta len=4
tps_array: first={7,11,13,17} n=5 all={0x7,0xb,0xd,0x11,0x13}
tps_enter: flags=READ|WRITE state=busy
tps_leave: flags=READ|WRITE state=busy
tps_int: value=8 seq=5 odd=no
tps_str: name=alpha len=5
tps_array: first={7,11,13,17} n=6 all={0x7,0xb,0xd,0x11,0x13,0x17}
tps_enter: flags=SYNC state=idle
tps_leave: flags=SYNC state=idle
tps_str: name=(null) len=-1
EOF
if ! cmp -s "$TMP/all.want" "$TMP/all.events"; then
	bad "tpsample:* records:"
	diff "$TMP/all.want" "$TMP/all.events" >&2
fi
# the context columns: the program's name and one pid for all
pids=$(sed -n -E 's/^ *tpsample_prog-([0-9]+) .*/\1/p' "$TMP/all.trace" | sort -u | wc -l)
[ "$pids" -eq 1 ] || bad "records of $pids pids (or not named tpsample_prog)"

# ---- one event, filtered ----------------------------------------------------------------

"$SONDE" trace -o "$TMP/f.trace" -e tpsample:tps_str --filter 'len > 4' -- "$PROG" run 4 \
	> /dev/null 2> "$TMP/f.err" || bad "sonde trace --filter: $(cat "$TMP/f.err")"
events_of "$TMP/f.trace" > "$TMP/f.events"
printf 'tps_str: name=alpha len=5\ntps_str: name=alpha len=5\n' > "$TMP/f.want"
cmp -s "$TMP/f.want" "$TMP/f.events" || bad "filtered: $(cat "$TMP/f.events")"

# ---- the tracefs, and a library opened later --------------------------------------------

mkdir "$TMP/sync"
"$SONDE" trace -o "$TMP/dl.trace" -e 'tpsample:tps_int' -- \
	"$PROG" dlopen "$TB/libtpdl.so" "$TMP/sync" > "$TMP/dl.out" 2> "$TMP/dl.err" &
SPID=$!
i=0
while [ ! -f "$TMP/sync/ready" ] && [ $i -lt 300 ]; do
	sleep 0.05
	i=$((i + 1))
done
[ -f "$TMP/sync/ready" ] || fail "tpsample_prog did not get ready: $(cat "$TMP/dl.err")"
PID=$(cat "$TMP/sync/ready")

"$SONDE" ctl "$PID" cat available_events > "$TMP/avail" || bad "ctl cat available_events"
for ev in tpsample:tps_int tpsample:tps_str tpsample:tps_array tpsample:tps_enter \
	tpsample:tps_leave tpdl:tpdl_hello; do
	grep -qx "$ev" "$TMP/avail" || bad "$ev not in available_events"
done
"$SONDE" ctl "$PID" ls events/tpsample/tps_array > "$TMP/ls" 2>&1
for f in enable filter format id; do
	grep -qx "$f" "$TMP/ls" || bad "events/tpsample/tps_array has no $f"
done
ID=$("$SONDE" ctl "$PID" cat events/tpsample/tps_array/id)
"$SONDE" ctl "$PID" cat events/tpsample/tps_array/format > "$TMP/format" || bad "ctl cat format"
printf '%s\n' "name: tps_array" "ID: $ID" "format:" \
	"	field:unsigned short common_type;	offset:0;	size:2;	signed:0;" \
	"	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;" \
	"	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;" \
	"	field:int common_pid;	offset:4;	size:4;	signed:1;" \
	"" \
	"	field:unsigned int first[4];	offset:8;	size:16;	signed:0;" \
	"	field:int n;	offset:24;	size:4;	signed:1;" \
	"	field:__data_loc unsigned int[] all;	offset:28;	size:4;	signed:0;" \
	"" \
	'print fmt: "first={%u,%u,%u,%u} n=%d all=%s", REC->first[0], REC->first[1], REC->first[2], REC->first[3], REC->n, __print_array(__get_dynamic_array(all), __get_dynamic_array_len(all) / sizeof(unsigned int), sizeof(unsigned int))' \
	> "$TMP/format.want"
if ! cmp -s "$TMP/format.want" "$TMP/format"; then
	bad "tps_array format:"
	diff "$TMP/format.want" "$TMP/format" >&2
fi
# the kernel's own layout: the same header lines, blank lines, field line shape, print fmt
K=/sys/kernel/tracing/events/sched/sched_switch/format
if [ -r "$K" ]; then
	shape() {
		sed -E -e 's/^name: .*/name: N/' -e 's/^ID: [0-9]+$/ID: I/' \
			-e 's/^\tfield:.* (common_[a-z_]+);\toffset:([0-9]+);\tsize:([0-9]+);\tsigned:([01]);$/C \1 \2 \3 \4/' \
			-e 's/^\tfield:[^;]+ [a-z_]+(\[[0-9]*\])?;\toffset:[0-9]+;\tsize:[0-9]+;\tsigned:[01];$/F/' \
			-e 's/^print fmt: ".*$/P/' "$1" | uniq
	}
	shape "$K" > "$TMP/k.shape"
	shape "$TMP/format" > "$TMP/s.shape"
	if ! cmp -s "$TMP/k.shape" "$TMP/s.shape"; then
		bad "the format file's layout differs from the kernel's ($K):"
		diff "$TMP/k.shape" "$TMP/s.shape" >&2
	fi
	grep -q '^C common_pid 4 4 1$' "$TMP/k.shape" || bad "unexpected kernel format: $K"
else
	echo "t5101: $K not readable: format compared with the expected text only" >&2
fi
"$SONDE" ctl "$PID" cat events/tpsample/tps_array/enable | grep -qx 0 || bad "tps_array enabled?"
"$SONDE" ctl "$PID" cat events/tpsample/tps_int/enable | grep -qx 1 || bad "tps_int not enabled"
# the dlopen()ed library's event: on by hand, then the program goes on
"$SONDE" ctl "$PID" write events/tpdl/tpdl_hello/enable 1 || bad "enable tpdl_hello"
touch "$TMP/sync/go"
wait "$SPID"
st=$?
SPID=
[ $st -eq 0 ] || bad "sonde trace (dlopen): status $st: $(cat "$TMP/dl.err")"
events_of "$TMP/dl.trace" > "$TMP/dl.events"
printf 'tpdl_hello: round=2 who=after\ntps_int: value=42 seq=1 odd=no\n' > "$TMP/dl.want"
if ! cmp -s "$TMP/dl.want" "$TMP/dl.events"; then
	bad "dlopen()ed library's records:"
	diff "$TMP/dl.want" "$TMP/dl.events" >&2
fi
grep -q "tpsample: dlopen done" "$TMP/dl.out" || bad "the program did not finish: $(cat "$TMP/dl.out")"

# ---- an event of a library not loaded yet, asked for by name -------------------------------

mkdir "$TMP/sync2" && touch "$TMP/sync2/go"
"$SONDE" trace -o "$TMP/pend.trace" -e 'tpdl:*' -- \
	"$PROG" dlopen "$TB/libtpdl.so" "$TMP/sync2" > "$TMP/pend.out" 2> "$TMP/pend.err" ||
	bad "sonde trace -e 'tpdl:*' before the library is loaded: $(cat "$TMP/pend.err")"
grep -q "no event tpdl:\* yet" "$TMP/pend.err" || bad "nothing said of the pending event: $(cat "$TMP/pend.err")"
events_of "$TMP/pend.trace" > "$TMP/pend.events"
printf 'tpdl_hello: round=1 who=before\ntpdl_hello: round=2 who=after\n' > "$TMP/pend.want"
if ! cmp -s "$TMP/pend.want" "$TMP/pend.events"; then
	bad "events of a library loaded after they were asked for:"
	diff "$TMP/pend.want" "$TMP/pend.events" >&2
fi
# the same when the program exits right after its library's events: their
# format is still learnt (the agent lets the reader ask before it goes)
"$SONDE" trace -o "$TMP/quick.trace" -e 'tpdl:*' -- "$PROG" dlquick "$TB/libtpdl.so" 3 \
	> /dev/null 2> "$TMP/quick.err" || bad "sonde trace, dlquick: $(cat "$TMP/quick.err")"
events_of "$TMP/quick.trace" > "$TMP/quick.events"
printf 'tpdl_hello: round=%d who=quick\n' 0 1 2 > "$TMP/quick.want"
if ! cmp -s "$TMP/quick.want" "$TMP/quick.events"; then
	bad "events of a library a program loaded just before exiting:"
	diff "$TMP/quick.want" "$TMP/quick.events" >&2
fi

# ---- a probe on a library before it is loaded -----------------------------------------------
# as the kernel's uprobes wait for their file: the USDT probe tpdl:hello of
# libtpdl.so, asked for by path before the program dlopen()s the library
# (its sites become uprobe_events PATH:OFFSET lines), is placed when it is
# loaded, with its semaphore raised: the probe fires only while it is
if readelf -n "$TB/libtpdl.so" 2>/dev/null | grep -q 'Name: hello'; then
	"$SONDE" trace -o "$TMP/upend.trace" -e "u:$TB/libtpdl.so:tpdl:hello" -- \
		"$PROG" dlquick "$TB/libtpdl.so" 3 > /dev/null 2> "$TMP/upend.err" ||
		bad "sonde trace, USDT of a library loaded later: $(cat "$TMP/upend.err")"
	grep -q "libtpdl.so is not loaded yet" "$TMP/upend.err" ||
		bad "nothing said of the library that is not loaded yet: $(cat "$TMP/upend.err")"
	events_of "$TMP/upend.trace" | sed -E 's/^(hello: )\(0x[0-9a-f]+\) (arg1=[0-9]+) .*/\1\2/' \
		> "$TMP/upend.events"
	printf 'hello: arg1=%d\n' 0 1 2 > "$TMP/upend.want"
	if ! cmp -s "$TMP/upend.want" "$TMP/upend.events"; then
		bad "USDT probe of a library loaded after it was asked for:"
		diff "$TMP/upend.want" "$TMP/upend.events" >&2
	fi
else
	echo "t5101: note: libtpdl.so was built without <sys/sdt.h> (systemtap-sdt-dev):" \
		"no USDT probe of a library loaded later to test"
fi

# ---- record and report --------------------------------------------------------------------

"$SONDE" record -o "$TMP/run.dat" -e tpsample:tps_array -e tpsample:tps_enter -- "$PROG" run 2 \
	> /dev/null 2> "$TMP/rec.err" || bad "sonde record: $(cat "$TMP/rec.err")"
"$SONDE" report "$TMP/run.dat" > "$TMP/report" 2> /dev/null || bad "sonde report"
events_of "$TMP/report" > "$TMP/report.events"
printf '%s\n' "tps_array: first={7,11,0,0} n=2 all={0x7,0xb}" "tps_enter: flags= state=idle" \
	"tps_array: first={7,11,13,0} n=3 all={0x7,0xb,0xd}" "tps_enter: flags=READ state=busy" \
	> "$TMP/report.want"
if ! cmp -s "$TMP/report.want" "$TMP/report.events"; then
	bad "sonde report:"
	diff "$TMP/report.want" "$TMP/report.events" >&2
fi

[ $FAILS -eq 0 ] || exit 1
echo "t5101: ok"
exit 0
