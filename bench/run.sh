#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run.sh - run the benchmarks and their anchors in one go, and write
# docs/PERFORMANCE.md from what they printed.
#
#   ./bench/run.sh [BUILD_DIR] [--quick]     (make bench: ./bench/run.sh build)
#
# Builds nothing of sonde's: make bench has built BUILD_DIR already (the
# LTTng anchor alone is compiled here, from bench/bench_ftrace.c, when
# liblttng-ust-dev is there). Steps:
#   0. the Debian packages the anchors need (uftrace, systemtap-sdt-dev,
#      liblttng-ust-dev, lttng-tools…), installed with apt-get when missing
#      and root; what cannot be had is said in the document;
#   1. bench_probe, pinned to one CPU: each target's unprobed call, the
#      in-process anchors (bare int3, a USDT site without tracer) and every
#      sonde probe kind, each in the form its name says (INT3 metrics with
#      optimization off, "optimized" ones only once the probe is a jump:
#      checked by its flags and by the byte at the site), one line each;
#   2. trace events through the sonde command (the target pinned to that
#      CPU, sonde, the consumer, to another): `sonde record -e 'p:…
#      TARGET a=%di:u64 b=%si:u64' -- bench_probe --bare`, ns per call of
#      the target while every call writes an event recorded to a file
#      (events recorded + lost = calls made, checked): with breakpoints
#      (SONDE_NOOPT=1), through the jump of an optimized probe, at a
#      compiled-in -fpatchable-function-entry site, and at the USDT site
#      (`-e u:sonde_bench:hit`); then sonde record's drain of a backlog and
#      sonde report's rendering, in events/s;
#   3. the kernel's anchors, each in a separate run of bench_probe --bare
#      (sonde probes nothing there): a uprobe_events probe on the same
#      function (with the same fetch args where the sonde metric has some;
#      at the USDT site with its arguments), enabled in a tracefs instance of
#      our own, then removed. They need root and tracefs;
#   4. the LTTng-UST anchor: the same loop with an LTTng tracepoint, with no
#      session (disabled) and enabled in a session of our own (a session
#      daemon is started for the run when none serves);
#   5. function_graph per traced call: bench_ftrace built five ways (entry
#      nops, -pg mcount, -pg -mfentry, -mnop-mcount nops, plain -O2),
#      each run untraced, under `sonde record --graph -F ft_leaf` and under
#      `uftrace record` (same function, to a file, every record checked),
#      the untraced loop subtracted;
#   6. sites patched per second when function_graph starts and stops
#      (bench_patch: libc's entry probes, a generated library of nop sites
#      and its plain twin);
#   7. attach and detach latency (bench/attach_bench.sh; exit 77: skipped);
#   8. docs/PERFORMANCE.md: machine, kernel, load, date, command, the
#      tables, and one line per issue target with PASS or MISS.
# When an anchor cannot run, its line says status=skipped and why.
# --quick runs everything briefly and writes no document (a smoke test).
#
# Everything added to tracefs (probes, the instance), the LTTng session and
# a session daemon started here are removed on exit, whatever the exit. If
# tracefs was not mounted, it is mounted at /sys/kernel/tracing for the run
# and unmounted at the end.
#
# Issue targets: one line each in TARGETS below; the document shows PASS or
# MISS, computed from this run's numbers.
set -u

# metric | conditions, '&' between them | the target as the issue states it
#   added<=N         ns the probe adds to a call of its function (over that
#                    function's unprobed call, same run) at most N
#   ratio:REF<=X     ns per call over REF's at most X
#   aratio:REF<=X    ns added per call over REF's ns added at most X: a
#                    probe's cost per hit against another's (the function's
#                    own call counted in neither)
TARGETS=(
	"optimized_probe_empty|added<=5&aratio:kernel_uprobe_opt_event<=0.01|optimized probe, empty handler: at most 5 ns added per hit and at least 100x cheaper than the kernel's uprobe"
	"optimized_probe_nop5_empty|added<=5&aratio:kernel_uprobe_nop5_event<=0.01|optimized probe on a 5-byte nop (a -mnop-mcount site), empty handler: at most 5 ns added per hit and at least 100x cheaper than the kernel's uprobe"
	"site_pfe_probe_empty|added<=5&aratio:kernel_uprobe_site_pfe_event<=0.01|compiled-in (-fpatchable-function-entry) site probe, empty handler: at most 5 ns added per hit and at least 100x cheaper than the kernel's uprobe"
	"optimized_event_2args|added<=25|optimized probe writing a 2-arg event: at most 25 ns per hit"
	"int3_probe_empty|aratio:kernel_uprobe_event<=2|INT3 probe: no more than 2x the kernel's uprobe"
	"tp_disabled|ratio:tp_none<=1.02|disabled tracepoint vs the same function without one: ratio at most 1.02"
	"tp_enabled|added<=15|enabled tracepoint with one int field: at most 15 ns per event"
	"graph_sonde_pfe|aratio:graph_uftrace_pfe<=0.25|function_graph, -fpatchable-function-entry build: sonde at least 4x cheaper per call than uftrace"
	"graph_sonde_mcount|aratio:graph_uftrace_mcount<=0.25|function_graph, -pg build: sonde at least 4x cheaper per call than uftrace"
	"graph_sonde_fentry|aratio:graph_uftrace_fentry<=0.25|function_graph, -pg -mfentry build: sonde at least 4x cheaper per call than uftrace"
	"graph_sonde_nopmcount|aratio:graph_uftrace_nopmcount<=0.25|function_graph, -mnop-mcount build: sonde at least 4x cheaper per call than uftrace"
	"graph_sonde_plain|aratio:graph_uftrace_plain<=0.25|function_graph, plain -O2 build (symbol table): sonde at least 4x cheaper per call than uftrace"
)

# metric | uprobe_events type | bench_probe target | what it is | fetch args | site
# (site "usdt": the USDT probe sonde_bench:hit, where `sonde list usdt -d` puts it,
# with its arguments)
ANCHORS=(
	"kernel_uprobe_event|p|target|kernel uprobe, tracefs event enabled||"
	"kernel_uretprobe_event|r|target|kernel uretprobe, tracefs event enabled||"
	"kernel_uprobe_nop5_event|p|target_nop5|kernel uprobe on a 5-byte nop, tracefs event enabled||"
	"kernel_uprobe_opt_event|p|target_opt|kernel uprobe on target_opt, tracefs event enabled||"
	"kernel_uretprobe_opt_event|r|target_opt|kernel uretprobe on target_opt, tracefs event enabled||"
	"kernel_uprobe_site_pfe_event|p|site_pfe|kernel uprobe on the -fpatchable-function-entry site, tracefs event enabled||"
	"kernel_uprobe_event_2args|p|target|kernel uprobe + 2 fetch args (a=%di:u64 b=%si:u64), tracefs event enabled|a=%di:u64 b=%si:u64|"
	"kernel_uprobe_opt_event_2args|p|target_opt|kernel uprobe on target_opt + 2 fetch args, tracefs event enabled|a=%di:u64 b=%si:u64|"
	"kernel_uprobe_site_pfe_event_2args|p|site_pfe|kernel uprobe on the -fpatchable-function-entry site + 2 fetch args, tracefs event enabled|a=%di:u64 b=%si:u64|"
	"kernel_usdt_event|p|target_usdt|kernel uprobe on the USDT site sonde_bench:hit with its 2 args, tracefs event enabled||usdt"
)

# the sonde events of step 2:
# metric | target | form (--expect) | SONDE_NOOPT | kernel twin | what it is | -e definition
EVENTS=(
	"int3_event_2args|target|int3|1|kernel_uprobe_event_2args|INT3 probe writing an event with 2 fetch args (a=%di:u64 b=%si:u64), sonde record to a file|p:sonde_bench/ev2 target a=%di:u64 b=%si:u64"
	"optimized_event_2args|target_opt|jump||kernel_uprobe_opt_event_2args|jump-optimized probe writing an event with 2 fetch args, sonde record to a file|p:sonde_bench/ev2 target_opt a=%di:u64 b=%si:u64"
	"site_pfe_event_2args|site_pfe|jump||kernel_uprobe_site_pfe_event_2args|probe at the compiled-in -fpatchable-function-entry site writing an event with 2 fetch args, sonde record to a file|p:sonde_bench/ev2 site_pfe a=%di:u64 b=%si:u64"
	"usdt_sonde_event|target_usdt|any||kernel_usdt_event|USDT probe sonde_bench:hit traced by sonde (-e u:sonde_bench:hit: its 2 args), sonde record to a file|u:sonde_bench:hit"
)

# the function_graph builds of step 5: kind | its compiler flags | uftrace's way in
GRAPH_BUILDS=(
	"pfe|-fpatchable-function-entry=5|-P ft_leaf"
	"mcount|-pg|"
	"fentry|-pg -mfentry|"
	"nopmcount|-pg -mfentry -mnop-mcount -mrecord-mcount|-P ft_leaf"
	"plain|-O2, nothing compiled in|-P ft_leaf"
)

