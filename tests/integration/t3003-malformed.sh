#!/bin/sh
# SPDX-License-Identifier: MIT
# t3003: malformed event definitions and filters get the kernel's error
# text, with a caret under the column the kernel points at, and never crash
# sonde or change the target.
#
# 1. Through the command line: `sonde trace -e BAD -- target` and
#    `sonde trace -e GOOD --filter BAD -- target`, for every case of the
#    tables below. Each must exit 2 (not a signal, not a core), print the
#    kernel's message and, where the kernel shows one, the caret line: for a
#    definition "  Command: DEF" then the caret at 11 + column (the kernel's
#    error_log), for a filter the filter, the caret at the column and
#    "parse_error: MESSAGE" (the kernel's filter file read back). The target
#    must be killed before its main() ran: it left no output file, no
#    output, and no process behind.
# 2. Through `sonde ctl PID append kprobe_events BAD` (and a filter write)
#    on a running traced target: the write fails, error_log shows the
#    kernel's three lines for it, kprobe_events is unchanged, the probe
#    already there keeps firing, the target keeps running, and its output
#    is that of a clean run.
#
# The tables: a '^' marks the caret's column (the '^' itself is removed);
# no '^', no caret line to check (the kernel logs none: only EINVAL). A
# filter's fourth field: how much further error_log's caret is than the
# filter file's (the file's is clamped to the text's end, the log's not). They
# were taken from the kernel's own uprobe_events and event filters (6.18)
# on the same input, in uprobe form; kprobe-only errors follow the kernel's
# trace_kprobe.c. @BIN@ is the target, @OFF@ the file offset of work().

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t3_target

