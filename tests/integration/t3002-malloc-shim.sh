#!/bin/sh
# SPDX-License-Identifier: MIT
# t3002: sonde trace of malloc, free, calloc and realloc in real programs
# (/usr/bin/python3 on a fixed script, Debian's sqlite3 on a fixed SQL
# script) sees exactly the calls an LD_PRELOAD shim sees, with the same
# sizes and the same pointers, in the same order.
#
# Oracle: tests/lib/t3_alloc_shim.c, loaded in the same run. It interposes
# the four functions (so `malloc` in the program is the shim's: the first
# definition in load order, the one the dynamic linker binds and sonde's
# resolver must pick too) and logs each call between two marker functions,
# called just before main() and from an atexit handler. sonde probes the
# markers (by OBJ:SYM) and the functions by their bare names, in two runs:
#   p:m/begin libsonde_t3_shim.so:t3_marker_begin    p:m/end …:t3_marker_end
#   run 1: p:m/malloc malloc size=%di:u64            r:m/mret malloc $retval
#          p:m/free free ptr=%di:x64
#   run 2: p:m/calloc calloc n=%di:u64 size=%si:u64  r:m/cret calloc $retval
#          p:m/realloc realloc ptr=%di:x64 size=%si:u64  r:m/rret realloc $retval
# The events between the two marker events, turned into the shim's lines,
# must be the shim's log of those functions exactly: every call, size and
# pointer of the program's thread, in order (sonde's own threads allocate
# too, through the same malloc; sonde shows no event of theirs, by design,
# so the shim's lines of other threads are counted, not compared). No
# event may be lost (discard mode: any loss is counted and shown), the
# program's output must be that of a run without sonde, and so must the
# calls it makes, with their sizes.
# Lessons of t6001: ASLR off, env -i, PYTHONHASHSEED=0, an empty working
# directory; the program writes its results to a file (stdout is shared
# with sonde's event lines). T3002_KEEP=1 keeps the files.

B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
SHIM=$B/tests/lib/libsonde_t3_shim.so

TMP=$(mktemp -d /tmp/sonde-t3002.XXXXXX) || exit 1
cleanup() {
	if [ -n "${T3002_KEEP:-}" ]; then
		echo "t3002: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "t3002: FAIL: $*" >&2
	exit 1
}