# the Debian packages the anchors need (sonde's own build needs are install-deps.sh's)
BENCH_PKGS=(uftrace systemtap-sdt-dev liblttng-ust-dev lttng-tools python3 util-linux gcc binutils)

# calls of the --burst runs, and how many runs (median)
DRAIN_CALLS=1000000
DRAIN_RUNS=3

die()
{
	echo "bench/run.sh: $*" >&2
	exit 2
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=build
quick=
for arg in "$@"; do
	case $arg in
	--quick) quick=--quick ;;
	-h | --help)
		sed -n '3,50p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*) die "unknown option $arg" ;;
	*) build=$arg ;;
	esac
done
[[ -d $build ]] || die "no build directory '$build' (run make bench)"
build=$(cd "$build" && pwd)
bench=$build/bench/bench_probe
sonde=$build/bin/sonde
[[ -x $bench ]] || die "$bench is not built (run make bench)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sonde-bench.XXXXXX") || die "mktemp failed"
out=$tmp/out # everything the benchmarks printed

# ---- what we add (tracefs, LTTng), and its removal ------------------------------------
tfs=
inst=
group=sonde_bench
events=() # defined in uprobe_events, still to remove
lttng_session=
sessiond_pid=

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup()
{
	local ev
	if [[ -n $inst && -d $inst ]]; then
		for ev in "${events[@]}"; do
			echo 0 >"$inst/events/$group/$ev/enable" 2>/dev/null
		done
		rmdir "$inst" 2>/dev/null || echo "bench/run.sh: could not remove $inst" >&2
	fi
	for ev in "${events[@]}"; do
		echo "-:$group/$ev" >>"$tfs/uprobe_events" 2>/dev/null ||
			echo "bench/run.sh: could not remove $group/$ev from uprobe_events" >&2
	done
	events=()
	if [[ -n $lttng_session ]]; then
		lttng destroy "$lttng_session" >/dev/null 2>&1 ||
			echo "bench/run.sh: could not destroy the lttng session $lttng_session" >&2
	fi
	if [[ -n $sessiond_pid ]]; then
		kill "$sessiond_pid" 2>/dev/null
		wait "$sessiond_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
	if [[ -n ${mounted_here:-} ]]; then
		umount /sys/kernel/tracing 2>/dev/null ||
			echo "bench/run.sh: could not unmount /sys/kernel/tracing" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# ---- 0. packages ----------------------------------------------------------------------
declare -A pkg_missing # package -> why it is not there
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
ensure_packages()
{
	local p need=() err
	command -v dpkg-query >/dev/null 2>&1 || return 0 # not Debian: use what is there
	for p in "${BENCH_PKGS[@]}"; do
		installed "$p" || need+=("$p")
	done
	((${#need[@]})) || return 0
	if [[ $(id -u) != 0 ]]; then
		for p in "${need[@]}"; do pkg_missing[$p]="not installed, and not root to apt-get it"; done
		return 0
	fi
	echo "== installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! err=$({ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } 2>&1 >/dev/null); then
		echo "bench/run.sh: apt-get: ${err:0:300}" >&2
	fi
	for p in "${need[@]}"; do
		installed "$p" || pkg_missing[$p]="apt-get install $p failed: $(echo "$err" | tail -1 | cut -c1-120)"
	done
}
ensure_packages

# ---- pinning ------------------------------------------------------------------------
ncpu=$(nproc 2>/dev/null || echo 1)
pin=()
pin_other=() # the consumer (sonde, uftrace) of steps 2 and 5
cpu_opt=()   # bench_probe/bench_ftrace pin themselves there when a tracer runs them
pinned="not pinned"
if command -v taskset >/dev/null && ((ncpu > 1)); then
	cpu=$((ncpu - 1))
	if taskset -c "$cpu" true 2>/dev/null; then
		pin=(taskset -c "$cpu")
		pinned="pinned to CPU $cpu with taskset"
		others="0-$((cpu - 1))"
		((cpu == 1)) && others=0
		if taskset -c "$others" true 2>/dev/null; then
			pin_other=(taskset -c "$others")
			cpu_opt=(--cpu="$cpu")
			pinned="$pinned (the tracer, the consumer, to CPU $others)"
		fi
	fi
fi
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

run_bench()
{
	echo "\$ ${pin[*]:+${pin[*]} }$*"
	"${pin[@]}" "$@" | tee -a "$out"
	return "${PIPESTATUS[0]}"
}

# value of key $2 in metric line $1 ("" if absent)
field()
{
	local line=" $1" key=$2
	if [[ $line =~ \ $key=\"([^\"]*)\" ]]; then
		printf '%s' "${BASH_REMATCH[1]}"
	elif [[ $line =~ \ $key=([^ ]*) ]]; then
		printf '%s' "${BASH_REMATCH[1]}"
	fi
}

skip_line()
{
	local metric=$1 target=$2 desc=$3 reason=$4 kind=${5:-anchor}
	echo "metric=$metric kind=$kind status=skipped reason=\"${reason//\"/\'}\" target=$target desc=\"$desc\"" |
		tee -a "$out"
}

fail_line()
{
	local metric=$1 kind=$2 desc=$3 error=$4 target=${5:-target}
	echo "metric=$metric kind=$kind status=failed error=\"${error//\"/\'}\" target=$target desc=\"$desc\"" |
		tee -a "$out"
}

# the line's status=ok ... replaced by status=failed error="$2"
fail_of()
{
	local line=$1 err=${2//\"/\'} m k t d
	m=$(field "$line" metric)
	k=$(field "$line" kind)
	t=$(field "$line" target)
	d=$(field "$line" desc)
	echo "metric=$m kind=$k status=failed error=\"$err\" target=$t desc=\"$d\""
}

now_ns()
{
	date +%s%N
}

# median of the numbers on stdin
median()
{
	sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# "sonde: recorded N events to F (L lost)" and "sonde: D events dropped" in $1
recorded_count() { sed -n 's/^sonde: recorded \([0-9]*\) events to .*/\1/p' "$1" | tail -1; }
lost_count() { sed -n 's/^sonde: recorded .* (\([0-9]*\) lost)$/\1/p' "$1" | tail -1; }
dropped_count() { sed -n 's/^sonde: \([0-9]*\) events dropped.*/\1/p' "$1" | tail -1; }

# metric -> the metric its "added ns" is taken over (default: the baseline of its target)
declare -A base_of
# why step 3 or 4 cannot run at all ("" when it can)
sdt_missing=
[[ -n ${pkg_missing[systemtap-sdt-dev]:-} ]] && sdt_missing="systemtap-sdt-dev: ${pkg_missing[systemtap-sdt-dev]}"
if "$bench" --list 2>/dev/null | grep -q 'USDT probe site: NOT BUILT'; then
	sdt_missing="bench_probe was built without <sys/sdt.h> (install systemtap-sdt-dev, then rebuild)"
fi

# ---- 1. sonde, in one process -------------------------------------------------------
start=$(date +%s)
echo "== bench_probe ($pinned)"
run_bench "$bench" $quick
main_rc=$?
baseline=$(field "$(grep -m1 '^metric=unprobed ' "$out")" ns_per_call)
[[ -n $baseline ]] || baseline=0

# ---- 2. trace events through the sonde command -----------------------------------------

# bench_event EVENTS-line: the target timed while sonde records its events
bench_event()
{
	local metric target form noopt vs desc def line rc rec lost dropped total envs=()
	IFS='|' read -r metric target form noopt vs desc def <<<"$1"
	if [[ $target == target_usdt && -n $sdt_missing ]]; then
		skip_line "$metric" "$target" "$desc" "$sdt_missing" sonde
		return
	fi
	[[ -n $noopt ]] && envs=(SONDE_NOOPT=1)
	echo "\$ ${envs[*]:+${envs[*]} }${pin_other[*]:+${pin_other[*]} }sonde record -o ev.dat -e '$def' -- bench_probe --bare=$metric --target=$target --expect=$form ..."
	env "${envs[@]}" "${pin_other[@]}" "$sonde" record -o "$tmp/ev.dat" -e "$def" -- \
		"$bench" $quick "${cpu_opt[@]}" --bare="$metric" --kind=sonde --target="$target" \
		--expect="$form" --desc="$desc" --vs="$vs" --baseline-ns="$baseline" \
		>"$tmp/ev.out" 2>"$tmp/ev.err"
	rc=$?
	cat "$tmp/ev.out" "$tmp/ev.err"
	line=$(grep -m1 "^metric=$metric " "$tmp/ev.out")
	if [[ -z $line ]]; then
		fail_line "$metric" sonde "$desc" "sonde record exited $rc: $(grep -v '^#' "$tmp/ev.err" | head -3 | tr '\n' ' ')" "$target"
		return
	fi
	if [[ $(field "$line" status) == ok ]]; then
		rec=$(recorded_count "$tmp/ev.err")
		lost=$(lost_count "$tmp/ev.err")
		dropped=$(dropped_count "$tmp/ev.err")
		total=$(field "$line" total_calls)
		if ((rc != 0)); then
			line=$(fail_of "$line" "sonde record exited $rc: $(grep -v '^#' "$tmp/ev.err" | head -3 | tr '\n' ' ')")
		elif [[ -z $rec || -z $total ]] || ((rec + ${lost:-0} + ${dropped:-0} != total)); then
			line=$(fail_of "$line" "events recorded ${rec:-?} + lost ${lost:-0} + dropped ${dropped:-0} != calls ${total:-?}")
		else
			line="$line events=$rec lost=${lost:-0} dropped=${dropped:-0} bytes=$(stat -c %s "$tmp/ev.dat")"
			# the INT3 file is the one sonde report renders (step 2, report_text)
			[[ $metric == int3_event_2args ]] && mv "$tmp/ev.dat" "$tmp/ev_int3.dat"
		fi
	fi
	echo "$line" >>"$out"
	rm -f "$tmp/ev.dat"
}

# sonde record draining a backlog of N events to a file
bench_drain()
{
	local n=$DRAIN_CALLS runs=$DRAIN_RUNS i rc line cont end rec kb
	local ddesc="sonde record: drain a backlog of 2-arg events (written while sonde was stopped) to a file"
	local def="p:sonde_bench/ev2 target a=%di:u64 b=%si:u64"
	[[ -n $quick ]] && n=20000 runs=1
	# room for every event (~50 bytes each in the ring), no loss
	kb=$(((n * 64 / 1024 / 1024 + 1) * 1024))
	: >"$tmp/drain.ns"
	: >"$tmp/drain.bytes"
	for ((i = 0; i < runs; i++)); do
		rm -f "$tmp/drain.dat"
		echo "\$ SONDE_NOOPT=1 ${pin_other[*]:+${pin_other[*]} }sonde record -b $kb -o drain.dat -e '$def' -- bench_probe --burst=$n --stop-parent"
		SONDE_NOOPT=1 "${pin_other[@]}" "$sonde" record -b "$kb" -o "$tmp/drain.dat" -e "$def" -- \
			"$bench" "${cpu_opt[@]}" --burst="$n" --stop-parent --bare=record_burst \
			>"$tmp/drain.out" 2>"$tmp/drain.err"
		rc=$?
		end=$(now_ns)
		cat "$tmp/drain.out" "$tmp/drain.err"
		line=$(grep -m1 '^metric=record_burst ' "$tmp/drain.out")
		if ((rc != 0)) || [[ $(field "$line" status) != ok ]]; then
			fail_line record_drain consumer "$ddesc" "run $((i + 1)): sonde record exited $rc: $(field "$line" error) $(grep -v '^#' "$tmp/drain.err" | head -3 | tr '\n' ' ')"
			return
		fi
		rec=$(recorded_count "$tmp/drain.err")
		if [[ $rec != "$n" ]] || [[ -n $(lost_count "$tmp/drain.err") ]] || [[ -n $(dropped_count "$tmp/drain.err") ]]; then
			fail_line record_drain consumer "$ddesc" "run $((i + 1)): recorded ${rec:-?} events, expected $n, none lost: $(grep '^sonde:' "$tmp/drain.err" | tr '\n' ' ')"
			return
		fi
		cont=$(field "$line" cont_ns)
		echo "$((end - cont))" >>"$tmp/drain.ns"
		stat -c %s "$tmp/drain.dat" >>"$tmp/drain.bytes"
	done
	emit_rate record_drain "$ddesc" "$n" "$(median <"$tmp/drain.bytes")" "$tmp/drain.ns" "$runs"
	rm -f "$tmp/drain.dat"
}

# sonde report rendering the file of int3_event_2args (recorded while the
# target ran, as one uses record) as text
bench_report()
{
	local runs=$DRAIN_RUNS i rc t0 t1 nev bytes plain desc
	desc="sonde report: render the file of int3_event_2args as text to /dev/null"
	[[ -n $quick ]] && runs=1
	nev=$(field "$(grep -m1 '^metric=int3_event_2args ' "$out")" events)
	if [[ -z $nev || ! -s $tmp/ev_int3.dat ]]; then
		fail_line report_text consumer "$desc" "no file: int3_event_2args failed"
		return
	fi
	: >"$tmp/report.ns"
	for ((i = 0; i < runs; i++)); do
		echo "\$ ${pin_other[*]:+${pin_other[*]} }sonde report ev.dat >/dev/null"
		t0=$(now_ns)
		"${pin_other[@]}" "$sonde" report "$tmp/ev_int3.dat" >/dev/null 2>"$tmp/report.err"
		rc=$?
		t1=$(now_ns)
		if ((rc != 0)); then
			fail_line report_text consumer "$desc" "sonde report exited $rc: $(head -3 "$tmp/report.err" | tr '\n' ' ')"
			return
		fi
		echo "$((t1 - t0))" >>"$tmp/report.ns"
	done
	"$sonde" report "$tmp/ev_int3.dat" >"$tmp/report.txt" 2>/dev/null
	bytes=$(stat -c %s "$tmp/report.txt")
	# every event printed, at its symbol: (target+0x0/0x..), not a bare address
	if [[ $(grep -c ' ev2: (' "$tmp/report.txt") != "$nev" ]]; then
		fail_line report_text consumer "$desc" "sonde report printed $(grep -c ' ev2: (' "$tmp/report.txt") events, not $nev"
		return
	fi
	plain=$(grep -c ' ev2: (0x' "$tmp/report.txt")
	((plain > 0)) && desc="$desc; WARNING: $plain of the events printed without their symbol"
	emit_rate report_text "$desc" "$nev" "$bytes" "$tmp/report.ns" "$runs"
	rm -f "$tmp/ev_int3.dat" "$tmp/report.txt"
}

# emit_rate METRIC DESC EVENTS BYTES NS_FILE RUNS: a consumer metric line
emit_rate()
{
	local metric=$1 desc=$2 nev=$3 bytes=$4 file=$5 runs=$6 med min max
	med=$(median <"$file")
	min=$(sort -g "$file" | head -1)
	max=$(sort -g "$file" | tail -1)
	awk -v m="$metric" -v d="$desc" -v e="$nev" -v b="$bytes" -v med="$med" -v min="$min" \
		-v max="$max" -v runs="$runs" 'BEGIN {
		printf "metric=%s kind=consumer status=ok ns_per_call=%.2f min=%.2f max=%.2f runs=%d calls=%d", \
			m, med / e, min / e, max / e, runs, e
		printf " events=%d bytes=%d seconds=%.4f events_per_s=%.0f mb_per_s=%.1f target=target desc=\"%s\"\n", \
			e, b, med / 1e9, e / (med / 1e9), b / 1e6 / (med / 1e9), d
	}' | tee -a "$out"
}

echo
echo "== trace events through the sonde command"
if [[ ! -x $sonde ]]; then
	for e in "${EVENTS[@]}"; do
		IFS='|' read -r metric target _ _ _ desc _ <<<"$e"
		fail_line "$metric" sonde "$desc" "$sonde is not built" "$target"
	done
	fail_line record_drain consumer "sonde record drain" "$sonde is not built"
	fail_line report_text consumer "sonde report" "$sonde is not built"
else
	for e in "${EVENTS[@]}"; do
		bench_event "$e"
	done
	bench_drain
	bench_report
fi

# ---- 3. the kernel's anchors ----------------------------------------------------------
# sets tfs, or blocker to why the anchors cannot run
find_tracefs()
{
	local d err
	if [[ $(id -u) != 0 ]]; then
		blocker="not root (uprobe_events needs root)"
		return
	fi
	for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
		if [[ -e $d/uprobe_events ]]; then
			tfs=$d
			return
		fi
	done
	if [[ ! -e /sys/kernel/tracing/trace ]]; then
		if ! grep -qw tracefs /proc/filesystems 2>/dev/null; then
			blocker="kernel has no tracefs"
			return
		fi
		if ! err=$(mount -t tracefs nodev /sys/kernel/tracing 2>&1); then
			blocker="tracefs not mountable at /sys/kernel/tracing: ${err:-mount failed}"
			return
		fi
		mounted_here=1
		echo "== mounted tracefs at /sys/kernel/tracing (unmounted at the end)"
	fi
	if [[ ! -e /sys/kernel/tracing/uprobe_events ]]; then
		blocker="tracefs has no uprobe_events (kernel built without CONFIG_UPROBE_EVENTS)"
		return
	fi
	tfs=/sys/kernel/tracing
}

# hits of event $1 in uprobe_profile ("" if not listed)
profile_hits()
{
	# "path event hits"; some kernels write group/event
	awk -v ev="$1" -v gev="$group/$1" '$2 == ev || $2 == gev { print $3 }' \
		"$tfs/uprobe_profile" 2>/dev/null
}

# offset of bench_probe target $1 in its file, from --where
where_offset()
{
	awk -v t="$1" '{ split($1, a, "="); if (a[2] == t) { sub(/^offset=/, "", $3); print $3 } }' "$tmp/where"
}

# run anchor "$1" (an ANCHORS line); prints a metric line either way
run_anchor()
{
	local metric type target desc fetch site path off ev def err hits rc usdt loc
	IFS='|' read -r metric type target desc fetch site <<<"$1"

	if [[ $site == usdt ]]; then
		if [[ -n $sdt_missing ]]; then
			skip_line "$metric" "$target" "$desc" "$sdt_missing"
			return
		fi
		# "p:sdt_sonde_bench/hit PATH:0xOFF arg1=%di:s32 arg2=%si:s32"
		usdt=$("$sonde" list usdt -d "$bench" 'sonde_bench:hit' 2>&1 | grep -m1 '^p:')
		loc=$(echo "$usdt" | awk '{ print $2 }')
		if [[ -z $usdt || $loc != *:0x* ]]; then
			skip_line "$metric" "$target" "$desc" "sonde list usdt -d found no sonde_bench:hit in bench_probe: ${usdt:0:100}"
			return
		fi
		path=${loc%:*}
		off=${loc##*:}
		fetch=$(echo "$usdt" | cut -d' ' -f3-)
		# the site is the function's first byte: bench_probe --expect reads it there
		[[ $((off)) == $(($(where_offset "$target"))) ]] ||
			desc="$desc (the USDT nop is not target_usdt's first byte: the form shown is not the site's)"
	else
		read -r path off < <(awk -v t="$target" '{
			split($1, a, "="); if (a[2] != t) next
			sub(/^path=/, "", $2); sub(/^offset=/, "", $3); print $2, $3 }' "$tmp/where")
	fi
	if [[ -z ${path:-} || -z ${off:-} ]]; then
		skip_line "$metric" "$target" "$desc" "bench_probe --where did not locate $target"
		return
	fi
	ev=${metric}_$$
	def="$type:$group/$ev $path:$off${fetch:+ $fetch}"
	# shellcheck disable=SC2116 # the write error is what we capture
	if ! err=$(echo "$def" 2>&1 >>"$tfs/uprobe_events"); then
		skip_line "$metric" "$target" "$desc" "cannot define '$def': ${err##*: }"
		return
	fi
	events+=("$ev")
	# shellcheck disable=SC2116
	if ! err=$(echo 1 2>&1 >"$inst/events/$group/$ev/enable"); then
		skip_line "$metric" "$target" "$desc" "cannot enable $group/$ev: ${err##*: }"
	else
		echo "== $desc: $def"
		run_bench "$bench" $quick --bare="$metric" --target="$target" --desc="$desc" \
			--baseline-ns="$baseline" --expect=any
		rc=$?
		hits=$(profile_hits "$ev")
		echo 0 >"$inst/events/$group/$ev/enable"
		if ((rc == 0)) && [[ ${hits:-0} == 0 ]]; then
			# the kernel probe never fired: the numbers are a plain call's
			sed -i "\$s/ status=ok / status=failed error=\"the kernel probe never hit ($group\/$ev, uprobe_profile hits=${hits:-none})\" /" "$out"
		fi
		echo "   uprobe_profile: $group/$ev hits=${hits:-?}"
	fi
	if echo "-:$group/$ev" >>"$tfs/uprobe_events" 2>/dev/null; then
		unset 'events[-1]'
	fi
}

echo
echo "== kernel anchors"
blocker=
find_tracefs
if [[ -z $blocker ]]; then
	inst=$tfs/instances/sonde_bench_$$
	if ! err=$(mkdir "$inst" 2>&1); then
		blocker="cannot create a tracefs instance: ${err##*: }"
		inst=
	elif ! "$bench" --where >"$tmp/where"; then
		blocker="bench_probe --where failed"
	fi
fi
for a in "${ANCHORS[@]}"; do
	if [[ -n $blocker ]]; then
		IFS='|' read -r metric type target desc _ <<<"$a"
		skip_line "$metric" "$target" "$desc" "$blocker"
	else
		run_anchor "$a"
	fi
done
if [[ -n $inst ]]; then
	rmdir "$inst" 2>/dev/null && inst=
fi

# ---- 4. LTTng-UST ----------------------------------------------------------------------
# bench_ftrace.c built with the tracepoint; "" or why it cannot run
lttng_bin=$tmp/bench_lttng
lttng_blocker=
lttng_desc_off="LTTng-UST tracepoint (lttng_ust_tracepoint, 2 integer fields), no session: disabled"
lttng_desc_on="LTTng-UST tracepoint enabled in an lttng session (per-user buffers, discard mode), trace to a file"
build_lttng()
{
	local cc=${CC:-cc} err
	if [[ -n ${pkg_missing[liblttng-ust-dev]:-} ]]; then
		lttng_blocker="liblttng-ust-dev: ${pkg_missing[liblttng-ust-dev]}"
		return
	fi
	command -v "$cc" >/dev/null 2>&1 || {
		lttng_blocker="no C compiler ($cc) to build the LTTng anchor"
		return
	}
	if ! err=$("$cc" -O2 -fno-omit-frame-pointer -D_GNU_SOURCE -DBENCH_LTTNG -DFT_BUILD='"lttng"' \
		-I"$root/bench" -o "$lttng_bin" "$root/bench/bench_ftrace.c" -llttng-ust -ldl 2>&1); then
		lttng_blocker="cannot build the LTTng anchor: $(echo "$err" | grep -m1 error)"
	fi
}

# a session daemon: one that serves already, or ours for the run (not in a
# subshell: sessiond_pid is for cleanup); sets why when there is none
start_sessiond()
{
	local i
	if ! command -v lttng >/dev/null 2>&1 || ! command -v lttng-sessiond >/dev/null 2>&1; then
		why="lttng-tools: ${pkg_missing[lttng-tools]:-lttng or lttng-sessiond not in PATH}"
		return 1
	fi
	lttng list >/dev/null 2>&1 && return 0
	lttng-sessiond --no-kernel >"$tmp/sessiond.log" 2>&1 &
	sessiond_pid=$!
	for ((i = 0; i < 100; i++)); do
		lttng list >/dev/null 2>&1 && return 0
		kill -0 "$sessiond_pid" 2>/dev/null || break
		sleep 0.1
	done
	why="lttng-sessiond cannot start in this container: $(tr '\n' ' ' <"$tmp/sessiond.log" | cut -c1-200)"
	kill "$sessiond_pid" 2>/dev/null
	wait "$sessiond_pid" 2>/dev/null
	sessiond_pid=
	return 1
}

bench_lttng()
{
	local why line stop_out disc s
	build_lttng
	if [[ -n $lttng_blocker ]]; then
		skip_line anchor_lttng_disabled lttng_leaf "$lttng_desc_off" "$lttng_blocker"
		skip_line anchor_lttng_enabled lttng_leaf "$lttng_desc_on" "$lttng_blocker"
		return
	fi
	echo "== LTTng-UST, no session"
	run_bench "$lttng_bin" $quick --bare=anchor_lttng_disabled --kind=anchor --desc="$lttng_desc_off"
	base_of[anchor_lttng_disabled]=graph_untraced_plain
	why=
	if ! start_sessiond; then
		skip_line anchor_lttng_enabled lttng_leaf "$lttng_desc_on" "$why"
		return
	fi
	s=sonde_bench_$$
	echo "== LTTng-UST, session $s enabled"
	if ! why=$({ lttng create "$s" --output="$tmp/lttng-trace" &&
		lttng enable-channel -u -s "$s" --subbuf-size=4M --num-subbuf=8 ch &&
		lttng enable-event -u -s "$s" -c ch sonde_bench:hit &&
		lttng start "$s"; } 2>&1); then
		lttng_session=$s
		skip_line anchor_lttng_enabled lttng_leaf "$lttng_desc_on" "lttng session set-up failed: $(echo "$why" | grep -m1 -i error)"
		return
	fi
	lttng_session=$s
	echo "\$ ${pin_other[*]:+${pin_other[*]} }bench_lttng --bare=anchor_lttng_enabled --drain=lttng-trace"
	"${pin_other[@]}" "$lttng_bin" $quick "${cpu_opt[@]}" --bare=anchor_lttng_enabled --kind=anchor \
		--desc="$lttng_desc_on" --drain="$tmp/lttng-trace" >"$tmp/lttng.out" 2>&1
	cat "$tmp/lttng.out"
	stop_out=$(lttng stop "$s" 2>&1)
	echo "$stop_out"
	lttng destroy "$s" >/dev/null 2>&1 && lttng_session=
	line=$(grep -m1 '^metric=anchor_lttng_enabled ' "$tmp/lttng.out")
	if [[ -z $line ]]; then
		fail_line anchor_lttng_enabled anchor "$lttng_desc_on" "bench_lttng: $(grep -v '^#' "$tmp/lttng.out" | head -2 | tr '\n' ' ')" lttng_leaf
		return
	fi
	# lttng stop warns of discarded events (a full buffer): then the cost is a drop's
	disc=$(echo "$stop_out" | sed -n 's/.* \([0-9][0-9]*\) events* \(were\|was\) discarded.*/\1/p' | head -1)
	if [[ -n $disc && $disc != 0 ]]; then
		line=$(fail_of "$line" "lttng discarded $disc events")
	elif [[ $(field "$line" status) == ok ]]; then
		line="$line bytes=$(du -sb "$tmp/lttng-trace" 2>/dev/null | cut -f1)"
	fi
	echo "$line" >>"$out"
	base_of[anchor_lttng_enabled]=anchor_lttng_disabled
}

echo
echo "== LTTng-UST anchor"
bench_lttng

# ---- 4b. sonde's static tracepoint ----------------------------------------------------
# bench_ftrace_tp: ft_leaf with a TRACE_EVENT tracepoint of one int field,
# sonde_bench:tp_hit. Disabled: the program run alone (no libsonde is
# loaded; the site is a 5-byte nop), over the same function and loop without
# a tracepoint, timed in turn in the same process (tp_none). Enabled: under `sonde record -e
# sonde_bench:tp_hit`, every call an event written to a file (events
# recorded = calls made, checked). The buffer is small enough that the
# warm-up runs wrap it: its pages are touched before the timed runs.
tp_calls=50000 tp_kb=4096
# disabled, nothing is written: runs of 130 us, not 33, so that a 0.01 ns
# difference is not lost in each run's start (longer ones catch interrupts)
tp_off_calls=200000
[[ -n $quick ]] && tp_calls=5000 tp_off_calls=5000
bench_tp()
{
	local bin=$build/bench/bench_ftrace_tp line rc rec lost total
	local ddesc="sonde tracepoint (TRACE_EVENT, one int field), disabled: no tracer"
	local edesc="sonde tracepoint (TRACE_EVENT, one int field) enabled: sonde record -e sonde_bench:tp_hit, to a file"
	base_of[tp_disabled]=tp_none
	base_of[tp_enabled]=tp_none
	if [[ ! -x $bin ]]; then
		fail_line tp_disabled sonde "$ddesc" "$bin is not built" ft_leaf
		fail_line tp_enabled sonde "$edesc" "$bin is not built" ft_leaf
		return
	fi
	run_bench "$bin" $quick --bare=tp_disabled --kind=sonde --desc="$ddesc" --calls="$tp_off_calls" \
		--pair=tp_none
	rm -f "$tmp/tp.dat"
	echo "\$ ${pin_other[*]:+${pin_other[*]} }sonde record -e sonde_bench:tp_hit -b $tp_kb -o tp.dat -- bench_ftrace_tp --drain=tp.dat ..."
	"${pin_other[@]}" "$sonde" record -e sonde_bench:tp_hit -b "$tp_kb" -o "$tmp/tp.dat" -- \
		"$bin" $quick "${cpu_opt[@]}" --bare=tp_enabled --kind=sonde --desc="$edesc" \
		--calls="$tp_calls" --drain="$tmp/tp.dat" >"$tmp/tp.out" 2>"$tmp/tp.err"
	rc=$?
	cat "$tmp/tp.out" "$tmp/tp.err"
	line=$(grep -m1 '^metric=tp_enabled ' "$tmp/tp.out")
	if [[ -z $line ]]; then
		fail_line tp_enabled sonde "$edesc" "sonde record exited $rc: $(grep -v '^#' "$tmp/tp.err" | head -2 | tr '\n' ' ')" ft_leaf
		return
	fi
	rec=$(recorded_count "$tmp/tp.err")
	lost=$(lost_count "$tmp/tp.err")
	total=$(field "$line" total_calls)
	if [[ $(field "$line" status) != ok ]]; then
		:
	elif ((rc != 0)); then
		line=$(fail_of "$line" "sonde record exited $rc")
	elif [[ -z $rec || -z $total ]] || ((rec != total || ${lost:-0} != 0)); then
		line=$(fail_of "$line" "recorded ${rec:-?} events (${lost:-0} lost) for ${total:-?} calls")
	else
		line="$line events=$rec lost=0 bytes=$(stat -c %s "$tmp/tp.dat")"
	fi
	echo "$line" >>"$out"
	rm -f "$tmp/tp.dat"
}

echo
echo "== sonde tracepoint, disabled and enabled"
bench_tp

# ---- 5. function_graph: sonde and uftrace per traced call -------------------------------
# calls per run, and the ring buffer (the graph CLI's default size): a run's
# records fit in it about three times, and the warm-up runs wrap it (its
# pages are touched before the timed runs)
graph_calls=50000
graph_kb=8192
[[ -n $quick ]] && graph_calls=5000 graph_kb=1024

# uftrace report: ft_leaf's Calls in the record directory $1
uftrace_calls()
{
	uftrace report -d "$1" --no-pager 2>/dev/null | awk '$NF == "ft_leaf" { print $(NF - 1) }' | head -1
}

# sonde report: ft_leaf's Calls in the recording $1 (a leaf call is one record)
sonde_calls()
{
	"$sonde" report "$1" 2>/dev/null | awk '$NF == "ft_leaf" { print $(NF - 1) }' | head -1
}

bench_graph()
{
	local kind flags uopt bin line rc rec lost total how udesc sdesc ndesc calls
	IFS='|' read -r kind flags uopt <<<"$1"
	bin=$build/bench/bench_ftrace_$kind
	ndesc="untraced loop ($flags)"
	sdesc="sonde record --graph -F ft_leaf ($flags)"
	udesc="uftrace record --no-libcall${uopt:+ $uopt} ($flags)"
	if [[ ! -x $bin ]]; then
		fail_line "graph_untraced_$kind" graph_base "$ndesc" "$bin is not built" ft_leaf
		fail_line "graph_sonde_$kind" graph "$sdesc" "$bin is not built" ft_leaf
		fail_line "graph_uftrace_$kind" graph "$udesc" "$bin is not built" ft_leaf
		return
	fi
	echo "-- $kind: $flags"
	run_bench "$bin" $quick --bare="graph_untraced_$kind" --kind=graph_base --desc="$ndesc" \
		--calls="$graph_calls"

	# sonde
	rm -f "$tmp/g.dat"
	echo "\$ ${pin_other[*]:+${pin_other[*]} }sonde record --graph -F ft_leaf -b $graph_kb -o g.dat -- bench_ftrace_$kind --drain=g.dat ..."
	"${pin_other[@]}" "$sonde" record --graph -F ft_leaf -b "$graph_kb" -o "$tmp/g.dat" -- \
		"$bin" $quick "${cpu_opt[@]}" --bare="graph_sonde_$kind" --desc="$sdesc" \
		--calls="$graph_calls" --drain="$tmp/g.dat" >"$tmp/g.out" 2>"$tmp/g.err"
	rc=$?
	cat "$tmp/g.out" "$tmp/g.err"
	line=$(grep -m1 "^metric=graph_sonde_$kind " "$tmp/g.out")
	how=$(grep -m1 "^bench_ftrace_$kind: " "$tmp/g.err" | sed 's/^[^:]*: //')
	if [[ -z $line ]]; then
		fail_line "graph_sonde_$kind" graph "$sdesc" "sonde record exited $rc: $(grep -v '^#' "$tmp/g.err" | head -2 | tr '\n' ' ')" ft_leaf
	else
		rec=$(recorded_count "$tmp/g.err")
		lost=$(lost_count "$tmp/g.err")
		total=$(field "$line" total_calls)
		calls=$(sonde_calls "$tmp/g.dat")
		if [[ $(field "$line" status) != ok ]]; then
			:
		elif ((rc != 0)); then
			line=$(fail_of "$line" "sonde record exited $rc")
		elif [[ -z $calls || -z $total ]] || ((calls != total || ${lost:-0} != 0)); then
			line=$(fail_of "$line" "sonde report counts ${calls:-?} calls of ft_leaf (${lost:-0} records lost) for ${total:-?} made (sonde hooked it as: ${how:-?})")
		else
			line="$line events=$rec lost=0 bytes=$(stat -c %s "$tmp/g.dat") how=\"${how//\"/\'}\""
		fi
		echo "$line" >>"$out"
	fi
	base_of[graph_sonde_$kind]=graph_untraced_$kind
	rm -f "$tmp/g.dat"

	# uftrace
	base_of[graph_uftrace_$kind]=graph_untraced_$kind
	if ! command -v uftrace >/dev/null 2>&1; then
		skip_line "graph_uftrace_$kind" ft_leaf "$udesc" "uftrace: ${pkg_missing[uftrace]:-not in PATH}" graph
		return
	fi
	rm -rf "$tmp/ud"
	echo "\$ ${pin_other[*]:+${pin_other[*]} }uftrace record --no-libcall${uopt:+ $uopt} -d ud -- bench_ftrace_$kind --drain=ud ..."
	# shellcheck disable=SC2086 # $uopt is options
	"${pin_other[@]}" uftrace record --no-libcall $uopt -d "$tmp/ud" -- \
		"$bin" $quick "${cpu_opt[@]}" --bare="graph_uftrace_$kind" --desc="$udesc" \
		--calls="$graph_calls" --drain="$tmp/ud" >"$tmp/u.out" 2>"$tmp/u.err"
	rc=$?
	cat "$tmp/u.out" "$tmp/u.err"
	line=$(grep -m1 "^metric=graph_uftrace_$kind " "$tmp/u.out")
	if [[ -z $line ]]; then
		fail_line "graph_uftrace_$kind" graph "$udesc" "uftrace record exited $rc: $(grep -v '^#' "$tmp/u.err" | head -2 | tr '\n' ' ')" ft_leaf
	else
		calls=$(uftrace_calls "$tmp/ud")
		total=$(field "$line" total_calls)
		if [[ $(field "$line" status) != ok ]]; then
			:
		elif [[ -z $calls || $calls != "$total" ]]; then
			line=$(fail_of "$line" "uftrace recorded ${calls:-no} calls of ft_leaf for $total calls made")
		else
			line="$line events=$((2 * calls)) lost=0 bytes=$(du -sb "$tmp/ud" | cut -f1) how=\"uftrace${uopt:+ $uopt}\""
		fi
		echo "$line" >>"$out"
	fi
	rm -rf "$tmp/ud"
}

echo
echo "== function_graph per traced call: sonde and uftrace"
for g in "${GRAPH_BUILDS[@]}"; do
	bench_graph "$g"
done

# ---- 6. sites patched per second ------------------------------------------------------
echo
echo "== sites patched per second (bench_patch)"
patch_bin=$build/bench/bench_patch
for obj in libc gen_pfe gen_plain; do
	if [[ ! -x $patch_bin ]]; then
		fail_line "patch_${obj}_enable" patch "$obj" "$patch_bin is not built" "$obj"
		fail_line "patch_${obj}_disable" patch "$obj" "$patch_bin is not built" "$obj"
		continue
	fi
	# a death is reported, and tried once more (the note says so)
	note=
	for attempt in 1 2; do
		echo "\$ ${pin[*]:+${pin[*]} }bench_patch $quick --only=$obj"
		"${pin[@]}" "$patch_bin" $quick --only="$obj" >"$tmp/patch.out" 2>"$tmp/patch.err"
		rc=$?
		cat "$tmp/patch.out" "$tmp/patch.err"
		((rc == 0)) && break
		sig=
		((rc > 128)) && sig=" (signal $((rc - 128)))"
		note="${note}attempt $attempt died: exit $rc$sig. "
	done
	if ((rc != 0)); then
		fail_line "patch_${obj}_enable" patch "$obj" "$note" "$obj"
		fail_line "patch_${obj}_disable" patch "$obj" "$note" "$obj"
		continue
	fi
	while read -r line; do
		[[ -n $note ]] && line="$line note=\"$note\""
		echo "$line" >>"$out"
	done < <(grep '^metric=' "$tmp/patch.out")
done

# ---- 7. attach and detach ---------------------------------------------------------------
echo
echo "== attach and detach (bench/attach_bench.sh)"
attach_runs=15
[[ -n $quick ]] && attach_runs=3
attach_desc()
{
	case $1 in
	attach_first_latency) echo "sonde trace -p PID started -> first event line, first attach (libsonde loaded into the target)" ;;
	attach_latency) echo "sonde trace -p PID started -> first event line, libsonde already loaded" ;;
	detach_latency) echo "SIGINT to sonde trace -p -> the command exited, every probe out" ;;
	ctl_detach_latency) echo "sonde detach PID of an agent attached by sonde ctl" ;;
	*) echo "$1" ;;
	esac
}
echo "\$ bench/attach_bench.sh BUILD $attach_runs"
sh "$root/bench/attach_bench.sh" "$build" "$attach_runs" >"$tmp/attach.out" 2>"$tmp/attach.err"
rc=$?
cat "$tmp/attach.out" "$tmp/attach.err"
if ((rc == 0)); then
	while read -r line; do
		m=$(field "$line" metric)
		echo "metric=$m kind=latency status=ok ${line#"metric=$m "} target=t7_target desc=\"$(attach_desc "$m")\"" >>"$out"
	done < <(grep '^metric=' "$tmp/attach.out")
else
	why=$(grep -v '^metric=' "$tmp/attach.err" | head -2 | tr '\n' ' ')
	for m in attach_first_latency attach_latency detach_latency ctl_detach_latency; do
		if ((rc == 77)); then
			skip_line "$m" t7_target "$(attach_desc "$m")" "${why:-attach_bench.sh: skipped}" latency
		else
			fail_line "$m" latency "$(attach_desc "$m")" "attach_bench.sh exited $rc: $why" t7_target
		fi
	done
fi

elapsed=$(($(date +%s) - start))
load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

# ---- 8. the report ---------------------------------------------------------------------
grep '^metric=' "$out" >"$tmp/metrics"
declare -A ns status kind_of target_of line_of baseline_for
while read -r line; do
	m=$(field "$line" metric)
	ns[$m]=$(field "$line" ns_per_call)
	status[$m]=$(field "$line" status)
	kind_of[$m]=$(field "$line" kind)
	target_of[$m]=$(field "$line" target)
	line_of[$m]=$line
	if [[ ${kind_of[$m]} == baseline && -z ${baseline_for[${target_of[$m]}]:-} ]]; then
		baseline_for[${target_of[$m]}]=$m
	fi
done <"$tmp/metrics"

# the metric $1 is taken over ("" if none)
base()
{
	local m=$1
	if [[ -n ${base_of[$m]:-} ]]; then
		echo "${base_of[$m]}"
	elif [[ ${kind_of[$m]} != baseline && ${kind_of[$m]} != graph_base ]]; then
		echo "${baseline_for[${target_of[$m]:-}]:-}"
	fi
}

# ns metric $1 adds over its base ("" if not known)
added()
{
	local m=$1 b
	b=$(base "$m")
	[[ -n $b && ${status[$m]:-} == ok && ${status[$b]:-} == ok ]] || return
	awk -v a="${ns[$m]}" -v b="${ns[$b]}" 'BEGIN { printf "%.2f", a - b }'
}

# $1/$2 as "0.15x", or ""
ratio()
{
	[[ -n ${1:-} && -n ${2:-} ]] || return
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b }'
}

fmt_ns()
{
	awk -v x="$1" 'BEGIN { printf (x < 100 && x > -100 ? "%.2f" : "%.1f"), x }'
}

# one condition of a target: prints "value op limit" and returns its truth; 2: n/a
condition()
{
	local m=$1 c=$2 what ref op lim val r
	if [[ $c =~ ^(added|ns|ratio:([a-z0-9_]+)|aratio:([a-z0-9_]+))(<=|>=)([0-9.]+)$ ]]; then
		what=${BASH_REMATCH[1]}
		ref=${BASH_REMATCH[2]}${BASH_REMATCH[3]}
		op=${BASH_REMATCH[4]}
		lim=${BASH_REMATCH[5]}
	else
		echo "bad condition $c"
		return 2
	fi
	case $what in
	added) val=$(added "$m") ;;
	ns) val=${ns[$m]} ;;
	ratio:*)
		[[ ${status[$ref]:-} == ok ]] || {
			echo "$ref ${status[$ref]:-not run}"
			return 2
		}
		val=$(awk -v a="${ns[$m]}" -v b="${ns[$ref]}" 'BEGIN { printf "%.4f", a / b }')
		;;
	aratio:*)
		[[ ${status[$ref]:-} == ok ]] || {
			echo "$ref ${status[$ref]:-not run}"
			return 2
		}
		r=$(added "$ref")
		val=$(awk -v a="$(added "$m")" -v b="$r" 'BEGIN { if (b > 0) printf "%.4f", a / b }')
		;;
	esac
	if [[ -z $val ]]; then
		echo "${what%%:*} not known"
		return 2
	fi
	case $what in
	added) printf '%s ns added' "$(fmt_ns "$val")" ;;
	ns) printf '%s ns' "$(fmt_ns "$val")" ;;
	ratio:*) printf '%sx of %s' "$(awk -v v="$val" 'BEGIN { printf (v < 0.1 ? "%.4f" : "%.2f"), v }')" "$ref" ;;
	aratio:*) printf '%sx of %s (%.1fx cheaper)' "$(awk -v v="$val" 'BEGIN { printf (v < 0.1 ? "%.4f" : "%.2f"), v }')" "$ref" \
		"$(awk -v v="$val" 'BEGIN { printf "%.4f", (v > 0 ? 1 / v : 0) }')" ;;
	esac
	awk -v v="$val" -v l="$lim" -v op="$op" 'BEGIN { exit !(op == "<=" ? v <= l : v >= l) }'
}

