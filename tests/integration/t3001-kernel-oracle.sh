#!/bin/sh
# SPDX-License-Identifier: MIT
# t3001: sonde's trace events carry the kernel's field values and counts.
#
# Oracle: the kernel's own uprobe_events, as root, on a tracefs (the
# mounted one, or one mounted here for the test and unmounted after). The
# same three definitions:
#   p:GRP/ev  work a=%di:u64 s=+0(%si):string     (u64, strings, a NULL one)
#   r:GRP/rev work $retval                         (return values, -1 too)
#   p:GRP/flt t3_step n=%di:s64 tag=+0(%si):string    with a filter on a signed
#             field and a string glob: (n >= -1 && tag ~ "g*") || n == -3
# on three separate runs of one deterministic program (a kernel uprobe and
# a sonde probe on one instruction fight over the byte):
#   1. the kernel's uprobe_events (PATH:OFFSET, file offsets computed from
#      nm and the PT_LOAD program headers), recorded in a trace instance of
#      our own;
#   2. sonde trace with the kprobe_events form (SYM);
#   3. sonde trace with the uprobe_events form (the kernel's lines verbatim).
# The events must be the same, in the same order, with the same text after
# the "EVENT: (…) " prefix. The "(…)" part is checked too: with ASLR off the
# uprobe form prints the kernel's addresses exactly; the kprobe form prints
# sym+off/size (work+0x0/SIZE with nm's size, and "<- work" on return).
# The program is a private copy (the kernel's uprobes act on every process
# that maps the file: no other test's runs are touched), its output must be
# the same in every run, and everything added to tracefs is removed, even
# on failure. T3001_KEEP=1 keeps the files.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t3_target
N=14 # rounds: twice through the value table

TMP=$(mktemp -d /tmp/sonde-t3001.XXXXXX) || exit 1
GROUP=sonde_t3001_$$
TRACEFS=
MOUNTED=
INST=
DEFINED=

cleanup() {
	if [ -n "$INST" ] && [ -d "$INST" ]; then
		echo 0 >"$INST/events/$GROUP/enable" 2>/dev/null
		echo 0 >"$INST/events/$GROUP/flt/filter" 2>/dev/null
		rmdir "$INST" 2>/dev/null || echo "t3001: warning: cannot remove $INST" >&2
	fi
	if [ -n "$DEFINED" ]; then
		for e in ev rev flt; do
			echo "-:$GROUP/$e" >>"$TRACEFS/uprobe_events" 2>/dev/null
		done
		grep -q ":$GROUP/" "$TRACEFS/uprobe_events" 2>/dev/null &&
			echo "t3001: warning: could not remove every uprobe event of $GROUP" >&2
	fi
	if [ -n "$MOUNTED" ]; then
		umount "$MOUNTED" && rmdir "$MOUNTED" ||
			echo "t3001: warning: could not unmount $MOUNTED" >&2
	fi
	if [ -n "${T3001_KEEP:-}" ]; then
		echo "t3001: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "t3001: FAIL: $*" >&2
	exit 1
}

