#!/usr/bin/env bash
# The same seed gives the same accuracies, whatever the arrival order.
. "$(dirname "$0")/lib.sh"
make_keys 3
run() {
    start_server --model logreg --rounds 3 --min-clients 3 --quorum 3 --epochs 1 --seed 42 \
        --metrics-out "$T/$1.csv" --eval-limit 3000
    for i in 0 1 2; do start_client $i 3 --limit 2400; done
    wait_exit "$SPID" 120 || fail "run $1: server exit status $?"
}
run a
run b
a=$(csv_col "$T/a.csv" test_accuracy | tr '\n' ' ')
b=$(csv_col "$T/b.csv" test_accuracy | tr '\n' ' ')
[ -n "$a" ] && [ "$a" = "$b" ] || fail "accuracies differ: [$a] vs [$b]"
la=$(csv_col "$T/a.csv" test_loss | tr '\n' ' ')
lb=$(csv_col "$T/b.csv" test_loss | tr '\n' ' ')
[ "$la" = "$lb" ] || fail "losses differ: [$la] vs [$lb]"
echo "ok: same accuracies [$a]"