# "TEXT: **PASS** (...)" for a TARGETS line
target_verdict()
{
	local t=$1 tm conds text c cs parts=() ok=1 na="" msg rc
	IFS='|' read -r tm conds text <<<"$t"
	if [[ ${status[$tm]:-} != ok ]]; then
		echo "$text: **n/a** (\`$tm\` ${status[$tm]:-not run})"
		return
	fi
	IFS='&' read -ra cs <<<"$conds"
	for c in "${cs[@]}"; do
		msg=$(condition "$tm" "$c")
		rc=$?
		parts+=("$msg")
		((rc == 2)) && na=1
		((rc == 1)) && ok=
	done
	local joined
	joined=$(printf '%s; ' "${parts[@]}")
	joined=${joined%; }
	if [[ -n $na && -n $ok ]]; then
		echo "$text: **n/a** (\`$tm\`: $joined)"
	elif [[ -n $ok ]]; then
		echo "$text: **PASS** (\`$tm\`: $joined)"
	else
		echo "$text: **MISS** (\`$tm\`: $joined)"
	fi
}

target_cell()
{
	local m=$1 t v
	for t in "${TARGETS[@]}"; do
		[[ ${t%%|*} == "$m" ]] || continue
		v=$(target_verdict "$t")
		if [[ $v == *'**PASS**'* ]]; then echo "**PASS**"; elif [[ $v == *'**MISS**'* ]]; then echo "**MISS**"; else echo "n/a"; fi
		return
	done
}

