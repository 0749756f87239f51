#!/bin/sh
# SPDX-License-Identifier: MIT
# t7004: a real server (issue 7). Debian's redis-server, started by the test
# on loopback with a port and a directory of its own, under load from its
# own benchmark client:
#
#  1. `sonde trace -p PID -e 'p:redis/cmd processCommand c=%di:x64 …'`
#     attaches while the server runs;
#  2. where tracefs mounts (root), a kernel uprobe counts the same calls on
#     the same run: it sits on another instruction of processCommand (the
#     first one at 16 bytes or more from the entry, before any branch,
#     executed exactly once per call), since a kernel uprobe and a sonde
#     probe on the same bytes fight;
#  3. redis-benchmark runs SET and GET; it ends, the counts are read: sonde's
#     hit count (kprobe_profile) equals the kernel's, the events printed
#     equal the hits, and there are at least as many as the commands sent;
#  4. Ctrl-C detaches; the client saw no error (its output, and the
#     server's total_error_replies), the server answers, and its code
#     equals its files on disk.
T=t7004
B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
SRC=${SONDE_SRC:-$(dirname "$0")/../..}
. "$SRC/tests/integration/t7common.inc"
N=${T7004_REQUESTS:-50000}

skip() {
	echo "$T: SKIP: $*" >&2
	exit 77
}
for t in redis-server redis-benchmark redis-cli; do
	command -v $t >/dev/null 2>&1 || skip "$t is not installed (scripts/install-deps.sh installs it)"
done
REDIS=$(command -v redis-server)
# the file itself (Debian's redis-server is a link to redis-check-rdb, which
# chooses its part by its name: run it by the link's name)
REAL=$(readlink -f "$REDIS")

