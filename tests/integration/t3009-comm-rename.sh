#!/bin/sh
# SPDX-License-Identifier: MIT
# t3009: a thread renamed after it wrote events shows its new name, as the
# kernel's trace shows a task's current comm.
#
# /usr/bin/python3 calls getppid() three times, renames its thread
# (prctl PR_SET_NAME, what pthread_setname_np does for the calling thread),
# sleeps 5 ms and calls it three times more, under `sonde trace -e
# 'p:t/g getppid'`. The first three events carry "python3", the last three
# the new name (the name is read again 1 ms after the last read).
B=${SONDE_BUILD:?SONDE_BUILD is not set}
SONDE=$B/bin/sonde
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/sonde-t3009.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT

fail() {
	echo "t3009: FAIL: $*" >&2
	exit 1
}

[ -x "$SONDE" ] || fail "$SONDE is not built"
if [ ! -x "$PY" ]; then
	echo "t3009: SKIP: $PY is not installed (scripts/install-deps.sh installs it)" >&2
	exit 77
fi
cat >"$TMP/rename.py" <<'EOF'
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
for _ in range(3):
    os.getppid()
if libc.prctl(15, b"t3009-renamed", 0, 0, 0) != 0:  # PR_SET_NAME
    raise SystemExit("prctl failed")
time.sleep(0.005)
for _ in range(3):
    os.getppid()
print("done")
EOF
"$SONDE" trace -o "$TMP/events" -e 'p:t/g getppid' -- "$PY" "$TMP/rename.py" \
	>"$TMP/out" 2>"$TMP/err" || fail "sonde trace failed: $(cat "$TMP/err")"
grep -qx done "$TMP/out" || fail "the script did not finish: $(cat "$TMP/out" "$TMP/err")"
# the comm-tid column of each event, in order
grep ' g: (getppid+0x0/' "$TMP/events" | sed 's/^ *\(.*\)-[0-9]* *\[.*/\1/' >"$TMP/comms"
printf 'python3\npython3\npython3\nt3009-renamed\nt3009-renamed\nt3009-renamed\n' >"$TMP/want"
cmp -s "$TMP/comms" "$TMP/want" ||
	fail "the events' names: $(tr '\n' ' ' <"$TMP/comms"), want: $(tr '\n' ' ' <"$TMP/want")"
echo "t3009: ok"
