#!/bin/sh
# SPDX-License-Identifier: MIT
# t5001-usdt-kernel: the uprobe_events lines sonde makes of USDT probes are
# the kernel's too: same definitions, same values.
#
# Oracle: the kernel's own uprobe_events, as root. The lines of
# `sonde list usdt --defs` for a private copy of t5_usdt (the kernel's
# uprobes act on every process mapping the file), except the scaled-index
# one (+DISP(%base,%index,SCALE) is sonde's extension), are written to the
# kernel's uprobe_events under a group of our own, enabled in a trace
# instance of our own, and the copy runs: the kernel must take every line,
# raise the semaphores (the guarded probe fires), and record the values the
# program logged. Then sonde traces the same probes (u:PATH:t5:*) on
# another run: the same event text, event for event (ASLR off in both runs:
# the pointer arguments are the same). Everything added to tracefs is
# removed, even on failure.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t5_usdt
TMP=$(mktemp -d /tmp/sonde-t5001k.XXXXXX) || exit 1
GROUP=sonde_t5001_$$
TRACEFS=
MOUNTED=
INST=
DEFINED=

cleanup() {
	if [ -n "$INST" ] && [ -d "$INST" ]; then
		echo 0 >"$INST/events/$GROUP/enable" 2>/dev/null
		rmdir "$INST" 2>/dev/null || echo "t5001-usdt-kernel: warning: cannot remove $INST" >&2
	fi
	if [ -n "$DEFINED" ]; then
		for e in $DEFINED; do
			echo "-:$GROUP/$e" >>"$TRACEFS/uprobe_events" 2>/dev/null
		done
		grep -q ":$GROUP/" "$TRACEFS/uprobe_events" 2>/dev/null &&
			echo "t5001-usdt-kernel: warning: could not remove every event of $GROUP" >&2
	fi
	if [ -n "$MOUNTED" ]; then
		umount "$MOUNTED" && rmdir "$MOUNTED" ||
			echo "t5001-usdt-kernel: warning: could not unmount $MOUNTED" >&2
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "t5001-usdt-kernel: FAIL: $*" >&2
	exit 1
}
skip() {
	echo "t5001-usdt-kernel: SKIP: $*"
	exit 77
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
command -v readelf >/dev/null 2>&1 || skip "readelf is not installed"
readelf -n "$TARGET" | grep -q 'Provider: t5' || skip "$TARGET has no USDT probes"
[ "$(uname -m)" = x86_64 ] || skip "the register names are x86-64's"
[ "$(id -u)" -eq 0 ] || skip "the kernel's uprobe_events need root"
command -v setarch >/dev/null 2>&1 && setarch x86_64 -R true 2>/dev/null ||
	skip "setarch x86_64 -R does not work here"

for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
	if [ -w "$d/uprobe_events" ]; then
		TRACEFS=$d
		break
	fi
done
if [ -z "$TRACEFS" ]; then
	MOUNTED=$(mktemp -d /tmp/sonde-t5001k-tracefs.XXXXXX) || fail "mktemp"
	if ! mount -t tracefs nodev "$MOUNTED" 2>/dev/null; then
		rmdir "$MOUNTED"
		MOUNTED=
		skip "no tracefs here and it does not mount"
	fi
	TRACEFS=$MOUNTED
fi
[ -w "$TRACEFS/uprobe_events" ] || skip "this kernel has no uprobe_events"
grep -q 'ref_ctr_offset' "$TRACEFS/README" 2>/dev/null ||
	skip "this kernel's uprobe_events take no reference counters (semaphores)"

BIN=$TMP/t5_usdt
cp "$TARGET" "$BIN" || fail "cannot copy $TARGET"
"$SONDE" list usdt --defs "$BIN" >"$TMP/defs" 2>"$TMP/err" || fail "--defs failed: $(cat "$TMP/err")"
grep -v ',%' "$TMP/defs" | sed "s|^p:sdt_t5/|p:$GROUP/|" >"$TMP/kdefs"
[ "$(wc -l <"$TMP/kdefs")" -eq 4 ] || fail "expected 4 probes without a scaled index: $(cat "$TMP/kdefs")"
NAMES=$(sed 's|^p:[^/]*/\([a-z]*\) .*|\1|' "$TMP/kdefs" | tr '\n' ' ')

# events FILE: "EVENT: FIELDS" of the probes the kernel can take
events() {
	sed -n 's/^.* \([a-z]*\): (0x[0-9a-f]*) /\1: /p' "$1" | grep -v '^sib: '
}

# ---- the kernel ----------------------------------------------------------------------
while read -r def; do
	printf "%s\n" "$def" >>"$TRACEFS/uprobe_events" ||
		fail "the kernel refused '$def': $(tail -3 "$TRACEFS/error_log" 2>/dev/null)"
	DEFINED="$DEFINED $(printf "%s\n" "$def" | sed 's|^p:[^/]*/\([a-z]*\) .*|\1|')"
done <"$TMP/kdefs"
INST=$TRACEFS/instances/$GROUP
mkdir "$INST" || fail "cannot make the trace instance $INST"
echo 1 >"$INST/events/$GROUP/enable" || fail "cannot enable the kernel's events"
T5_OUT=$TMP/kernel.log setarch x86_64 -R "$BIN" run 4
krc=$?
echo 0 >"$INST/events/$GROUP/enable"
cat "$INST/trace" >"$TMP/kernel.trace"
[ $krc -eq 0 ] || fail "the program failed under the kernel's uprobes (status $krc)"
rmdir "$INST" || fail "cannot remove $INST"
INST=
for e in $DEFINED; do
	echo "-:$GROUP/$e" >>"$TRACEFS/uprobe_events" || fail "cannot remove the kernel's $e"
done
DEFINED=

grep -v -e '^sem=' -e '^round ' -e '^sib: ' "$TMP/kernel.log" >"$TMP/kernel.want"
[ "$(grep -c '^guarded: ' "$TMP/kernel.want")" -eq 4 ] ||
	fail "under the kernel the guarded probe did not fire: the semaphore offset is wrong"
events "$TMP/kernel.trace" >"$TMP/kernel.got"
if ! cmp -s "$TMP/kernel.got" "$TMP/kernel.want"; then
	echo "--- the program, +++ the kernel:" >&2
	diff -u "$TMP/kernel.want" "$TMP/kernel.got" >&2
	fail "the kernel's events of sonde's lines differ from what the program passed"
fi
echo "ok: the kernel takes sonde's lines for $NAMES and records the program's values"

# ---- sonde, the same probes --------------------------------------------------------------
T5_OUT=$TMP/sonde.log setarch x86_64 -R "$SONDE" trace -e "u:$BIN:t5:*" -- "$BIN" run 4 \
	>"$TMP/sonde.trace" \
	2>"$TMP/err" || fail "sonde trace failed: $(cat "$TMP/err")"
events "$TMP/sonde.trace" >"$TMP/sonde.got"
if ! cmp -s "$TMP/sonde.got" "$TMP/kernel.got"; then
	echo "--- the kernel, +++ sonde:" >&2
	diff -u "$TMP/kernel.got" "$TMP/sonde.got" >&2
	fail "sonde's events differ from the kernel's"
fi
echo "ok: sonde's events equal the kernel's, $(wc -l <"$TMP/sonde.got") of them"
exit 0