form_cell()
{
	local line=$1 how flags
	how=$(field "$line" how)
	flags=$(field "$line" flags)
	[[ -n $how ]] || return
	case $how in
	int3) printf 'int3' ;;
	jump) printf 'jmp' ;;
	call) printf 'call' ;;
	*) printf '%s' "$how" ;;
	esac
	[[ -n $flags ]] && printf ' (flags %s)' "$flags"
}

# the probes: everything timed per call of a function, but the function tracers'
table()
{
	local line m vs desc cell_ns cell_range cell_ratio cell_vs cell_add st k b
	echo "| metric | what | form | ns/call (median) | min – max | + ns/hit | × unprobed | vs kernel, same kind | target |"
	echo "|---|---|---|--:|--:|--:|--:|---|---|"
	while read -r line; do
		k=$(field "$line" kind)
		[[ $k == baseline || $k == sonde || $k == anchor ]] || continue
		m=$(field "$line" metric)
		desc=$(field "$line" desc)
		st=${status[$m]}
		vs=$(field "$line" vs)
		cell_vs=
		cell_add=
		if [[ $st == ok ]]; then
			cell_ns=$(fmt_ns "${ns[$m]}")
			cell_range="$(fmt_ns "$(field "$line" min)") – $(fmt_ns "$(field "$line" max)")"
			cell_ratio=$(ratio "${ns[$m]}" "$baseline")
			b=$(base "$m")
			[[ -n $b && -n $(added "$m") ]] && cell_add="$(fmt_ns "$(added "$m")") (\`$b\`)"
			if [[ -n $vs ]]; then
				if [[ ${status[$vs]:-} == ok ]]; then
					cell_vs="$(ratio "${ns[$m]}" "${ns[$vs]}") of $vs"
				else
					cell_vs="n/a ($vs ${status[$vs]:-not run})"
				fi
			fi
		else
			cell_ns="$st: $(field "$line" error)$(field "$line" reason)"
			cell_range=
			cell_ratio=
		fi
		echo "| \`$m\` | $desc | $(form_cell "$line") | $cell_ns | $cell_range | $cell_add | $cell_ratio | $cell_vs | $(target_cell "$m") |"
	done <"$tmp/metrics"
}