skip() {
	echo "t3001: SKIP: $*"
	exit 77
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
for t in nm readelf setarch; do
	command -v $t >/dev/null 2>&1 || skip "$t is not installed"
done
ARCH=$(uname -m)
[ "$ARCH" = x86_64 ] || skip "the register names of the definitions are x86-64's"
setarch "$ARCH" -R true 2>/dev/null || skip "setarch $ARCH -R does not work here"
[ "$(id -u)" -eq 0 ] || skip "the kernel's uprobe_events need root"

# ---- tracefs ----------------------------------------------------------------

for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
	if [ -w "$d/uprobe_events" ]; then
		TRACEFS=$d
		break
	fi
done
if [ -z "$TRACEFS" ]; then
	# a mount of our own, not under $TMP (rm -rf must never walk into it)
	MOUNTED=$(mktemp -d /tmp/sonde-t3001-tracefs.XXXXXX) || fail "mktemp"
	if ! mount -t tracefs nodev "$MOUNTED" 2>/dev/null; then
		rmdir "$MOUNTED"
		MOUNTED=
		skip "no tracefs here and it does not mount"
	fi
	TRACEFS=$MOUNTED
fi
[ -w "$TRACEFS/uprobe_events" ] || skip "this kernel has no uprobe_events"

# ---- the program: a copy of our own, its functions' file offsets --------------

BIN=$TMP/t3_target
cp "$TARGET" "$BIN" || fail "cannot copy $TARGET"

# file_offset SYM: SYM's file offset in $BIN (vaddr - p_vaddr + p_offset of
# the PT_LOAD that holds it)
file_offset() {
	fo_vaddr=$(nm "$BIN" | awk -v s="$1" '$3 == s && ($2 == "T" || $2 == "t") { print $1 }')
	[ -n "$fo_vaddr" ] || fail "nm finds no function $1 in $BIN"
	readelf -lW "$BIN" | awk -v v="$fo_vaddr" '
		function hex(s,   i, c, n) {
			n = 0; s = tolower(s); sub(/^0x/, "", s)
			for (i = 1; i <= length(s); i++) {
				c = index("0123456789abcdef", substr(s, i, 1)) - 1
				n = n * 16 + c
			}
			return n
		}
		BEGIN { a = hex(v) }
		$1 == "LOAD" && a >= hex($3) && a < hex($3) + hex($6) {
			printf "0x%x\n", a - hex($3) + hex($2); found = 1; exit
		}
		END { exit !found }' || fail "no PT_LOAD of $BIN holds $1 (0x$fo_vaddr)"
}

# size SYM: nm's size of SYM, as sonde prints it (0x%lx)
sym_size() {
	nm -S "$BIN" | awk -v s="$1" '$4 == s { sub(/^0+/, "", $2); print "0x" ($2 == "" ? "0" : $2) }'
}

OFF_WORK=$(file_offset work) || exit 1
OFF_STEP=$(file_offset t3_step) || exit 1
SIZE_WORK=$(sym_size work)

FILTER='(n >= -1 && tag ~ "g*") || n == -3'
U_EV="p:$GROUP/ev $BIN:$OFF_WORK a=%di:u64 s=+0(%si):string"
U_REV="r:$GROUP/rev $BIN:$OFF_WORK \$retval"
U_FLT="p:$GROUP/flt $BIN:$OFF_STEP n=%di:s64 tag=+0(%si):string"
K_EV="p:$GROUP/ev work a=%di:u64 s=+0(%si):string"
K_REV="r:$GROUP/rev work \$retval"
K_FLT="p:$GROUP/flt t3_step n=%di:s64 tag=+0(%si):string"

# runs go in an empty directory, with ASLR off and one environment
mkdir "$TMP/run" && cd "$TMP/run" || fail "cannot make $TMP/run"
# the reference: no probes at all
run_plain() {
	setarch "$ARCH" -R env -i PATH=/usr/bin:/bin LC_ALL=C T3_OUT="$TMP/plain.log" \
		"$BIN" run $N || fail "the program failed without probes"
}
run_plain
[ "$(wc -l <"$TMP/plain.log")" -eq $((2 * N)) ] ||
	fail "the program logged $(wc -l <"$TMP/plain.log") lines, not $((2 * N))"

# ---- 1. the kernel ---------------------------------------------------------------

for def in "$U_EV" "$U_REV" "$U_FLT"; do
	DEFINED=1
	echo "$def" >>"$TRACEFS/uprobe_events" ||
		fail "the kernel refused '$def': $(tail -3 "$TRACEFS/error_log" 2>/dev/null)"
done
INST=$TRACEFS/instances/$GROUP
mkdir "$INST" || fail "cannot make the trace instance $INST"
echo "$FILTER" >"$INST/events/$GROUP/flt/filter" ||
	fail "the kernel refused the filter '$FILTER'"
echo 1 >"$INST/events/$GROUP/enable" || fail "cannot enable the kernel's events"
setarch "$ARCH" -R env -i PATH=/usr/bin:/bin LC_ALL=C T3_OUT="$TMP/kernel.log" \
	"$BIN" run $N
krc=$?
echo 0 >"$INST/events/$GROUP/enable"
cat "$INST/trace" >"$TMP/kernel.trace"
[ $krc -eq 0 ] || fail "the program failed under the kernel's uprobes (status $krc)"
cmp -s "$TMP/plain.log" "$TMP/kernel.log" ||
	fail "the program's output changed under the kernel's uprobes"
awk '/^# entries-in-buffer\/entries-written:/ {
	split($3, n, "/"); found = 1; if (n[1] != n[2] || n[1] == 0) exit 1 }
	END { exit !found }' "$TMP/kernel.trace" ||
	fail "the kernel lost events or recorded none: $(grep entries-in "$TMP/kernel.trace")"
# the kernel is done: nothing of ours may stay on the file during sonde's runs
rmdir "$INST" || fail "cannot remove $INST"
INST=
for e in ev rev flt; do
	echo "-:$GROUP/$e" >>"$TRACEFS/uprobe_events" || fail "cannot remove the kernel's $e"
done
DEFINED=

# ---- 2, 3. sonde ------------------------------------------------------------------

# sonde_run TAG DEF_EV DEF_REV DEF_FLT
sonde_run() {
	setarch "$ARCH" -R env -i PATH=/usr/bin:/bin LC_ALL=C T3_OUT="$TMP/$1.log" \
		"$SONDE" trace -e "$2" -e "$3" -e "$4" --filter "$FILTER" -- "$BIN" run $N \
		>"$TMP/$1.trace" 2>"$TMP/$1.err"
	rc=$?
	[ $rc -eq 0 ] || fail "$1: sonde trace exited $rc: $(tail -5 "$TMP/$1.err")"
	[ -s "$TMP/$1.err" ] && fail "$1: sonde trace wrote to stderr: $(tail -5 "$TMP/$1.err")"
	cmp -s "$TMP/plain.log" "$TMP/$1.log" ||
		fail "$1: the program's output changed under sonde:" \
			"$(diff "$TMP/plain.log" "$TMP/$1.log" | head -4 | tr '\n' ' ')"
}
sonde_run kprobe "$K_EV" "$K_REV" "$K_FLT"
sonde_run uprobe "$U_EV" "$U_REV" "$U_FLT"

