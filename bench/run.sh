#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run.sh - run the benchmarks and their kernel anchors in one go, and
# write docs/PERFORMANCE.md from what they printed.
#
#   ./bench/run.sh [BUILD_DIR] [--quick]     (make bench: ./bench/run.sh build)
#
# Builds nothing: make bench has built BUILD_DIR already. Steps:
#   1. bench_probe, pinned to one CPU: the unprobed baseline, the in-process
#      anchors and every sonde probe kind, one metric line each;
#   2. the kernel's anchors, each in a separate run of bench_probe --bare
#      (sonde probes nothing there): a uprobe_events probe on the same
#      target, enabled in a tracefs instance of our own, then removed. They
#      need root and tracefs; when they cannot run, a metric line with
#      status=skipped says why;
#   3. docs/PERFORMANCE.md: machine, kernel, date, command, one table.
# --quick runs everything briefly and writes no document (a smoke test).
#
# Everything added to tracefs (probes, the instance) is removed on exit,
# whatever the exit. If tracefs was not mounted, it is mounted at
# /sys/kernel/tracing for the run and unmounted at the end.
#
# Issue targets: one line in TARGETS below; the table shows PASS or MISS.
set -u

# metric | reference metric | max ratio metric/reference | the target as the issue states it
TARGETS=(
	"int3_probe_empty|kernel_uprobe_event|2|INT3 probe: no more than 2x the kernel's uprobe"
)

# metric | uprobe_events type | bench_probe target | what it is
ANCHORS=(
	"kernel_uprobe_event|p|target|kernel uprobe, tracefs event enabled"
	"kernel_uretprobe_event|r|target|kernel uretprobe, tracefs event enabled"
	"kernel_uprobe_nop5_event|p|target_nop5|kernel uprobe on a 5-byte nop, tracefs event enabled"
)

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
		sed -n '3,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*) die "unknown option $arg" ;;
	*) build=$arg ;;
	esac
done
[[ -d $build ]] || die "no build directory '$build' (run make bench)"
build=$(cd "$build" && pwd)
bench=$build/bench/bench_probe
[[ -x $bench ]] || die "$bench is not built (run make bench)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sonde-bench.XXXXXX") || die "mktemp failed"
out=$tmp/out # everything the benchmarks printed

# ---- tracefs: what we add, and its removal -----------------------------------------
tfs=
inst=
group=sonde_bench
events=() # defined in uprobe_events, still to remove

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
	rm -rf "$tmp"
	if [[ -n ${mounted_here:-} ]]; then
		umount /sys/kernel/tracing 2>/dev/null ||
			echo "bench/run.sh: could not unmount /sys/kernel/tracing" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# ---- pinning ------------------------------------------------------------------------
ncpu=$(nproc 2>/dev/null || echo 1)
pin=()
pinned="not pinned"
if command -v taskset >/dev/null && ((ncpu > 1)); then
	cpu=$((ncpu - 1))
	if taskset -c "$cpu" true 2>/dev/null; then
		pin=(taskset -c "$cpu")
		pinned="pinned to CPU $cpu with taskset"
	fi
fi

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
	local metric=$1 target=$2 desc=$3 reason=$4
	echo "metric=$metric kind=anchor status=skipped reason=\"${reason//\"/\'}\" target=$target desc=\"$desc\"" |
		tee -a "$out"
}

# ---- 1. sonde, in one process -------------------------------------------------------
start=$(date +%s)
echo "== bench_probe ($pinned)"
run_bench "$bench" $quick
main_rc=$?
baseline=$(field "$(grep -m1 '^metric=unprobed ' "$out")" ns_per_call)
[[ -n $baseline ]] || baseline=0

# ---- 2. the kernel's anchors ----------------------------------------------------------
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

# run anchor "$1" (an ANCHORS line); prints a metric line either way
run_anchor()
{
	local metric type target desc path off ev def err hits rc
	IFS='|' read -r metric type target desc <<<"$1"

	read -r path off < <(awk -v t="$target" '{
		split($1, a, "="); if (a[2] != t) next
		sub(/^path=/, "", $2); sub(/^offset=/, "", $3); print $2, $3 }' "$tmp/where")
	if [[ -z ${path:-} || -z ${off:-} ]]; then
		skip_line "$metric" "$target" "$desc" "bench_probe --where did not locate $target"
		return
	fi
	ev=${metric}_$$
	def="$type:$group/$ev $path:$off"
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
			--baseline-ns="$baseline"
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
		IFS='|' read -r metric type target desc <<<"$a"
		skip_line "$metric" "$target" "$desc" "$blocker"
	else
		run_anchor "$a"
	fi
done
if [[ -n $inst ]]; then
	rmdir "$inst" 2>/dev/null && inst=
fi
elapsed=$(($(date +%s) - start))

# ---- 3. the report ---------------------------------------------------------------------
grep '^metric=' "$out" >"$tmp/metrics"
declare -A ns status
order=()
while read -r line; do
	m=$(field "$line" metric)
	order+=("$m")
	ns[$m]=$(field "$line" ns_per_call)
	status[$m]=$(field "$line" status)
done <"$tmp/metrics"

# $1/$2 as "0.15x", or ""
ratio()
{
	[[ -n ${1:-} && -n ${2:-} ]] || return
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b }'
}

