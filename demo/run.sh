#!/bin/sh
# make demo: sonde on a bundled program.
set -e
BUILD=${1:-build}
SONDE=$BUILD/bin/sonde

echo "== sonde trace: events on a running program (demo/demo_target.c)"
echo "\$ sonde trace -e 'p:demo/add add_word text=+0(%di):string' \\"
echo "              -e 'r:demo/added add_word \$retval' \\"
echo "              -e 'p:demo/alloc malloc size=%di:u64' --filter 'size > 16' \\"
echo "              -- $BUILD/demo/demo_target"
"$SONDE" trace -e 'p:demo/add add_word text=+0(%di):string' \
	-e 'r:demo/added add_word $retval' \
	-e 'p:demo/alloc malloc size=%di:u64' --filter 'size > 16' \
	-- "$BUILD/demo/demo_target" | head -12
echo "   ..."
echo
echo "== the kprobes API inside a program (demo/kprobe_demo.c)"
"$BUILD/demo/kprobe_demo"
