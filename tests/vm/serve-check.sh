#!/usr/bin/env bash
# The main job's serving mode, checked from the host's side: boot the VM in
# serve mode (tests/vm/run.sh --suite serve) with examples/disk0.toml, wait
# until it has exported its devices on 127.0.0.1:<port>, use them with
# libiscsi's clients as a user would, then stop it the way Ctrl-C does and
# check that it took everything down and the backing file stayed on the host;
# then the same with --shell, driven through a pseudo-terminal.
#
#   tests/vm/serve-check.sh [--before SUITES] [--timeout SECS]
#
# --before runs other suites first in the same boot ("compare+latency": CI
# boots the VM as few times as it can).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BEFORE=
TIMEOUT=900
while [ $# -gt 0 ]; do
    case "$1" in
        --before) BEFORE=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        *) echo "serve-check.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

DIR=$(mktemp -d /var/tmp/tcmu-wasm-serve.XXXXXX)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
FAILED=0
pass() { echo "CHECK PASS serve_host.$1"; }
failc() { echo "CHECK FAIL serve_host.$1: $2"; FAILED=1; }

"$HERE/run.sh" --suite "${BEFORE:+$BEFORE+}serve" --serve-dir "$DIR" --serve-port "$PORT" \
    --timeout "$TIMEOUT" &
VM=$!
cleanup() { kill "$VM" 2>/dev/null || true; }
trap cleanup EXIT

deadline=$(( $(date +%s) + TIMEOUT - 60 ))
while [ ! -e "$DIR/ready" ]; do
    kill -0 "$VM" 2>/dev/null || { echo "serve-check.sh: the VM ended before serving" >&2; wait "$VM"; exit 1; }
    [ "$(date +%s)" -lt "$deadline" ] || { failc ready "nothing served within ${TIMEOUT}s"; break; }
    sleep 2
done

if [ -e "$DIR/ready" ]; then
    URL=$(head -n 1 "$DIR/ready" | cut -f1)
    IQN=$(echo "$URL" | cut -d/ -f4)
    case "$URL" in "iscsi://127.0.0.1:$PORT/"*) pass url ;; *) failc url "ready names $URL, not port $PORT" ;; esac
    # Discovery only: the portal it answers with is the VM's own address.
    out=$(iscsi-ls "iscsi://127.0.0.1:$PORT" 2>&1) || true
    if grep -q "Target:$IQN" <<<"$out"; then pass discovery; else failc discovery "iscsi-ls: $out"; fi
    out=$(iscsi-inq "$URL" 2>&1) || true
    if grep -q 'TCMUWASM' <<<"$out"; then pass inquiry; else failc inquiry "iscsi-inq: $out"; fi
    out=$(iscsi-inq -e 1 -c 128 "$URL" 2>&1) || true
    if grep -q 'disk0' <<<"$out"; then pass serial; else failc serial "VPD 80h without the config's serial=disk0: $out"; fi
    out=$(iscsi-readcapacity16 "$URL" 2>&1) || true
    if grep -qx "Total size:$((64 << 20))" <<<"$out"; then
        pass capacity
    else
        failc capacity "READ CAPACITY(16) is not 64 MiB: $out"
    fi
    out=$(timeout 60 iscsi-perf -t 3 -b 8 "$URL" 2>&1) || true
    if grep -qiE 'iops|MB/s' <<<"$out" && ! grep -qi 'error\|failed' <<<"$out"; then
        pass reads
        echo "RESULT name=serve_host.iscsi_perf value=\"$(grep -iE 'iops|MB/s' <<<"$out" | tail -n 1)\""
    else
        failc reads "iscsi-perf: $out"
    fi
    # What Ctrl-C does in scripts/serve.sh (SIGINT itself is ignored by a
    # background job of a script, so the same trap's other signal).
    kill -TERM "$VM"
fi

set +e
wait "$VM"; rc=$?
set -e
trap - EXIT
if [ "$rc" = 0 ]; then pass vm; else failc vm "tests/vm/run.sh exited $rc"; fi
if [ -e "$DIR/stopped" ]; then pass stopped; else failc stopped "the guest did not report a clean teardown"; fi
if [ "$(stat -c %s "$DIR/state/disk0.img" 2>/dev/null)" = $((64 << 20)) ]; then
    pass backing_on_host
else
    failc backing_on_host "no 64 MiB $DIR/state/disk0.img after the session"
fi
# The interactive mode, on a pseudo-terminal (the same backing, reused).
python3 "$HERE/shell-check.py" "$DIR" "$PORT" || FAILED=1
rm -rf "$DIR"
exit "$FAILED"
