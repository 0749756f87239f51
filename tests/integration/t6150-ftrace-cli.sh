#!/bin/sh
# SPDX-License-Identifier: MIT
# t6150: the function tracers from the command line, with the engine
# (src/ftrace): sonde ftrace, sonde graph and their options, sonde record
# --graph|--function, sonde report, sonde export, on tests/targets/t6_graph,
# whose call graph is known (see its header): N calls of t6_outer, each
# calling t6_inner twice and t6_leaf once; t6_fib(5) (15 calls); t6_slow
# (3 ms); a second thread calling t6_leaf 4 times from t6_worker.
#
# Oracles:
#  - the program's call graph, by construction: call counts and caller ->
#    callee pairs in every output;
#  - the program's own output and exit status (3), with and without sonde;
#  - durations nest: a call lasts at least as long as the calls it made
#    (checked on the graph text, per thread, to the ns the text shows);
#  - uftrace (where installed): `uftrace report` and `uftrace replay` on the same source built
#    with -pg counts the same calls as `sonde report` on the plain build;
#  - python3 -m json.tool: the Chrome export is JSON, with one event a call.
# T6150_KEEP=1 keeps the files.

T=t6150
B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t6_graph
SRC=${SONDE_SRC:-$(dirname "$0")/../..}/tests/targets/t6_graph.c
N=5