# events (and bytes) per second: the events' producer side, the kernel's, the
# consumer's two outputs
rate_table()
{
	local line m st desc nev bytes cell_rate cell_ns cell_range cell_mb cell_bpe
	echo "| metric | what | events/s (median) | ns/event | min – max | MB/s | bytes/event |"
	echo "|---|---|--:|--:|--:|--:|--:|"
	while read -r line; do
		m=$(field "$line" metric)
		[[ $(field "$line" kind) == consumer || $m == *_2args || $m == *usdt*event || $m == anchor_lttng_enabled ]] || continue
		desc=$(field "$line" desc)
		st=${status[$m]}
		if [[ $st == ok ]]; then
			nev=$(field "$line" events)
			[[ -z $nev && $m == anchor_lttng_enabled ]] && nev=$(field "$line" total_calls)
			bytes=$(field "$line" bytes)
			cell_ns=$(fmt_ns "${ns[$m]}")
			cell_range="$(fmt_ns "$(field "$line" min)") – $(fmt_ns "$(field "$line" max)")"
			cell_rate=$(awk -v x="${ns[$m]}" 'BEGIN { printf "%\047.0f", 1e9 / x }')
			cell_mb=
			cell_bpe=
			if [[ -n $bytes && -n $nev ]] && ((nev > 0)); then
				cell_bpe=$(awk -v b="$bytes" -v e="$nev" 'BEGIN { printf "%.1f", b / e }')
				cell_mb=$(awk -v b="$bytes" -v e="$nev" -v x="${ns[$m]}" \
					'BEGIN { printf "%.1f", b / e * 1e9 / x / 1e6 }')
			fi
		else
			cell_rate="$st: $(field "$line" error)$(field "$line" reason)"
			cell_ns=
			cell_range=
			cell_mb=
			cell_bpe=
		fi
		echo "| \`$m\` | $desc | $cell_rate | $cell_ns | $cell_range | $cell_mb | $cell_bpe |"
	done <"$tmp/metrics"
}