fmt_ns()
{
	awk -v x="$1" 'BEGIN { printf (x < 100 ? "%.2f" : "%.1f"), x }'
}

target_cell()
{
	local m=$1 t tm ref max text r
	for t in "${TARGETS[@]}"; do
		IFS='|' read -r tm ref max text <<<"$t"
		[[ $tm == "$m" ]] || continue
		if [[ ${status[$m]:-} != ok ]]; then
			echo "$text: n/a (${status[$m]:-not run})"
		elif [[ ${status[$ref]:-} != ok ]]; then
			echo "$text: n/a ($ref ${status[$ref]:-not run})"
		else
			r=$(awk -v a="${ns[$m]}" -v b="${ns[$ref]}" 'BEGIN { printf "%.2f", a / b }')
			if awk -v r="$r" -v max="$max" 'BEGIN { exit !(r <= max) }'; then
				echo "$text: **PASS** (${r}x)"
			else
				echo "$text: **MISS** (${r}x)"
			fi
		fi
		return
	done
}

table()
{
	local line m vs desc cell_ns cell_range cell_ratio cell_vs st
	echo "| metric | what | ns/call (median) | min – max | × unprobed | vs kernel, same kind | issue target |"
	echo "|---|---|--:|--:|--:|---|---|"
	while read -r line; do
		m=$(field "$line" metric)
		desc=$(field "$line" desc)
		st=${status[$m]}
		vs=$(field "$line" vs)
		cell_vs=
		if [[ $st == ok ]]; then
			cell_ns=$(fmt_ns "${ns[$m]}")
			cell_range="$(fmt_ns "$(field "$line" min)") – $(fmt_ns "$(field "$line" max)")"
			cell_ratio=$(field "$line" ratio)
			[[ -n $cell_ratio ]] && cell_ratio=${cell_ratio}x
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
		echo "| \`$m\` | $desc | $cell_ns | $cell_range | $cell_ratio | $cell_vs | $(target_cell "$m") |"
	done <"$tmp/metrics"
}

anchor_notes()
{
	local line m
	while read -r line; do
		[[ $(field "$line" kind) == anchor ]] || continue
		m=$(field "$line" metric)
		case ${status[$m]} in
		ok) echo "- \`$m\`: ran" ;;
		skipped) echo "- \`$m\`: skipped: $(field "$line" reason)" ;;
		*) echo "- \`$m\`: failed: $(field "$line" error)" ;;
		esac
	done <"$tmp/metrics"
}

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
ncores=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null || echo "$ncpu")
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]] && commit="$commit (with uncommitted changes)"

report()
{
	cat <<EOF
# sonde performance

Generated by \`make bench\` (\`./bench/run.sh ${build/#$root\//}\`) from the output of
that one run; do not edit by hand. Every number below was measured in that
run: ns per call of a tiny function (\`int target(int a, int b)\`, two
instructions) called in a tight loop, median of the runs, with the fastest and
slowest run beside it; ratios are medians over the unprobed call of the same
run, and over the kernel's probe of the same kind on the same function.

| | |
|---|---|
| machine | ${cpu_model:-unknown CPU}, $ncores CPUs |
| kernel | $(uname -r) |
| date | $(date -u '+%Y-%m-%d %H:%M UTC') |
| command | \`make bench\` → \`./bench/run.sh ${build/#$root\//}\`, $pinned, ${elapsed} s |
| sonde | $commit |

$(table)

Anchors, and whether they ran. \`anchor_*\` run in the same process as the
sonde probes, without sonde; \`kernel_*\` each in a separate run of
\`bench_probe --bare\`, where sonde probes nothing, under a \`uprobe_events\`
probe on the same function with its event enabled in a tracefs instance of
the bench's own (all removed afterwards):

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
sed -n '/^| metric/,/^$/p' "$tmp/report.md"
anchor_notes
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