# ---- the comparison ----------------------------------------------------------------

# events FILE: "EVENT<TAB>(ctx)<TAB>fields" of each event line, in order
events() {
	sed -n -E 's/^ *[^ ]+-[0-9]+ +\[[0-9]+\] [^ ]+ +[0-9]+\.[0-9]+: ([A-Za-z0-9_]+): \(([^)]*)\) ?(.*)$/\1	\2	\3/p' "$1"
}
# lines that are not events: there must be none
others() {
	grep -v '^#' "$1" | grep -v -E '^ *[^ ]+-[0-9]+ +\[[0-9]+\] [^ ]+ +[0-9]+\.[0-9]+: [A-Za-z0-9_]+: \('
}

for t in kernel kprobe uprobe; do
	events "$TMP/$t.trace" >"$TMP/$t.ev"
	cut -f1,3 "$TMP/$t.ev" >"$TMP/$t.fields"
	others "$TMP/$t.trace" >"$TMP/$t.other"
	[ -s "$TMP/$t.other" ] &&
		fail "$t: lines that are not events: $(head -3 "$TMP/$t.other" | tr '\n' '|')"
done

# the expected counts, from the program's own log: one ev and one rev per
# work call, one flt per step call that passes the filter
nwork=$(grep -c '^work ' "$TMP/plain.log")
nflt=$(awk '/^step / { n = substr($2, 3) + 0; tag = substr($3, 5)
	if ((n >= -1 && tag ~ /^g/) || n == -3) c++ } END { print c + 0 }' "$TMP/plain.log")
[ "$nflt" -gt 0 ] && [ "$nflt" -lt "$N" ] || fail "the filter should pass some steps, not $nflt"
for t in kernel kprobe uprobe; do
	for e in ev:$nwork rev:$nwork flt:$nflt; do
		got=$(awk -F '\t' -v e="${e%%:*}" '$1 == e' "$TMP/$t.ev" | wc -l)
		[ "$got" -eq "${e#*:}" ] ||
			fail "$t: $got ${e%%:*} events, the program made ${e#*:} such calls"
	done
done

# the kernel's values, as the program logged them (an oracle of the oracle)
awk -F '\t' '$1 == "ev" { print $2 }' "$TMP/kernel.fields" | head -1 | grep -q '^a=7 s="alpha"$' ||
	fail "the kernel's first ev is not a=7 s=\"alpha\": $(head -1 "$TMP/kernel.fields")"
grep -q '	a=4294967296 s=(fault)$' "$TMP/kernel.fields" ||
	fail "the kernel shows no fault marker for the NULL string"

for t in kprobe uprobe; do
	if ! cmp -s "$TMP/kernel.fields" "$TMP/$t.fields"; then
		echo "--- kernel, +++ sonde ($t form), first differences:" >&2
		diff -u "$TMP/kernel.fields" "$TMP/$t.fields" | sed -n '3,20p' >&2
		fail "$t form: sonde's events differ from the kernel's"
	fi
done

# the (…) part: the kernel's addresses in the uprobe form (ASLR off)
cut -f1,2 "$TMP/kernel.ev" >"$TMP/kernel.ctx"
cut -f1,2 "$TMP/uprobe.ev" >"$TMP/uprobe.ctx"
if ! cmp -s "$TMP/kernel.ctx" "$TMP/uprobe.ctx"; then
	echo "--- kernel, +++ sonde (uprobe form):" >&2
	diff -u "$TMP/kernel.ctx" "$TMP/uprobe.ctx" | sed -n '3,12p' >&2
	fail "uprobe form: the (address) part differs from the kernel's"
fi
# sym+off/size in the kprobe form
bad=$(awk -F '\t' -v size="$SIZE_WORK" -v sizes="$(sym_size t3_step)" '
	$1 == "ev" && $2 != "work+0x0/" size { print; exit }
	$1 == "flt" && $2 != "t3_step+0x0/" sizes { print; exit }
	$1 == "rev" && $2 !~ /^one_work\+0x[0-9a-f]+\/0x[0-9a-f]+ <- work$/ { print; exit }' \
	"$TMP/kprobe.ev")
[ -z "$bad" ] || fail "kprobe form: wrong (sym+off/size) part: $bad"

echo "ok: $nwork ev, $nwork rev, $nflt flt events: the kernel's values and counts" \
	"(kprobe and uprobe forms)"
exit 0
