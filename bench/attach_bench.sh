#!/bin/sh
# SPDX-License-Identifier: MIT
# attach_bench.sh BUILD [RUNS] - how long attaching to and detaching from a
# running process take (issue 7), on a busy multi-threaded target
# (tests/targets/t7_target, 4 threads calling t7_work every few µs).
#
#   attach_latency  `sonde trace -p PID -e 'p:… t7_work …'` started -> its
#                   first event line read (ptrace stop, dlopen of libsonde,
#                   agent thread, probe defined and optimized, first hit)
#   detach_latency  SIGINT to that command -> the command has exited (every
#                   probe out and every byte back: the agent answers the
#                   detach only then)
#   ctl_detach      `sonde detach PID` of an agent attached by `sonde ctl`
#
# The first run loads libsonde.so into the target (attach_first_latency);
# later runs find it loaded and idle. Prints one line per metric:
#   metric=NAME ms=MEDIAN min=MIN max=MAX runs=N
# and exits 77 when ptrace is not permitted or python3 is missing.
B=${1:?usage: attach_bench.sh BUILD [RUNS]}
RUNS=${2:-15}
SONDE=$B/bin/sonde
TARGET=$B/tests/targets/t7_target
command -v python3 >/dev/null 2>&1 || { echo "attach_bench: python3 is needed" >&2; exit 77; }
if [ ! -x "$SONDE" ] || [ ! -x "$TARGET" ]; then
	echo "attach_bench: build $B first" >&2
	exit 1
fi

exec python3 - "$SONDE" "$TARGET" "$RUNS" <<'PY'
import os, signal, statistics, subprocess, sys, time

sonde, target, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = subprocess.Popen([target, "-t", "4"], stdout=subprocess.PIPE, text=True)
pid = int(t.stdout.readline())
t.stdout.readline()  # "ready"


def ms(a, b):
    return (b - a) * 1e3


def report(name, v):
    if not v:
        return
    print("metric=%s ms=%.2f min=%.2f max=%.2f runs=%d"
          % (name, statistics.median(v), min(v), max(v), len(v)), flush=True)


attach, detach, ctl_detach, first = [], [], [], []
try:
    for i in range(runs):
        t0 = time.monotonic()
        p = subprocess.Popen([sonde, "trace", "-p", str(pid), "-e",
                              "p:bench/work t7_work id=%di:s32 n=%si:s64"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = p.stdout.readline()
        t1 = time.monotonic()
        if not line:
            sys.stderr.write("attach_bench: no event: %s\n" % p.stderr.read().decode())
            p.kill()
            sys.exit(77 if b"ptrace" in line else 1)
        (first if i == 0 else attach).append(ms(t0, t1))
        p.send_signal(signal.SIGINT)
        t2 = time.monotonic()
        # keep reading: the command drains what is left before it exits
        p.stdout.read()
        p.wait()
        t3 = time.monotonic()
        detach.append(ms(t2, t3))
        p.stderr.close()

        subprocess.run([sonde, "ctl", str(pid), "append", "kprobe_events",
                        "p:bench/w%d t7_work" % i], check=True, stderr=subprocess.DEVNULL)
        subprocess.run([sonde, "ctl", str(pid), "write", "events/bench/w%d/enable" % i, "1"],
                       check=True)
        time.sleep(0.05)
        t4 = time.monotonic()
        subprocess.run([sonde, "detach", str(pid)], check=True)
        ctl_detach.append(ms(t4, time.monotonic()))
finally:
    t.send_signal(signal.SIGTERM)
    t.wait()
report("attach_first_latency", first)
report("attach_latency", attach)
report("detach_latency", detach)
report("ctl_detach_latency", ctl_detach)
PY