TMP=$(mktemp -d /tmp/sonde-t6150.XXXXXX) || exit 1
cleanup() {
	if [ -n "${T6150_KEEP:-}" ]; then
		echo "$T: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

FAILS=0
fail() {
	echo "$T: FAIL: $*" >&2
	exit 1
}
bad() {
	echo "$T: FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}
# expect WHAT GOT WANT
expect() {
	[ "$2" = "$3" ] || bad "$1: got '$2', want '$3'"
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -x "$TARGET" ] || fail "$TARGET is not built"
[ "$(uname -m)" = x86_64 ] || { echo "$T: SKIP: x86-64 only" >&2; exit 77; }
cd "$TMP" || fail "cannot enter $TMP"

# the functions of the program; _start is left out (it has no caller to return to)
FUNCS="-F t6_* -F main"

"$TARGET" $N >plain.out 2>&1
PLAIN_RC=$?
expect "exit status without sonde" "$PLAIN_RC" 3

# ---- sonde graph --------------------------------------------------------------------------

"$SONDE" graph $FUNCS --funcgraph-proc -o graph.txt -- "$TARGET" $N >prog.out 2>graph.err
RC=$?
if [ $RC -eq 2 ] && grep -q "has no 'function_graph' tracer" graph.err; then
	echo "$T: SKIP: this build has no function_graph tracer" >&2
	exit 77
fi
expect "sonde graph: exit status" $RC 3
cmp -s plain.out prog.out || bad "sonde graph: the program's output changed: $(cat prog.out)"
grep -q "^t6_graph: " graph.err || bad "sonde graph: no word on how t6_graph was traced: $(cat graph.err)"

expect "graph header" "$(sed -n 1,4p graph.txt)" "# tracer: function_graph
#
# CPU  TASK/PID         DURATION                  FUNCTION CALLS
# |     |    |           |   |                     |   |   |   |"

count() { # count FILE REGEX
	grep -c -- "$2" "$1"
}
expect "graph: t6_outer() {" "$(count graph.txt '|    t6_outer() {$')" $N
expect "graph: t6_inner();" "$(count graph.txt '|      t6_inner();$')" $((2 * N))
expect "graph: t6_leaf(); under t6_outer" "$(count graph.txt '|      t6_leaf();$')" $N
expect "graph: t6_leaf(); under t6_worker" "$(count graph.txt '|    t6_leaf();$')" 4
expect "graph: t6_fib calls" "$(count graph.txt 't6_fib()')" 15
expect "graph: t6_slow();" "$(count graph.txt '|    t6_slow();$')" 1
expect "graph: t6_worker() {" "$(count graph.txt '|  t6_worker() {$')" 1
expect "graph: main() {" "$(count graph.txt '|  main() {$')" 1
# t6_slow sleeps 3 ms: the '#' mark (> 1 ms), or a longer one's ('*' > 10 ms, '@', '$')
# when a busy machine stretched it
grep -q '| [#*@$] [0-9.]* us |    t6_slow();$' graph.txt ||
	bad "graph: t6_slow has no '#' mark (or a longer one's): $(grep t6_slow graph.txt)"
# two threads: the context-switch lines
grep -q '^ ------------------------------------------$' graph.txt || bad "graph: no context-switch lines"

# durations nest, thread by thread: the calls a call made lasted no longer than it did
awk -F'|' '
function us(s) { gsub(/[^0-9.]/, "", s); return s + 0 }
/^ *[0-9]+\)/ && NF >= 3 {
	split($1, c, " "); tid = c[2]; sub(/.*-/, "", tid)
	text = $3; sub(/^  /, "", text)
	d = us($2)
	if (text ~ /\(\) \{$/) { depth[tid]++; kids[tid, depth[tid]] = 0; next }
	if (text ~ /^ *\}/) {
		if (kids[tid, depth[tid]] > d + 0.0015) {
			printf "%s: children %.3f us > %.3f us\n", $0, kids[tid, depth[tid]], d
			bad++
		}
		depth[tid]--
		if (depth[tid] > 0) kids[tid, depth[tid]] += d
		next
	}
	if (text ~ /\(\);$/ && depth[tid] > 0) kids[tid, depth[tid]] += d
}
END { exit bad > 0 }' graph.txt >nest.txt || bad "graph: durations do not nest: $(cat nest.txt)"

# ---- sonde ftrace -------------------------------------------------------------------------

"$SONDE" ftrace -F t6_inner -F t6_leaf -o ftrace.txt -- "$TARGET" $N >prog.out 2>ftrace.err
expect "sonde ftrace: exit status" $? 3
cmp -s plain.out prog.out || bad "sonde ftrace: the program's output changed"
expect "ftrace: t6_inner <-t6_outer" "$(count ftrace.txt ': t6_inner <-t6_outer$')" $((2 * N))
expect "ftrace: t6_leaf <-t6_outer" "$(count ftrace.txt ': t6_leaf <-t6_outer$')" $N
expect "ftrace: t6_leaf <-t6_worker" "$(count ftrace.txt ': t6_leaf <-t6_worker$')" 4
expect "ftrace: other lines" "$(grep -vc ': t6_\(inner\|leaf\) <-t6_\(outer\|worker\)$' ftrace.txt)" 0
grep -q '^ *t6_graph-[0-9]* *\[[0-9][0-9][0-9]\] \.\.\.\.\. *[0-9]*\.[0-9]\{6\}: t6_inner <-t6_outer$' ftrace.txt ||
	bad "ftrace: not the kernel's line: $(head -1 ftrace.txt)"

# ---- filters and options ------------------------------------------------------------------

# tracing_thresh: the returns of the calls longer than 1000 µs only
"$SONDE" graph $FUNCS -T 1000 --no-header -o thresh.txt -- "$TARGET" $N >/dev/null 2>&1
expect "-T: exit status" $? 3
expect "-T: t6_slow" "$(count thresh.txt ') [#*@$] [0-9.]* us |    } /\* t6_slow \*/$')" 1
expect "-T: main" "$(count thresh.txt '|  } /\* main \*/$')" 1
expect "-T: no entries" "$(grep -c '{$\|();$' thresh.txt)" 0
expect "-T: nothing shorter" "$(grep -c 't6_inner\|t6_outer\|t6_fib' thresh.txt)" 0

# max_graph_depth 1: the outermost calls only
"$SONDE" graph $FUNCS -D 1 --no-header -o depth.txt -- "$TARGET" $N >/dev/null 2>&1
expect "-D 1: exit status" $? 3
expect "-D 1: nested calls" "$(grep -c '|    ' depth.txt)" 0
expect "-D 1: main" "$(count depth.txt '|  main();$')" 1

# set_graph_function: only what t6_outer calls
"$SONDE" graph $FUNCS -G t6_outer --no-header -o gfn.txt -- "$TARGET" $N >/dev/null 2>&1
expect "-G: exit status" $? 3
expect "-G: t6_outer() {" "$(count gfn.txt '|  t6_outer() {$')" $N
expect "-G: t6_inner" "$(count gfn.txt '|    t6_inner();$')" $((2 * N))
expect "-G: others" "$(grep -c 'main\|t6_fib\|t6_slow\|t6_worker' gfn.txt)" 0

# set_graph_notrace: t6_outer and what it calls are left out
"$SONDE" graph $FUNCS --graph-notrace t6_outer --no-header -o gnt.txt -- "$TARGET" $N >/dev/null 2>&1
expect "--graph-notrace: exit status" $? 3
expect "--graph-notrace: t6_outer, t6_inner" "$(grep -c 't6_outer\|t6_inner' gnt.txt)" 0
expect "--graph-notrace: t6_fib" "$(count gnt.txt 't6_fib()')" 15

# set_ftrace_notrace
"$SONDE" ftrace $FUNCS -N t6_fib -o nt.txt -- "$TARGET" $N >/dev/null 2>&1
expect "-N: exit status" $? 3
expect "-N: t6_fib" "$(count nt.txt t6_fib)" 0
expect "-N: t6_inner" "$(count nt.txt ': t6_inner <-')" $((2 * N))

# funcgraph-tail, funcgraph-abstime
"$SONDE" graph -F t6_outer -F t6_inner --funcgraph-tail --funcgraph-abstime -o tail.txt -- "$TARGET" 1 >/dev/null 2>&1
expect "tail: exit status" $? 3
expect "tail: header" "$(sed -n 3p tail.txt)" "#     TIME        CPU  DURATION                  FUNCTION CALLS"
grep -q '^ *[0-9]*\.[0-9]\{6\} |  *[0-9]*) [ +!#*@$] *[0-9.]* us *|  } /\* t6_outer \*/$' tail.txt ||
	bad "tail: no '} /* t6_outer */' with its time: $(cat tail.txt)"

# bad options
"$SONDE" graph -D deep -- "$TARGET" >/dev/null 2>err.txt
expect "-D deep: exit status" $? 2
grep -q "wants a number" err.txt || bad "-D deep: $(cat err.txt)"
"$SONDE" ftrace -T 5 -- "$TARGET" >/dev/null 2>err.txt
expect "ftrace -T: exit status" $? 2

# ---- all of libc ---------------------------------------------------------------------------

# Threads that end: glibc runs their last steps (getpagesize, madvise; free
# and munmap for a detached one) with every signal blocked, where a
# breakpoint kills the process. Ten runs: a breakpoint met there would kill
# some of them.
"$TARGET" $N detached >det.plain 2>&1
i=0
while [ $i -lt 10 ]; do
	"$SONDE" ftrace -F ':mod:libc' -o libc.txt -- "$TARGET" $N detached >det.out 2>libc.err
	RC=$?
	[ $RC -eq 3 ] || { bad "libc, detached threads: run $i: exit status $RC: $(tail -2 libc.err)"; break; }
	cmp -s det.plain det.out || { bad "libc, detached threads: run $i: the output changed"; break; }
	i=$((i + 1))
done
# each of the 5 threads ended through madvise (a jump there, not a breakpoint)
expect "libc: madvise calls" "$(count libc.txt ': madvise <-')" 5
# sonde's own calls are not the program's: its constructors' getenv, its
# exit handler's getpid and unlink, its thread-exit bookkeeping (none of
# which the program makes)
expect "libc: sonde's own calls" "$(grep -c ': \(getenv\|getpid\|unlink\|pthread_once\) <-' libc.txt)" 0
expect "libc: calls from sonde's code" "$(grep -c '<-\(sd_\|agent_\|thread_exit\|opt_env\|xstate_init\)' libc.txt)" 0
# an IFUNC is traced where its calls go: printf's strchrnul
[ "$(count libc.txt ': strchrnul <-')" -ge 1 ] || bad "libc: no strchrnul call (an IFUNC)"

# a call that never returns: its entry is written at once (it would be held
# back for a leaf's one record, and lost)
"$SONDE" graph $FUNCS -F '_exit:mod:libc' -F '_Exit:mod:libc' --no-header -o exit.txt -- \
	"$TARGET" 1 _exit >/dev/null 2>&1
expect "_exit: exit status" $? 3
expect "_exit: its entry" "$(grep -c '|      _[eE]xit() {$' exit.txt)" 1
expect "_exit: t6_bye" "$(count exit.txt '|    t6_bye() {$')" 1
# its caller is t6_bye, whose last instruction is the call: the return
# address is past t6_bye's end, and names what follows it
"$SONDE" ftrace -F 't6_bye' -F '_exit:mod:libc' -o exitf.txt -- "$TARGET" 1 _exit >/dev/null 2>&1
expect "_exit: ftrace exit status" $? 3
expect "_exit: its caller" "$(grep -c ': _[eE]xit <-t6_bye$' exitf.txt)" 1

# ---- objects: sonde's own, and those loaded later ------------------------------------------

# libdw's libz, liblzma, libbz2 are loaded for sonde, not for t6_graph:
# not traced, not in the summary
"$SONDE" ftrace -o own.txt -- "$TARGET" 1 >/dev/null 2>own.err
grep -q '^liblzma\|^libbz2\|^libz\.' own.err && bad "sonde's libraries in the summary: $(cat own.err)"
grep -q 'lzma_\|BZ2_\|deflate' own.txt && bad "sonde's libraries traced: $(grep 'lzma_\|BZ2_\|deflate' own.txt | head -2)"

# an object dlopen()ed later (python's _lzma and the liblzma it needs) is
# hooked when it loads; :mod: may name it before (the kernel's rule for a
# module not loaded yet)
PY=/usr/bin/python3
if [ -x "$PY" ]; then
	# (the summary is read every second: the program stays long enough)
	"$SONDE" ftrace -F ':mod:_lzma*' -F ':mod:liblzma' -o lzma.txt -- "$PY" -c \
		'import lzma, time; print(len(lzma.compress(b"x" * 100))); time.sleep(1.5)' \
		>lzma.out 2>lzma.err
	expect "dlopen: exit status" $? 0
	expect "dlopen: output" "$(cat lzma.out)" 68
	expect "dlopen: PyInit__lzma" "$(grep -c ': PyInit__lzma <-' lzma.txt)" 1
	expect "dlopen: lzma_easy_encoder" "$(grep -c ': lzma_easy_encoder <-' lzma.txt)" 1
	grep -q '^_lzma.*: entry probes on function symbols' lzma.err ||
		bad "dlopen: _lzma is not in the summary: $(cat lzma.err)"
else
	echo "$T: note: $PY is not installed: objects loaded later not checked" >&2
fi

# ---- record, report, export ---------------------------------------------------------------

"$SONDE" record --graph $FUNCS -o graph.dat -- "$TARGET" $N >prog.out 2>rec.err
expect "record --graph: exit status" $? 3
cmp -s plain.out prog.out || bad "record --graph: the program's output changed"
"$SONDE" report graph.dat >report.txt 2>/dev/null || bad "report failed"
expect "report: header" "$(sed -n 1p report.txt)" "  Total time   Self time       Calls  Function"
calls() { # calls FUNC: the Calls column of sonde report
	awk -v f="$1" '$NF == f { print $(NF - 1) }' report.txt
}
expect "report: t6_outer calls" "$(calls t6_outer)" $N
expect "report: t6_inner calls" "$(calls t6_inner)" $((2 * N))
expect "report: t6_leaf calls" "$(calls t6_leaf)" $((N + 4))
expect "report: t6_fib calls" "$(calls t6_fib)" 15
expect "report: t6_slow calls" "$(calls t6_slow)" 1
expect "report: t6_worker calls" "$(calls t6_worker)" 1
expect "report: main calls" "$(calls main)" 1
# sorted by total time: main (everything) first, then never increasing; t6_slow
# (3 ms of sleep) is at least 3 ms (its rank is not checked: a busy machine
# can stretch another call as long)
expect "report: first" "$(sed -n 3p report.txt | awk '{ print $NF }')" main
awk 'NR > 2 { ns = $1 * ($2 == "s" ? 1e9 : $2 == "ms" ? 1e6 : $2 == "us" ? 1e3 : 1)
	if (NR > 3 && ns > last) bad = 1; last = ns
	if ($NF == "t6_slow" && ns < 3e6) bad = 1 }
	END { exit bad }' report.txt || bad "report: not sorted by total time, or t6_slow under 3 ms: $(cat report.txt)"