# cell for graph metric $1: "added (raw)" or the failure
graph_cell()
{
	local m=$1 line=${line_of[$1]:-}
	if [[ -z $line ]]; then
		echo "not run"
	elif [[ ${status[$m]} != ok ]]; then
		echo "${status[$m]}: $(field "$line" error)$(field "$line" reason)"
	else
		echo "$(fmt_ns "$(added "$m")") ($(fmt_ns "${ns[$m]}"); $(fmt_ns "$(field "$line" min)") – $(fmt_ns "$(field "$line" max)"))"
	fi
}

graph_table()
{
	local g kind flags uopt s u ratio_cell t v how
	echo "| build | sonde hooks it as | untraced ns/call | sonde: + ns/call (traced; min – max) | uftrace: + ns/call (traced; min – max) | sonde / uftrace | target |"
	echo "|---|---|--:|--:|--:|--:|---|"
	for g in "${GRAPH_BUILDS[@]}"; do
		IFS='|' read -r kind flags uopt <<<"$g"
		s=graph_sonde_$kind
		u=graph_uftrace_$kind
		how=$(field "${line_of[$s]:-}" how)
		[[ -z $how ]] && how=$(field "${line_of[$s]:-}" error | sed -n 's/.*sonde hooked it as: \(.*\))$/\1/p')
		ratio_cell=
		if [[ ${status[$s]:-} == ok && ${status[$u]:-} == ok ]]; then
			ratio_cell=$(ratio "$(added "$s")" "$(added "$u")")
		fi
		v=
		for t in "${TARGETS[@]}"; do
			[[ ${t%%|*} == "$s" ]] && v=$(target_cell "$s")
		done
		echo "| \`$kind\` ($flags) | ${how:-?} | $(fmt_ns "${ns[graph_untraced_$kind]:-0}") | $(graph_cell "$s") | $(graph_cell "$u") | $ratio_cell | $v |"
	done
}