skip() {
	echo "t3002: SKIP: $*"
	exit 77
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
[ -f "$SHIM" ] || fail "$SHIM is not built (include tests/lib/t3shim.cmake)"
command -v setarch >/dev/null 2>&1 || skip "setarch (util-linux) is not installed"
ARCH=$(uname -m)
[ "$ARCH" = x86_64 ] || skip "the register names of the definitions are x86-64's"
setarch "$ARCH" -R true 2>/dev/null || skip "setarch $ARCH -R does not work here"

mkdir "$TMP/run" && cd "$TMP/run" || fail "cannot make $TMP/run"

cat >"$TMP/script.sql" <<EOF
.output $TMP/OUT
CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
INSERT INTO t SELECT i, printf('row-%05d', i * 37 % 2001), i * 0.5 FROM n;
CREATE INDEX tb ON t(b);
SELECT count(*), sum(c), max(b), min(b) FROM t;
SELECT a, b FROM t WHERE a % 400 = 0 ORDER BY b DESC;
UPDATE t SET b = upper(b) || '-' || length(b) WHERE a % 3 = 0;
DELETE FROM t WHERE a % 7 = 0;
SELECT count(*), group_concat(substr(b, 1, 6), ',') FROM (SELECT b FROM t ORDER BY b LIMIT 8);
SELECT hex(zeroblob(100000)) IS NOT NULL, length(group_concat(b)) FROM t;
EOF
PY_SCRIPT='import json, re, sys
d = {"k%04d" % i: [i, i * i, str(i) * (i % 50)] for i in range(1500)}
s = json.dumps(d, sort_keys=True)
back = json.loads(s)
words = re.findall(r"k(\d*7)\"", s)
big = [bytes(i * 1000) for i in range(1, 40)]
with open(sys.argv[1], "w") as f:
    print(len(s), sum(v[1] for v in back.values()), len(words), words[:3], sum(map(len, big)), file=f)'

MARKERS="p:m/begin libsonde_t3_shim.so:t3_marker_begin
p:m/end libsonde_t3_shim.so:t3_marker_end"
# two sets of probes, one run each: malloc and free (what the issue asks),
# then calloc and realloc
DEFS_malloc="$MARKERS
p:m/malloc malloc size=%di:u64
r:m/mret malloc \$retval
p:m/free free ptr=%di:x64"
DEFS_calloc="$MARKERS
p:m/calloc calloc n=%di:u64 size=%si:u64
r:m/cret calloc \$retval
p:m/realloc realloc ptr=%di:x64 size=%si:u64
r:m/rret realloc \$retval"
OPS_malloc="malloc free"
OPS_calloc="calloc realloc"

# one_env ARGV0 LOG CMD...: CMD in a clean environment, ASLR off, the shim preloaded
one_env() {
	oe_argv0=$1 oe_log=$2
	shift 2
	setarch "$ARCH" -R env -i PATH=/usr/bin:/bin LC_ALL=C PYTHONHASHSEED=0 \
		PYTHONDONTWRITEBYTECODE=1 LD_PRELOAD="$SHIM" T3SHIM_OUT="$oe_log" \
		T3SHIM_ARGV0="$oe_argv0" "$@"
}

# only OPS FILE: the lines of a shim log for the functions OPS, called by
# the program's main thread (sonde's own threads allocate too; sonde shows
# no event of theirs, by design)
only() {
	awk -v ops=" $1 " '$1 == "pid" { pid = $2; next } $1 == pid && index(ops, " " $2 " ")' "$2"
}

# others FILE: how many calls a shim log has from threads other than main
others() {
	awk '$1 == "pid" { pid = $2; next } $1 != pid && $1 != "overflow" { n++ } END { print n + 0 }' "$1"
}

# sizes FILE: what a shim log says the main thread did, pointers left out
sizes() {
	awk '$1 == "pid" { pid = $2; next } $1 != pid { next }
		$2 == "malloc" { print $2, $3; next }
		$2 == "calloc" { print $2, $3, $4; next }
		$2 == "realloc" { print $2, $4; next }
		{ print $2 }' "$1"
}

# traced TAG SET IN CMD...: one run under sonde trace with the probes of SET;
# its events against the shim's log of the same run. 0 if they agree.
traced() {
	t_tag=$1.$2 t_set=$2 t_in=$3
	shift 3
	t_argv0=$1
	eval "t_defs=\$DEFS_$t_set t_ops=\$OPS_$t_set"
	rm -f "$TMP/OUT"
	t_nl='
'
	t_args=
	t_old_ifs=$IFS
	IFS=$t_nl
	for d in $t_defs; do
		t_args="$t_args$t_nl-e$t_nl$d"
	done
	IFS=$t_old_ifs
	# shellcheck disable=SC2086
	(
		IFS=$t_nl
		one_env "$t_argv0" "$TMP/$t_tag.log" "$SONDE" trace -b 16384 --discard \
			$t_args -- "$@"
	) <"$t_in" >"$TMP/$t_tag.trace" 2>"$TMP/$t_tag.err"
	t_rc=$?
	if [ $t_rc -ne 0 ]; then
		bad "$t_tag: sonde trace exited $t_rc: $(tail -3 "$TMP/$t_tag.err" | tr '\n' ' ')"
		return 1
	fi
	[ -s "$TMP/$t_tag.err" ] && { bad "$t_tag: sonde trace said: $(tail -3 "$TMP/$t_tag.err")"; return 1; }
	[ -s "$TMP/OUT" ] || { bad "$t_tag: the program wrote no result under sonde"; return 1; }
	cmp -s "$TMP/${t_tag%.*}.plain.out" "$TMP/OUT" || {
		bad "$t_tag: the program's result changed under sonde:" \
			"$(diff "$TMP/${t_tag%.*}.plain.out" "$TMP/OUT" | head -4 | tr '\n' ' ')"
		return 1
	}
	[ -s "$TMP/$t_tag.log" ] || { bad "$t_tag: the shim logged nothing under sonde"; return 1; }
	grep -q '^overflow' "$TMP/$t_tag.log" && { bad "$t_tag: the shim's log overflowed"; return 1; }
	grep -q 'LOST' "$TMP/$t_tag.trace" &&
		{ bad "$t_tag: sonde lost events: $(grep -m1 LOST "$TMP/$t_tag.trace")"; return 1; }

	# the program did under sonde what it does without: the same calls with
	# the same sizes (the pointers differ: libsonde takes memory too)
	sizes "$TMP/$t_tag.log" >"$TMP/$t_tag.log.sizes"
	cmp -s "$TMP/${t_tag%.*}.plain.log.sizes" "$TMP/$t_tag.log.sizes" || {
		bad "$t_tag: under sonde the program allocates otherwise than without:" \
			"$(diff "$TMP/${t_tag%.*}.plain.log.sizes" "$TMP/$t_tag.log.sizes" | head -4 | tr '\n' ' ')"
		return 1
	}

	# the events of the window, as the shim's lines
	awk -v tag="$t_tag" '
		function fail(msg) { print "t3002: FAIL: " tag ": " msg > "/dev/stderr"; bad = 1; exit 1 }
		{
			ts = 0
			for (i = 1; i < NF; i++)
				if ($i ~ /^[0-9]+\.[0-9]+:$/) { ts = i; break }
			if (!ts) fail("not an event line: " $0)
			tid = $1; sub(/.*-/, "", tid)
			ev = $(ts + 1); sub(/:$/, "", ev)
			# the fields: after the "(…)" context
			rest = $0; sub(/^[^(]*\([^)]*\) ?/, "", rest)
			delete f; nf = split(rest, kv, " ")
			for (k = 1; k <= nf; k++) { eq = index(kv[k], "="); f[substr(kv[k], 1, eq - 1)] = substr(kv[k], eq + 1) }
		}
		ev == "begin" { if (inwin || seen) fail("a second begin marker"); inwin = 1; seen = 1; next }
		ev == "end" { if (!inwin) fail("an end marker outside the window"); inwin = 0; done = 1; next }
		!inwin { next }
		ev == "malloc" { pend[tid, "m"] = f["size"]; next }
		ev == "calloc" { pend[tid, "c"] = f["n"] " " f["size"]; next }
		ev == "realloc" { pend[tid, "r"] = f["ptr"] " " f["size"]; next }
		ev == "free" { print tid, "free", f["ptr"]; next }
		ev == "mret" || ev == "cret" || ev == "rret" {
			k = substr(ev, 1, 1)
			if (!((tid, k) in pend)) fail("a return without its call: " $0)
			print tid, (k == "m" ? "malloc" : k == "c" ? "calloc" : "realloc"), pend[tid, k], f["arg1"]
			delete pend[tid, k]; next
		}
		{ fail("an event of no known kind: " $0) }
		END {
			if (bad) exit 1
			if (!seen || !done) { print "t3002: FAIL: " tag ": no begin or no end marker event" > "/dev/stderr"; exit 1 }
		}' "$TMP/$t_tag.trace" >"$TMP/$t_tag.sonde" || { FAILS=$((FAILS + 1)); return 1; }

	only "$t_ops" "$TMP/$t_tag.log" >"$TMP/$t_tag.want"
	if ! cmp -s "$TMP/$t_tag.want" "$TMP/$t_tag.sonde"; then
		echo "--- the shim, +++ sonde, first differences:" >&2
		diff -u "$TMP/$t_tag.want" "$TMP/$t_tag.sonde" | sed -n '3,16p' >&2
		for op in $t_ops; do
			printf 't3002: %s: %-8s shim %8d  sonde %8d\n' "$t_tag" "$op" \
				"$(awk -v o=$op '$2 == o' "$TMP/$t_tag.want" | wc -l)" \
				"$(awk -v o=$op '$2 == o' "$TMP/$t_tag.sonde" | wc -l)" >&2
		done
		bad "$t_tag: sonde's events are not the shim's calls"
		return 1
	fi
	t_counts=
	for op in $t_ops; do
		c=$(awk -v o=$op '$2 == o' "$TMP/$t_tag.want" | wc -l)
		t_counts="$t_counts $c $op,"
	done
	[ "$(wc -l <"$TMP/$t_tag.want")" -ge "${MIN:-100}" ] ||
		bad "$t_tag: only$t_counts: not a real workload (want ${MIN:-100} calls or more)"
	echo "t3002: $t_tag:${t_counts%,}: the shim's calls and sonde's events alike" \
		"($(others "$TMP/$t_tag.log") calls by sonde's own threads not compared)"
}

# compare TAG IN CMD...: a run without sonde (the program's output, what it
# allocates), then one traced run per set of probes
compare() {
	c_tag=$1 c_in=$2
	shift 2
	rm -f "$TMP/OUT"
	one_env "$1" "$TMP/$c_tag.plain.log" "$@" <"$c_in" >"$TMP/$c_tag.plain.stdout" 2>&1 ||
		fail "$c_tag: the program failed without sonde: $(tail -3 "$TMP/$c_tag.plain.stdout")"
	[ -s "$TMP/OUT" ] || fail "$c_tag: the program wrote no result"
	mv "$TMP/OUT" "$TMP/$c_tag.plain.out"
	[ -s "$TMP/$c_tag.plain.log" ] || fail "$c_tag: the shim logged nothing (no window?)"
	sizes "$TMP/$c_tag.plain.log" >"$TMP/$c_tag.plain.log.sizes"
	MIN=1000 traced "$c_tag" malloc "$c_in" "$@"
	MIN=20 traced "$c_tag" calloc "$c_in" "$@"
}

FAILS=0
bad() {
	echo "t3002: FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

tested=0
if [ -x /usr/bin/python3 ]; then
	compare python3 /dev/null /usr/bin/python3 -B -s -c "$PY_SCRIPT" "$TMP/OUT"
	tested=$((tested + 1))
else
	echo "t3002: note: /usr/bin/python3 is not installed"
fi
if [ -x /usr/bin/sqlite3 ]; then
	compare sqlite3 "$TMP/script.sql" /usr/bin/sqlite3 -batch -init /dev/null :memory:
	tested=$((tested + 1))
else
	echo "t3002: note: /usr/bin/sqlite3 is not installed (apt-get install sqlite3)"
fi
[ $tested -gt 0 ] || skip "neither /usr/bin/python3 nor /usr/bin/sqlite3 is installed"
[ "$FAILS" -eq 0 ] || fail "$FAILS checks failed (above)"
echo "ok: sonde's malloc/free and calloc/realloc events are the shim's calls ($tested programs)"
exit 0