"$SONDE" report -s calls graph.dat 2>/dev/null | sed -n 3p | grep -q ' 15  t6_fib$' ||
	bad "report -s calls: t6_fib is not first"

# the graph of the recording is the graph of a live run (but for the times)
"$SONDE" report --graph graph.dat >rgraph.txt 2>/dev/null
strip() { sed 's/^ *[0-9]*) *[^|]*|  //' "$1" | grep -v '^#\|^ ---\|=>\|^$' | sort; }
sed 's/^ *[0-9]*) *[^|]*|[^|]*|  //' graph.txt | grep -v '^#\|^ ---\|=>\|^$' | sort >live.s
strip rgraph.txt >rec.s
cmp -s live.s rec.s || bad "report --graph: not the live graph: $(diff live.s rec.s | head)"

# folded stacks and Chrome JSON
"$SONDE" export --format folded graph.dat >folded.txt 2>/dev/null || bad "export folded failed"
grep -q '^main;t6_outer;t6_inner [0-9][0-9]*$' folded.txt || bad "folded: no main;t6_outer;t6_inner: $(cat folded.txt)"
grep -q '^t6_worker;t6_leaf [0-9][0-9]*$' folded.txt || bad "folded: no t6_worker;t6_leaf"
if command -v python3 >/dev/null 2>&1; then
	"$SONDE" export --format chrome -o trace.json graph.dat 2>/dev/null || bad "export chrome failed"
	python3 -m json.tool trace.json >/dev/null || bad "export chrome: not JSON"
	python3 - trace.json $((1 + N + 2 * N + N + 4 + 15 + 1 + 1)) <<'PY' || bad "export chrome: events"