TMP=$(mktemp -d /tmp/sonde-t3003.XXXXXX) || exit 1
MARK=t3003-$$-mark
SPID=
TPID=
cleanup() {
	exec 3>&- 2>/dev/null
	[ -n "$TPID" ] && kill -KILL "$TPID" 2>/dev/null
	if [ -n "$SPID" ]; then
		kill -KILL "$SPID" 2>/dev/null
		wait "$SPID" 2>/dev/null
	fi
	if [ -n "${T3003_KEEP:-}" ]; then
		echo "t3003: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

FAILS=0
fail() {
	echo "t3003: FAIL: $*" >&2
	exit 1
}
# a case that fails: counted, reported, the others still run
bad() {
	echo "t3003: FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
command -v nm >/dev/null 2>&1 || { echo "t3003: SKIP: nm is not installed"; exit 77; }
[ "$(uname -m)" = x86_64 ] || { echo "t3003: SKIP: the register names are x86-64's"; exit 77; }

# work()'s file offset, for the uprobe forms
vaddr=$(nm "$TARGET" | awk '$3 == "work" { print $1 }')
[ -n "$vaddr" ] || fail "nm finds no work in $TARGET"
OFF=$(readelf -lW "$TARGET" | awk -v v="$vaddr" '
	function hex(s,   i, n) { n = 0; s = tolower(s); sub(/^0x/, "", s)
		for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
		return n }
	$1 == "LOAD" && hex(v) >= hex($3) && hex(v) < hex($3) + hex($6) {
		printf "0x%x\n", hex(v) - hex($3) + hex($2); exit }')
[ -n "$OFF" ] || fail "cannot compute the file offset of work in $TARGET"

FLT_DEF='p:grp/flt t3_step n=%di:s64 tag=+0(%si):string'

# KIND;TEXT;MESSAGE[;DELTA] - D: a definition (-e), F: a filter (--filter) of $FLT_DEF
cat >"$TMP/cases" <<'EOF'
D;p:grp/ev work a=^%zz:u64;Invalid register name
D;p:grp/ev work a=%di:^u65;Unknown type is specified
D;p:grp/ev work a=%di:^;Unknown type is specified
D;p:grp/ev work a=%di:^:u8;Unknown type is specified
D;p:grp/ev work a=+0(%di^;Dereference brace is not closed
D;p:grp/ev work a=^+0%di;Dereference needs a brace
D;p:grp/ev work a=^+zz(%di);Invalid dereference offset
D;p:grp/ev work a=^-(%di);Invalid dereference offset
D;p:grp/ev work a=+0(^%di));Invalid register name
D;p:grp/ev work a=%di:^string;String accepts only memory argument
D;p:grp/ev work a=^$stackZ;Invalid $-variable specified
D;p:grp/ev work a=^$bogus;Invalid $-variable specified
D;p:grp/ev work a=%di:x64 b=^$stack99999999999999999999;Invalid $-variable specified
D;p:grp/ev work ^$retval;$retval is not available on probe
D;p:grp/ev work a=%di ^a=%si;This argument name is already used
D;p:grp/ev work ^1a=%di;Argument name must follow the same rules as C identifiers
D;p:grp/ev work ^=%di;Argument name is not specified
D;p:grp/ev work ^aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=%di;Argument name is too long
D;p:grp/ev work a=^;No argument expression
D;p:grp/ev work a=\^zz;Invalid immediate value
D;p:grp/ev work a=\"abc^;String is not closed with '"'
D;p:grp/ev work a=%di:u8[^;Array is not closed
D;p:grp/ev work a=+0(%di):u8[3]^x;Array has wrong suffix
D;p:grp/ev work a=+0(%di):u8[^zz];Invalid array size
D;p:grp/ev work a=+0(%di):string[^zz];Invalid array size
D;p:grp/ev work a=+0(%di):u8[^65];Array number is too big
D;p:grp/ev work a=%di:^b99@0/32;Invalid bitfield
D;p:grp/ev work a=%di:^b4@40/32;Invalid bitfield
D;p:grp/ev work a=%di:^b0@0/32;Invalid bitfield
D;p:grp/ev work a=^+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(%di)))))))))))))))));Argument expression is too long
D;p:grp/ev work a=+0(^$comm);$comm can not be dereferenced
D;p:grp/ev work a=$comm:^u32;$comm and immediate-string only accepts string type
D;p:grp/ev work a=^$arg0;Invalid argument number
D;p:^1grp/ev work;Group name must follow the same rules as C identifiers
D;p:grp/^1ev work;Event name must follow the same rules as C identifiers
D;p:grp/^ev-x work;Event name must follow the same rules as C identifiers
D;p:^/ev work;Group name is not specified
D;p:grp/^aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa work;Event name is too long
D;p:^gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg/ev work;Group name is too long
D;p^5:grp/ev work;Maxactive is only for function exit
D;r^0:grp/ev work;Invalid maxactive number
D;r^99999:grp/ev work;Maxactive is too big
D;p:grp/ev ^nosuchfunc_t3003;Invalid probed address or symbol
D;p:grp/ev ^work+zz;Invalid probed address or symbol
D;p:grp/ev ^work+1;Probe point is not an instruction boundary
D;r:grp/ev ^work+4;Retprobe address must be an function entry
D;q:grp/ev work;is neither an event definition (p:…, r:…) nor an event name
D;p:grp/ev;no probe point after the event
D;p:grp/ev ^/nonexistent/t3003:0x10;Failed to find the given file
D;p:grp/ev ^/tmp:0x10;Not a regular file
D;p:grp/ev @BIN@:^@OFF@x;Invalid uprobe offset
D;p:grp/ev @BIN@:@OFF@(zz^;Reference counter brace is not closed
D;p:grp/ev @BIN@:@OFF@(0x10^;Reference counter brace is not closed
D;p:grp/ev @BIN@:@OFF@(0x10)^x;Reference counter has wrong suffix
D;p:grp/ev @BIN@:@OFF@ a=^@zz;Symbol is not available with uprobe
D;p:grp/ev @BIN@:@OFF@ a=^@+zz;Invalid file offset value
D;p:grp/ev @BIN@:@OFF@ a=%di:^symstr;Unknown type is specified
D;p:grp/ev @BIN@:@OFF@ a=+0(%di):^symbol;Unknown type is specified
D;p:grp/ev @BIN@:@OFF@ a=%di:^x64:u8;Unknown type is specified
D;p:grp/ev @BIN@:@OFF@ a=+0(%di):^b8@0/99;Unknown type is specified
D;p:grp/ev @BIN@:@OFF@ a=+0(%di):string[^65];Array number is too big
D;p:grp/ev @BIN@:@OFF@ a=%di:^u8[2];String accepts only memory argument
D;p:grp/ev @BIN@:@OFF@ a=$stack:^string;String accepts only memory argument
D;p:grp/ev @BIN@:@OFF@ a=%ip:^ustring;String accepts only memory argument
D;p:grp/ev @BIN@:@OFF@ a=\"abc":^u32;$comm and immediate-string only accepts string type
D;p:grp/ev @BIN@:@OFF@ a=^$argzz;Invalid $-variable specified
D;r:grp/ev @BIN@:@OFF@ a=$stack0:u8[^;Array is not closed
D;p:grp/ev @BIN@:@OFF@ ^$retval;$retval is not available on probe
D;p:grp/ev @BIN@:@OFF@ a=^%zz;Invalid register name
F;n >^;Invalid value (did you forget quotes)?;1
F;n >=^;Invalid value (did you forget quotes)?;1
F;n &^;Invalid value (did you forget quotes)?;1
F;n == a^bc;Invalid value (did you forget quotes)?
F;n ===^ 1;Invalid value (did you forget quotes)?
F;n <>^ 1;Invalid value (did you forget quotes)?
F;n < <^ 1;Invalid value (did you forget quotes)?
F;tag ~^;Invalid value (did you forget quotes)?;1
F;nosuch ^== 1;Field not found
F;common_pidd ^== 1;Field not found
F;1 ^== n;Field not found
F;^(n == 1;Too many '('
F;!^(n == 1;Too many '('
F;n == 1 && ^(tag ~ "g*";Too many '('
F;n == 1 || ^(tag == "a" && (n == 2);Too many '('
F;n == 1^);Too few '('
F;(n == 1)^);Too few '('
F;n == 1 && tag ~ "g*"^);Too few '('
F;n ~ 1^;Illegal operation for field type
F;tag > "^a";Illegal operation for field type
F;n =^ 1;Invalid operator
F;n.^foo == 1;Invalid operator
F;n^;Invalid operator;1
F;n == 1 && tag^;Invalid operator;1
F;n !^~ 1;Invalid operator
F;tag =^~ "a";Invalid operator
F;!^;No filter found
F;n == 1 ^n == 2;Too many terms in predicate expression
F;n == 1 ^| n == 2;Too many terms in predicate expression
F;n == 1 ^& & n;Too many terms in predicate expression
F;n == 1 ^2;Too many terms in predicate expression
F;tag ~ "g*" ^~ "x";Too many terms in predicate expression
F;n >= 1^.5;Too many terms in predicate expression
F;n == 1 ^or n == 2;Too many terms in predicate expression
F;n == 1 ^and n == 2;Too many terms in predicate expression
F;tag == ^"abc;Missing matching quote
F;tag == ^'abc;Missing matching quote
F;n == 0^x;Illegal integer value
F;n == 9^9999999999999999999999;Illegal integer value
F;n == -^;Illegal integer value
F;n == 0^b101;Illegal integer value
F;n != "^x";Expecting numeric field
F;&& n == 1;Error: (0)
F;();Error: (0)
F;== 1;Error: (0)
F;n == 1 &&& n == 2;Error: (0)
F;n == 1 ||| n == 2;Error: (0)
F;n == 1 && && n == 2;Error: (0)
EOF

ND=$(grep -c '^D;' "$TMP/cases")
NF=$(grep -c '^F;' "$TMP/cases")
[ "$ND" -ge 40 ] && [ "$NF" -ge 40 ] || fail "the tables hold $ND definitions and $NF filters"

# ours MARK: pids of the t3_target processes whose arguments hold MARK (the
# mark is unique to this run; an empty one matches nothing)
ours() {
	[ -n "$1" ] || return 0
	for d in /proc/[0-9]*; do
		[ "$(cat "$d/comm" 2>/dev/null)" = t3_target ] || continue
		tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q -F -- " $1" && echo "${d#/proc/}"
	done
}

# ---- 1. through sonde trace ----------------------------------------------------------

mkdir "$TMP/run" && cd "$TMP/run" || fail "cannot make $TMP/run"
n=0
while IFS=';' read -r kind text msg delta; do
	n=$((n + 1))
	text=$(printf '%s\n' "$text" | sed "s|@BIN@|$TARGET|g; s|@OFF@|$OFF|g")
	pos=$(T=$text awk 'BEGIN { print index(ENVIRON["T"], "^") - 1 }')
	text=$(printf '%s\n' "$text" | tr -d '^')
	rm -f "$TMP/prog.out"
	if [ "$kind" = D ]; then
		T3_OUT=$TMP/prog.out "$SONDE" trace -e "$text" -- "$TARGET" run 3 "$MARK" \
			>"$TMP/out" 2>"$TMP/err"
	else
		T3_OUT=$TMP/prog.out "$SONDE" trace -e "$FLT_DEF" --filter "$text" -- \
			"$TARGET" run 3 "$MARK" >"$TMP/out" 2>"$TMP/err"
	fi
	rc=$?
	what="case $n ($kind) '$text'"
	if [ $rc -gt 128 ]; then
		bad "$what: sonde died of signal $((rc - 128)): $(tail -3 "$TMP/err")"
		continue
	fi
	[ $rc -eq 2 ] || bad "$what: exit status $rc, not 2"
	grep -q -i -E 'core dumped|sanitizer|segmentation|assert' "$TMP/err" &&
		bad "$what: sonde reports a crash: $(head -3 "$TMP/err")"
	[ -s "$TMP/out" ] && bad "$what: output on stdout: $(head -2 "$TMP/out")"
	[ -e "$TMP/prog.out" ] && bad "$what: the target's main() ran (it opened its log)"
	left=$(ours "$MARK")
	if [ -n "$left" ]; then
		bad "$what: the target is still running (pid $left)"
		for p in $left; do kill -KILL "$p"; done
	fi
	grep -q -F -- "$msg" "$TMP/err" ||
		bad "$what: no '$msg' in the message: $(head -4 "$TMP/err" | tr '\n' '|')"
	[ "$pos" -lt 0 ] && continue
	if [ "$kind" = D ]; then
		T=$text P=$pos awk '
			$0 == "  Command: " ENVIRON["T"] { getline c
				want = sprintf("%" (11 + ENVIRON["P"]) "s^", ""); found = (c == want); exit }
			END { exit !found }' "$TMP/err" ||
			bad "$what: want '  Command: …' then a caret at column $((11 + pos)):" \
				"$(grep -A1 'Command:' "$TMP/err" | tr '\n' '|')"
	else
		T=$text P=$pos M=$msg awk '
			$0 == ENVIRON["T"] { getline c; getline m
				want = sprintf("%" ENVIRON["P"] "s^", "")
				found = (c == want && m == "parse_error: " ENVIRON["M"]); exit }
			END { exit !found }' "$TMP/err" ||
			bad "$what: want the filter, a caret at column $pos and parse_error:" \
				"$(head -5 "$TMP/err" | tr '\n' '|')"
	fi
done <"$TMP/cases"
echo "t3003: $ND definitions and $NF filters through sonde trace: $FAILS failed"

# ---- 2. through sonde ctl, on a running target ------------------------------------------

# a clean run: what the target prints for three and three calls
printf 'call 3\ncall 3\nexit\n' | "$TARGET" cmd >"$TMP/clean.out" ||
	fail "the target failed on its own"

mkfifo "$TMP/in" || fail "mkfifo"
# opened read-write: never blocks, never sees EOF while we hold it
exec 3<>"$TMP/in"
T3_OUT=$TMP/traced.out "$SONDE" trace -e 'p:keep/w work a=%di:u64' -- "$TARGET" cmd "$MARK" \
	<"$TMP/in" >"$TMP/trace.out" 2>"$TMP/trace.err" &
SPID=$!

# wait_for FILE PATTERN: until a line of FILE matches (10 s at most)
wait_for() {
	i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 200 ] && return 1
		sleep 0.05
	done
	return 0
}

echo "call 3" >&3
wait_for "$TMP/traced.out" '^done 3$' ||
	fail "ctl: the traced target did not answer: $(tail -3 "$TMP/trace.err")"
TPID=$(ours "$MARK")
case $TPID in
'' | *[!0-9]*) fail "ctl: cannot find the target's pid (found '$TPID')" ;;
esac
"$SONDE" ctl "$TPID" cat kprobe_events >"$TMP/kev.before" ||
	fail "ctl: cat kprobe_events failed"

nctl=0
nrec=0
while IFS=';' read -r kind text msg delta; do
	# the kprobe_events definitions, and the filters on keep/w (field a)
	case $kind$text in
	D*@BIN@* | D*' ^/'* | Dq:* | "Dp:grp/ev") continue ;;
	esac
	pos=$(T=$text awk 'BEGIN { print index(ENVIRON["T"], "^") - 1 }')
	text=$(printf '%s\n' "$text" | tr -d '^')
	if [ "$kind" = D ]; then
		file=kprobe_events
		verb=append
	else
		file=events/keep/w/filter
		verb=write
		# the same filter on field a: n -> a and tag -> a keep every column
		# of the n cases; the tag cases' fields are a different length
		case $text in *tag*) continue ;; esac
		text=$(printf '%s\n' "$text" | sed 's/\bn\b/a/g')
	fi
	nctl=$((nctl + 1))
	"$SONDE" ctl "$TPID" $verb $file "$text" >"$TMP/ctl.out" 2>"$TMP/ctl.err"
	rc=$?
	what="ctl $verb $file '$text'"
	[ $rc -eq 1 ] || bad "$what: exit status $rc, not 1 (a failed write)"
	grep -q -F -- "$msg" "$TMP/ctl.err" || bad "$what: no '$msg' in: $(head -3 "$TMP/ctl.err")"
	kill -0 "$TPID" 2>/dev/null || fail "$what: the target died"
	[ "$pos" -lt 0 ] && continue
	nrec=$((nrec + 1))
	# error_log: the kernel's three lines for this write, last
	"$SONDE" ctl "$TPID" cat error_log >"$TMP/elog" || bad "ctl: cat error_log failed"
	if [ "$kind" = D ]; then
		head="trace_kprobe: error: $msg"
		epos=$pos
	else
		head="event filter parse error: error: $msg"
		epos=$((pos + ${delta:-0}))
	fi
	H=$head T=$text P=$epos awk '
		{ l[NR] = $0 }
		END {
			n = NR
			if (n < 3) exit 1
			h = l[n - 2]; sub(/^\[ *[0-9]+\.[0-9]+\] /, "", h)
			want = sprintf("%" (11 + ENVIRON["P"]) "s^", "")
			exit !(h == ENVIRON["H"] && l[n - 1] == "  Command: " ENVIRON["T"] && l[n] == want)
		}' "$TMP/elog" ||
		bad "$what: error_log does not end with its entry (column $((11 + epos))):" \
			"$(tail -3 "$TMP/elog" | tr '\n' '|')"
