#!/bin/sh
# make demo: sonde on a bundled program.
set -e
BUILD=${1:-build}
echo "== the kprobes API inside a program (demo/kprobe_demo.c) =="
"$BUILD/demo/kprobe_demo"