import json, sys
d = json.load(open(sys.argv[1]))
x = [e for e in d["traceEvents"] if e["ph"] == "X"]
assert len(x) == int(sys.argv[2]), (len(x), sys.argv[2])
assert len({e["tid"] for e in x}) == 2
for e in x:
    assert e["dur"] >= 0 and e["ts"] > 0
PY
fi

# a function recording lists its lines
"$SONDE" record --function -F t6_leaf -o fn.dat -- "$TARGET" $N >/dev/null 2>&1
expect "record --function: exit status" $? 3
"$SONDE" report fn.dat >fn.txt 2>/dev/null
expect "report of --function: tracer" "$(sed -n 1p fn.txt)" "# tracer: function"
expect "report of --function: lines" "$(count fn.txt ': t6_leaf <-t6_')" $((N + 4))
"$SONDE" export --format folded fn.dat >/dev/null 2>&1
expect "export of a --function recording: exit status" $? 2

# ---- every function of libc while ls -l /usr/bin runs ----------------------------------------
# ls's output unchanged, every record kept (no LOST line), each call's exit
# at the depth of its entry, and libc reported as hooked through its symbols.
# The run writes about 16 MB of records, twice the 8 MB default: with the text
# reader starved of CPU (a loaded machine, tests in parallel) it would lose
# some, as the kernel's would; 64 MB (sparse until written) leaves the check
# to the tracer itself.
LC_ALL=C ls -l /usr/bin >ls.plain 2>&1
LC_ALL=C "$SONDE" graph -b 65536 -F ':mod:libc' -o ls.graph -- ls -l /usr/bin >ls.out 2>ls.err
expect "graph of libc under ls: exit status" $? 0
cmp -s ls.plain ls.out || bad "ls -l /usr/bin printed something else under sonde graph: $(diff ls.plain ls.out | head -3)"
grep -q 'LOST' ls.graph && bad "graph of libc under ls: events lost: $(grep -m1 LOST ls.graph)"
grep -q '^libc.so.6: entry probes on function symbols: [0-9]* functions, [0-9]* traced' ls.err ||
	bad "graph of libc under ls: how libc was hooked is not said: $(grep libc ls.err)"