patch_table()
{
	local line m st
	echo "| metric | what | sites | ms (median) | min – max | sites/s | first (cold) ms | how the sites were hooked |"
	echo "|---|---|--:|--:|--:|--:|--:|---|"
	while read -r line; do
		[[ $(field "$line" kind) == patch ]] || continue
		m=$(field "$line" metric)
		st=${status[$m]}
		if [[ $st == ok ]]; then
			echo "| \`$m\` | $(field "$line" desc)$(field "$line" note | sed 's/^./; NOTE: &/') | $(field "$line" sites) | $(field "$line" ms)$(field "$line" write_ms | sed 's/^..*$/ (the write: &)/') | $(field "$line" min) – $(field "$line" max) | $(awk -v x="$(field "$line" sites_per_s)" 'BEGIN { printf "%\047.0f", x }') | $(field "$line" cold_ms) | $(field "$line" how) |"
		else
			echo "| \`$m\` | $(field "$line" desc) | $st: $(field "$line" error)$(field "$line" reason) | | | | | |"
		fi
	done <"$tmp/metrics"
}

latency_table()
{
	local line m st
	echo "| metric | what | ms (median) | min – max | runs |"
	echo "|---|---|--:|--:|--:|"
	while read -r line; do
		[[ $(field "$line" kind) == latency ]] || continue
		m=$(field "$line" metric)
		st=${status[$m]}
		if [[ $st == ok ]]; then
			echo "| \`$m\` | $(field "$line" desc) | $(field "$line" ms) | $(field "$line" min) – $(field "$line" max) | $(field "$line" runs) |"
		else
			echo "| \`$m\` | $(field "$line" desc) | $st: $(field "$line" error)$(field "$line" reason) | | |"
		fi
	done <"$tmp/metrics"
}

targets_list()
{
	local t
	for t in "${TARGETS[@]}"; do
		echo "- $(target_verdict "$t")"
	done
}