done <"$TMP/cases"
[ "$nctl" -ge 40 ] || fail "ctl: only $nctl bad writes tried"

"$SONDE" ctl "$TPID" cat kprobe_events >"$TMP/kev.after" || fail "ctl: cat kprobe_events failed"
cmp -s "$TMP/kev.before" "$TMP/kev.after" ||
	bad "ctl: kprobe_events changed: $(cat "$TMP/kev.after" | tr '\n' '|')"
"$SONDE" ctl "$TPID" cat events/keep/w/filter >"$TMP/filter.after"
"$SONDE" ctl "$TPID" write error_log '' || bad "ctl: cannot clear error_log"
"$SONDE" ctl "$TPID" cat error_log >"$TMP/elog"
[ -s "$TMP/elog" ] && bad "ctl: error_log is not empty after an empty write: $(head -3 "$TMP/elog")"

echo "call 3" >&3
wait_for "$TMP/traced.out" '^done 6$' || fail "ctl: the target stopped answering"
echo "exit" >&3
i=0
while kill -0 "$SPID" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 200 ] && fail "ctl: sonde trace did not end with the target"
	sleep 0.05
done
wait "$SPID"
rc=$?
SPID=
TPID=
[ $rc -eq 0 ] || bad "ctl: sonde trace exited $rc: $(tail -3 "$TMP/trace.err")"
cmp -s "$TMP/clean.out" "$TMP/traced.out" ||
	bad "ctl: the target's output differs from a clean run's:" \
		"$(diff "$TMP/clean.out" "$TMP/traced.out" | head -4 | tr '\n' '|')"
# the probe kept working across the failed writes: one event per call
awk '/^done|^exit/ { next } { sub(/ s=.*/, ""); print }' "$TMP/clean.out" >"$TMP/want.ev"
sed -n -E 's/.* w: \([^)]*\) (a=[0-9]+)$/work \1/p' "$TMP/trace.out" >"$TMP/got.ev"
cmp -s "$TMP/want.ev" "$TMP/got.ev" ||
	bad "ctl: the events of keep/w are not the six calls:" \
		"$(diff "$TMP/want.ev" "$TMP/got.ev" | head -4 | tr '\n' '|')"
echo "t3003: $nctl bad writes through sonde ctl ($nrec error_log entries checked)"

[ "$FAILS" -eq 0 ] || fail "$FAILS checks failed (above)"
echo "ok: $ND malformed definitions and $NF malformed filters: the kernel's errors and carets," \
	"no crash, the target untouched"
exit 0