[ "$(grep -c '|  *[a-z_0-9]*() {$' ls.graph)" -gt 100 ] || bad "graph of libc under ls: fewer than 100 nested calls"
awk -F'|' '/\(\) \{$/ { d = index($2, substr($2, match($2, /[^ ]/))); open[n++] = d }
	/^ *[0-9]+\) .*\|  *\}/ { d = index($2, "}"); if (n == 0 || open[--n] != d) bad++ }
	END { exit bad > 0 }' ls.graph || bad "graph of libc under ls: a closing brace at another depth than its call"

# ---- uftrace's counts ---------------------------------------------------------------------

if command -v uftrace >/dev/null 2>&1 && command -v gcc >/dev/null 2>&1 && [ -r "$SRC" ] &&
	gcc -pg -O1 -g -fno-inline -o pg "$SRC" -lpthread 2>/dev/null; then
	# (uftrace record exits with a status of its own: judge by the data)
	uftrace record -d uft.data ./pg $N >/dev/null 2>&1
	if [ -s uft.data/info ]; then
		uftrace report -d uft.data >uft.txt 2>/dev/null
		# caller -> callee pairs, with their counts, from either tool's call graph
		cat >pairs.awk <<'AWK'
# caller -> callee pairs of a function-graph text (sonde graph --funcgraph-proc,
# or uftrace replay): the thread from its TASK/PID or [TID] column, the call
# from the text after the last '|'; only functions matching PROG count, each
# paired with the nearest enclosing one that matches
function prog(f) { return f ~ PROG }
/^#/ { next }
{
	if (match($0, /\[ *[0-9]+\]/))
		tid = substr($0, RSTART + 1, RLENGTH - 2) + 0
	else if (match($0, /-[0-9]+ +\|/))
		tid = substr($0, RSTART + 1, RLENGTH - 1) + 0
	else
		next
	n = split($0, part, "|")
	t = part[n]
	sub(/^ +/, "", t)
	sub(/ +$/, "", t)
	if (t ~ /^}/) {
		if (depth[tid] > 0)
			depth[tid]--
		next
	}
	if (t !~ /\(\)( \{|;)$/)
		next
	f = t
	sub(/\(\).*$/, "", f)
	if (prog(f)) {
		for (i = depth[tid]; i > 0 && !prog(stack[tid, i]); i--)
			;
		print (i > 0 ? stack[tid, i] : "-") " " f
	}
	if (t ~ /\{$/)
		stack[tid, ++depth[tid]] = f
}
AWK
		pairs() { awk -v PROG='^(main|t6_.*)$' -f pairs.awk "$1" | sort | uniq -c; }
		uftrace replay -d uft.data >uft.replay 2>/dev/null
		pairs uft.replay >uft.pairs
		[ "$(wc -l <uft.pairs)" -ge 8 ] || bad "too few caller -> callee pairs in uftrace's replay: $(cat uft.pairs)"
		"$SONDE" graph --funcgraph-proc -F ':mod:t6_graph' -o plain.graph -- "$TARGET" $N >/dev/null 2>&1
		pairs plain.graph >plain.pairs
		cmp -s uft.pairs plain.pairs ||
			bad "caller -> callee pairs, sonde on the plain build vs uftrace: $(diff uft.pairs plain.pairs | head -5)"
		for f in t6_outer t6_inner t6_leaf t6_fib t6_slow t6_worker main; do
			u=$(awk -v f="$f" '$NF == f { print $(NF - 1) }' uft.txt)
			expect "calls of $f, sonde vs uftrace" "$(calls $f)" "$u"
		done
		# the -pg builds themselves, through their mcount / __fentry__ calls
		# (sonde's, preloaded before libc's: __fentry__@GLIBC_2.13 included)
		for pg in "-pg" "-pg -mfentry"; do
			# shellcheck disable=SC2086 # $pg is options
			gcc $pg -O1 -g -fno-inline -o pgx "$SRC" -lpthread 2>/dev/null || {
				bad "gcc $pg failed"
				continue
			}
			"$SONDE" graph --funcgraph-proc -F ':mod:pgx' -o pgx.graph -- ./pgx $N >/dev/null 2>&1
			pairs pgx.graph >pgx.pairs
			cmp -s uft.pairs pgx.pairs ||
				bad "caller -> callee pairs, sonde on the $pg build vs uftrace: $(diff uft.pairs pgx.pairs | head -5)"
			"$SONDE" record --graph -o pgx.dat -- ./pgx $N >/dev/null 2>pgx.err
			"$SONDE" report pgx.dat >pgx.txt 2>/dev/null
			grep -q 'mcount/__fentry__' pgx.err || bad "$pg build: not hooked through its -pg calls: $(cat pgx.err)"
			for f in t6_outer t6_inner t6_leaf t6_fib t6_slow t6_worker main; do
				u=$(awk -v f="$f" '$NF == f { print $(NF - 1) }' uft.txt)
				expect "calls of $f, sonde on the $pg build vs uftrace" \
					"$(awk -v f="$f" '$NF == f { print $(NF - 1) }' pgx.txt)" "$u"
			done
		done
	else
		echo "$T: note: uftrace record failed here; its comparison is left out" >&2
	fi
else
	echo "$T: note: no uftrace (or gcc): its comparison is left out" >&2
fi

if [ $FAILS -ne 0 ]; then
	echo "$T: $FAILS failures" >&2
	exit 1
fi
echo "$T: ok"