# what no event can cost less than on this machine, from the same run
floors_note()
{
	local tsc=${ns[anchor_tsc_read]:-} plain=${ns[unprobed]:-}
	[[ -n $tsc && ${status[anchor_tsc_read]} == ok ]] || return 0
	echo "Every record carries a timestamp: one read of the TSC, $(fmt_ns "$tsc") ns for a"
	echo "call of a function that does nothing else (\`anchor_tsc_read\`; a plain call:"
	echo "$(fmt_ns "${plain:-0}") ns). That is the floor under an event (\`optimized_event_2args\`,"
	echo "\`tp_enabled\`), and twice it under a function_graph call, which reads the"
	echo "clock at its entry and at its return."
}

anchor_notes()
{
	local line m k
	while read -r line; do
		k=$(field "$line" kind)
		m=$(field "$line" metric)
		[[ $k == anchor || $m == anchor_* || $m == graph_uftrace_* ]] || continue
		case ${status[$m]} in
		ok) echo "- \`$m\`: ran" ;;
		skipped) echo "- \`$m\`: skipped: $(field "$line" reason)" ;;
		*) echo "- \`$m\`: failed: $(field "$line" error)" ;;
		esac
	done <"$tmp/metrics"
	for p in "${!pkg_missing[@]}"; do
		echo "- package \`$p\`: ${pkg_missing[$p]}"
	done
}

drain_calls() { field "$(grep -m1 '^metric=record_drain ' "$tmp/metrics")" events; }
drain_runs() { field "$(grep -m1 '^metric=record_drain ' "$tmp/metrics")" runs; }

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
ncores=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null || echo "$ncpu")
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$root" status --porcelain --untracked-files=no -- . ':!docs/PERFORMANCE.md' 2>/dev/null) ]] && commit="$commit (with uncommitted changes)"
uftrace_version=$(uftrace --version 2>/dev/null | head -1)
lttng_version=$(lttng --version 2>/dev/null | head -1)

report()
{
	cat <<EOF
# sonde performance

Generated by \`make bench\` (\`./bench/run.sh ${build/#$root\//}\`) from the output of
that one run; do not edit by hand. Every number below was measured in that
run: ns per call of a tiny function called in a tight loop, median of the
runs, with the fastest and slowest run beside it. "+ ns/hit" is what the
probe adds to a call of its function: the median over that function's
unprobed call in the same run (named beside it). Ratios are medians over the
unprobed \`target\` call, and over the kernel's probe of the same kind on the
same function.

| | |
|---|---|
| machine | ${cpu_model:-unknown CPU}, $ncores CPUs |
| kernel | $(uname -r) |
| load average (1, 5, 15 min) | ${load_start:-?} at the start, ${load_end:-?} at the end (other work on the machine shows in the min – max spread) |
| date | $(date -u '+%Y-%m-%d %H:%M UTC') |
| command | \`make bench\` → \`./bench/run.sh ${build/#$root\//}\`, $pinned, ${elapsed} s |
| sonde | $commit |
| anchors | ${uftrace_version:-uftrace: not installed}; ${lttng_version:-lttng: not installed} |

## Issue targets

$(targets_list)

$(floors_note)

## Probes, ns per call

The functions: \`target\` is \`lea; ret\` (4 bytes: a probe there stays a
breakpoint), \`target_opt\` \`mov; mov; add; ret\` (6 movable bytes: jump-optimized),
\`target_nop5\` a 5-byte nop first (the bytes of a \`-pg -mfentry -mnop-mcount\`
site), \`site_pfe\` a \`-fpatchable-function-entry=5\` function (five one-byte
nops), \`target_usdt\` a \`<sys/sdt.h>\` USDT probe, \`target_tsc\` one \`rdtsc\`.
"form" is what the site was
while timed: \`int3\`, or \`jmp\` (a jump to the probe's detour), read from the
site's first byte and the probe's flags (\`SONDE_KPROBE_FLAG_OPTIMIZED\` = 0x4)
before and after the timing; a metric named INT3 ran with optimization off, one
named optimized only once \`sonde_wait_kprobe_optimizer()\` had made it a jump.
The \`*_event*\` rows are the target's own loop, timed while \`sonde record\`
writes every call's event to a file (events recorded + lost = calls, checked).
\`tp_disabled\` and \`tp_none\` are \`ft_leaf\` with and without its tracepoint,
in one binary built with every branch kept off 32-byte boundaries (Intel's JCC
erratum slows whichever of the two functions has its \`ret\` end on one),
timed in turn, $tp_off_calls calls a run, to 0.001 ns.

$(table)

## Events per second

\`*_2args\` and \`*usdt*event\`: the target's own loop timed while an event is
written on every call (sonde: \`sonde record\` to a file, the target pinned to
one CPU, sonde to the other; MB/s and bytes/event are the file's; kernel: the
uprobe with the same fetch args). \`anchor_lttng_enabled\`: the same with an
LTTng-UST tracepoint in an lttng session (bytes: the trace directory).
\`record_drain\`: the target stops sonde (SIGSTOP), writes $(drain_calls) events
into a buffer big enough for all, continues sonde and exits; timed from the
SIGCONT to sonde's exit (so it includes sonde's teardown), median of
$(drain_runs) runs, every event recorded. \`report_text\`: \`sonde report\` of
the \`int3_event_2args\` file to /dev/null, median of $(drain_runs) runs (each a
whole process: start, read, symbolize, print); MB/s of text.

$(rate_table)

## Function tracers: ns per traced call (function_graph: entry and exit)

\`bench/bench_ftrace.c\` built five ways; the program times its own loop of
calls of \`ft_leaf()\` (a small noinline function) with \`CLOCK_MONOTONIC\`, so
start-up and the tracer's set-up do not count: $graph_calls calls a run, 5 warm-up
runs then the median of 11, each run followed by a pause until the tracer's
output file has stopped growing (its consumer has drained the run). Each
build is run untraced, under \`sonde record --graph -F ft_leaf -b $graph_kb\` and
under \`uftrace record --no-libcall\` (\`-P ft_leaf\`: uftrace's dynamic
patching, for the builds without mcount calls), both pinned as above and
recording to a file; every call must be in the record (\`sonde report\` and
\`uftrace report\` count every call of ft_leaf, none lost; sonde writes a call
that calls nothing traced as one record, entry and exit), or the number is
marked failed. "+ ns/call" is the traced loop's
median minus the untraced loop's (the traced median beside it). The sonde
ring buffer is wrapped during the warm-up, so the timed runs do not fault in
fresh buffer pages: the raw output's \`cold_ns=\` is the first warm-up run.

$(graph_table)

## Sites patched per second

\`bench/bench_patch.c\` (libsonde linked statically, its own virtual tracefs
driven as \`sd_tracefs_write()\`): \`set_ftrace_filter\` = \`:mod:OBJECT\`, then
\`current_tracer\` nop → function_graph, timed until every site has its final
form (\`sonde_wait_kprobe_optimizer()\`; the write alone beside it), and back
to nop. Median of the rounds after a first, cold one (symbol tables read).

$(patch_table)

## Attach and detach

\`bench/attach_bench.sh\`: a busy 4-thread target (\`tests/targets/t7_target\`),
\`sonde trace -p\` / \`sonde detach\`, wall-clock ms.

$(latency_table)

## Anchors, and whether they ran

\`anchor_*\` run without sonde (the bare int3 in the same process as the
sonde probes; the USDT site without a tracer; LTTng in its own program);
\`kernel_*\` each in a separate run of \`bench_probe --bare\`, where sonde
probes nothing, under a \`uprobe_events\` probe on the same function with its
event enabled in a tracefs instance of the bench's own (all removed
afterwards); \`graph_uftrace_*\`: uftrace.

$(anchor_notes)

Method: \`bench/bench_probe.c\` doubles the calls until a loop takes 5 ms
(warm-up and calibration), then times $(field "$(head -1 "$tmp/metrics")" runs) loops of ~100 ms each
with \`CLOCK_MONOTONIC\`. Every loop checks the sum of the return values and
every probe its hit count, so a probe that breaks the program is reported as
failed, not timed. The unprobed call is a throughput number: the CPU overlaps
consecutive calls, so it is a lower bound on what a call costs.

<details><summary>Raw output</summary>

\`\`\`
$(cat "$tmp/metrics")
\`\`\`
</details>
EOF
}

report >"$tmp/report.md"
echo
sed -n '/^## Issue targets/,/^## Events/p' "$tmp/report.md"
sed -n '/^## Function tracers/,$p' "$tmp/report.md" | sed -n '/^| build/,/^$/p'
echo "== ${elapsed} s"

failed=$(grep -c ' status=failed ' "$tmp/metrics")
if [[ -z $quick ]]; then
	mkdir -p "$root/docs"
	cp "$tmp/report.md" "$root/docs/PERFORMANCE.md.tmp.$$" &&
		mv "$root/docs/PERFORMANCE.md.tmp.$$" "$root/docs/PERFORMANCE.md" &&
		echo "== wrote docs/PERFORMANCE.md"
fi
if ((failed > 0 || main_rc != 0)); then
	echo "bench/run.sh: $failed metric(s) failed" >&2
	exit 1
fi
exit 0
