#!/usr/bin/env bash
# A server and 3 clients on loopback train on a 3,000-example subset of
# Fashion-MNIST: accuracy far above chance, loss falling, exact CSV shape.
. "$(dirname "$0")/lib.sh"
make_keys 3
start_server --model mlp:784-64-10 --rounds 4 --min-clients 3 --quorum 3 --epochs 2 \
    --round-timeout 60 --metrics-out "$T/m.csv"
for i in 0 1 2; do start_client $i 3 --limit 3000; C[$i]=$CPID; done
wait_exit "$SPID" 120 || fail "server exit status $?"
for i in 0 1 2; do wait_exit "${C[$i]}" 10 || fail "client $i exit status $?"; done
[ "$(head -n 1 "$T/m.csv")" = "round,mode,clients,test_accuracy,test_loss,bytes_up,bytes_down,seconds" ] ||
    fail "CSV header: $(head -n 1 "$T/m.csv")"
[ "$(csv_col "$T/m.csv" round | tr '\n' ' ')" = "1 2 3 4 " ] || fail "CSV rounds"
[ "$(csv_col "$T/m.csv" clients | sort -u)" = "3" ] || fail "not all 3 clients aggregated"
acc=$(csv_col "$T/m.csv" test_accuracy | tail -n 1)
l1=$(csv_col "$T/m.csv" test_loss | head -n 1)
l4=$(csv_col "$T/m.csv" test_loss | tail -n 1)
awk -v a="$acc" 'BEGIN { exit !(a > 0.65) }' || fail "final accuracy $acc not above 0.65"
awk -v a="$l1" -v b="$l4" 'BEGIN { exit !(b < a) }' || fail "loss did not fall: $l1 -> $l4"
# bytes: every round moves at least the model down to 3 clients and 3 updates up
nparams=$((784 * 64 + 64 + 64 * 10 + 10))
while IFS=, read -r r mode c a l up down s; do
    [ "$mode" = dense ] || fail "mode column $mode"
    ((up > 3 * 4 * nparams && down > 3 * 4 * nparams)) || fail "round $r bytes up $up down $down"
done < <(tail -n +2 "$T/m.csv")
grep -q "round 4/4" "$T/c0.out" || fail "client printed no final round"
echo "ok: accuracy $acc, loss $l1 -> $l4"