TMP=$(mktemp -d /tmp/$T.XXXXXX) || exit 1
RPID=
SPID=
TRACEFS=
MOUNTED=
GROUP=t7004_$$
cleanup() {
	[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null
	[ -n "$RPID" ] && kill -KILL "$RPID" 2>/dev/null
	if [ -n "$TRACEFS" ]; then
		{ echo 0 >"$TRACEFS/events/$GROUP/enable"; } 2>/dev/null
		{ echo "-:$GROUP/cmd" >>"$TRACEFS/uprobe_events"; } 2>/dev/null
	fi
	if [ -n "$MOUNTED" ]; then
		umount "$MOUNTED" 2>/dev/null && rmdir "$MOUNTED"
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

[ -x "$SONDE" ] || fail "$SONDE is not built"
t7_need_ptrace

# ---- the server ----------------------------------------------------------------------------
PORT=$((20000 + $$ % 20000))
"$REDIS" --port $PORT --bind 127.0.0.1 --dir "$TMP" --save '' --appendonly no \
	--daemonize no --logfile "$TMP/redis.log" &
RPID=$!
n=0
until redis-cli -p $PORT ping 2>/dev/null | grep -q PONG; do
	n=$((n + 1))
	[ $n -gt 100 ] && fail "redis-server did not answer on port $PORT: $(tail -3 "$TMP/redis.log")"
	kill -0 $RPID 2>/dev/null || fail "redis-server died: $(tail -3 "$TMP/redis.log")"
	sleep 0.1
done
"$SONDE" list functions -p $RPID 'processCommand' | grep -qx processCommand ||
	skip "this redis-server exports no processCommand"

# ---- 1. attach ----------------------------------------------------------------------------
"$SONDE" trace -p $RPID -e 'p:redis/cmd processCommand c=%di:x64 comm=$comm:string' \
	>"$TMP/trace.out" 2>"$TMP/trace.err" &
SPID=$!
t7_wait_agent $RPID $SPID || fail "sonde trace -p did not attach: $(cat "$TMP/trace.err")"
n=0
until "$SONDE" ctl $RPID cat kprobe_profile 2>/dev/null | grep -q '^ *cmd '; do
	n=$((n + 1))
	[ $n -gt 100 ] && fail "sonde trace -p did not define its probe: $(cat "$TMP/trace.err")"
	kill -0 $SPID 2>/dev/null || fail "sonde trace -p ended: $(cat "$TMP/trace.err")"
	sleep 0.1
done

# ---- 2. the kernel's count on another instruction of processCommand -------------------------
if [ "$(id -u)" -eq 0 ] && command -v objdump >/dev/null 2>&1 && command -v readelf >/dev/null 2>&1; then
	for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
		[ -w "$d/uprobe_events" ] && TRACEFS=$d && break
	done
	if [ -z "$TRACEFS" ]; then
		MOUNTED=$(mktemp -d /tmp/$T-tracefs.XXXXXX)
		if mount -t tracefs nodev "$MOUNTED" 2>/dev/null; then
			TRACEFS=$MOUNTED
		else
			rmdir "$MOUNTED"
			MOUNTED=
		fi
	fi
	[ -n "$TRACEFS" ] && [ ! -w "$TRACEFS/uprobe_events" ] && TRACEFS=
fi
if [ -n "$TRACEFS" ]; then
	# processCommand's address, and the first instruction 16+ bytes in, before any branch
	addr=$(nm -D --defined-only "$REAL" | awk '$3 == "processCommand" { print $1 }')
	[ -n "$addr" ] || fail "nm finds no processCommand in $REAL"
	at=$(objdump -d --no-show-raw-insn --start-address=0x$addr \
		--stop-address=$(printf '0x%x' $((0x$addr + 64))) "$REAL" | python3 -c '
import re, sys
base = int(sys.argv[1], 16)
for line in sys.stdin:
    m = re.match(r"\s*([0-9a-f]+):\s+(\S+)", line)
    if not m:
        continue
    a, op = int(m.group(1), 16), m.group(2)
    if a - base >= 16:
        print("%x" % a)
        break
    if op.startswith(("j", "call", "ret")):
        break
' $addr)
	[ -n "$at" ] || fail "no straight-line instruction 16 bytes into processCommand"
	# its file offset, from the LOAD segment that holds it
	off=$(readelf -lW "$REAL" | python3 -c '
import sys
a = int(sys.argv[1], 16)
for line in sys.stdin:
    f = line.split()
    if f and f[0] == "LOAD":
        o, v, fs = int(f[1], 16), int(f[2], 16), int(f[4], 16)
        if v <= a < v + fs:
            print("0x%x" % (a - v + o))
            break
' $at)
	[ -n "$off" ] || fail "no LOAD segment holds 0x$at"
	echo "p:$GROUP/cmd $REAL:$off" >>"$TRACEFS/uprobe_events" ||
		fail "the kernel refused p:$GROUP/cmd $REAL:$off"
	echo 1 >"$TRACEFS/events/$GROUP/cmd/enable" || fail "cannot enable the kernel's uprobe"
else
	echo "$T: note: no writable tracefs (not root?): the kernel's count is not compared" >&2
fi

# ---- 3. load ---------------------------------------------------------------------------------
redis-benchmark -h 127.0.0.1 -p $PORT -n $N -c 20 -t set,get -q >"$TMP/bench.out" 2>"$TMP/bench.err"
rc=$?
[ $rc -eq 0 ] || bad "redis-benchmark exited $rc: $(tail -3 "$TMP/bench.err")"
grep -qi error "$TMP/bench.out" "$TMP/bench.err" && bad "redis-benchmark saw errors: $(grep -i error "$TMP/bench.out" "$TMP/bench.err" | head -3)"
tr '\r' '\n' <"$TMP/bench.out" >"$TMP/bench.txt"
grep -q '^SET: [0-9.]* requests per second' "$TMP/bench.txt" &&
	grep -q '^GET: [0-9.]* requests per second' "$TMP/bench.txt" ||
	bad "redis-benchmark did not report SET and GET: $(cat "$TMP/bench.out" "$TMP/bench.err" | tr '\r' '\n' | tail -4)"
sleep 0.2
if [ -n "$TRACEFS" ]; then
	echo 0 >"$TRACEFS/events/$GROUP/cmd/enable"
	# uprobe_profile: "PATH EVENT HITS"
	khits=$(awk '$2 == "cmd" { print $3 }' "$TRACEFS/uprobe_profile" | tail -1)
fi
shits=$("$SONDE" ctl $RPID cat kprobe_profile | awk '$1 == "cmd" { print $2 }')
[ "${shits:-0}" -ge $((2 * N)) ] || bad "sonde counted ${shits:-no} calls of processCommand for $((2 * N)) commands"
if [ -n "$TRACEFS" ]; then
	[ "$shits" = "$khits" ] || bad "sonde counted $shits calls, the kernel's uprobe $khits"
	echo "-:$GROUP/cmd" >>"$TRACEFS/uprobe_events" || bad "cannot remove the kernel's uprobe"
fi

# ---- 4. detach -------------------------------------------------------------------------------
kill -INT $SPID
wait $SPID
rc=$?
SPID=
[ $rc -eq 130 ] || bad "sonde trace -p exited $rc: $(cat "$TMP/trace.err")"
[ -s "$TMP/trace.err" ] && bad "sonde trace -p said: $(cat "$TMP/trace.err")"
lines=$(grep -c ' cmd: (processCommand+0x0/0x[0-9a-f]*) c=0x[0-9a-f]* comm="redis-server"$' "$TMP/trace.out")
lost=$(sed -n 's/.*\[LOST \([0-9]*\) EVENTS\]/\1/p' "$TMP/trace.out" | awk '{ n += $1 } END { print n + 0 }')
[ $((lines + lost)) -eq "${shits:-0}" ] || bad "$lines events printed (+ $lost lost) for $shits hits"
errs=$(redis-cli -p $PORT info stats | tr -d '\r' | sed -n 's/^total_error_replies://p')
[ "${errs:-x}" = 0 ] || bad "the server sent ${errs:-?} error replies"
redis-cli -p $PORT set t7004 ok >/dev/null && [ "$(redis-cli -p $PORT get t7004)" = ok ] ||
	bad "the server does not answer after the detach"
n=0
while cat /proc/$RPID/task/*/comm 2>/dev/null | grep -q '^sonde' && [ $n -lt 100 ]; do
	n=$((n + 1))
	sleep 0.05
done
cat /proc/$RPID/task/*/comm | grep -q '^sonde' && bad "sonde threads remain in the server"
out=$(t7_code_equal $RPID) || bad "the server's code differs from its files:
$out"
echo "$T: $((2 * N)) commands; processCommand: sonde $shits hits, kernel ${khits:-(not compared)}, $lines events printed"
redis-cli -p $PORT shutdown nosave >/dev/null 2>&1
wait $RPID 2>/dev/null
RPID=
[ $FAILS -eq 0 ] || exit 1
echo "$T: ok"
