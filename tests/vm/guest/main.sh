#!/bin/bash
# Guest side: common prelude, then the suite named by VM_SUITE.
# Started by boot.sh; reads /vmresults/job.env (written by run.sh).
GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC1091
if [ -f /vmresults/job.env ]; then set -a; . /vmresults/job.env; set +a; fi
: "${VM_SUITE:=baseline}"

. "$GUEST_DIR/lib/common.sh"
. "$GUEST_DIR/lib/lio.sh"
. "$GUEST_DIR/lib/clients.sh"

vm_say "suite $VM_SUITE, kernel $(uname -r), uptime $(uptime_s)s"
result boot.uptime_at_suite "$(uptime_s)" s

run_check prelude vm_prelude || vm_say "prelude failed; continuing so the failures show"

# "a+b": several suites in this one boot, in order.
for part in ${VM_SUITE//+/ }; do
    suite_file=$GUEST_DIR/suites/$part.sh
    if [ -f "$suite_file" ]; then
        vm_say "suite part $part, uptime $(uptime_s)s"
        # shellcheck source=/dev/null
        . "$suite_file"
        suite_main
    else
        check_fail suite.exists "no suite file $suite_file"
    fi
done

result suite.uptime_at_end "$(uptime_s)" s
echo "VM: suite-done" >>"$VM_RESULTS"
vm_say "suite-done"
