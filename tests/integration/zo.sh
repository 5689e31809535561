#!/usr/bin/env bash
# zo mode on loopback with real clients on a data subset: the loss falls,
# uploads stay at 3 bytes per step plus framing, a run is reproducible, a
# replica that drifts is caught by the digest and resynchronised to the
# exact same model, both variants run, and zo uploads that break a rule are
# refused while the round goes on.
. "$(dirname "$0")/lib.sh"
make_keys 4
ZO=(--mode zo --rounds 8 --min-clients 3 --quorum 3 --round-timeout 60 --eval-limit 2000
    --local-steps 100)

# run_zo NAME SERVER_ARGS... -- CLIENT1_ARGS...: 3 clients; the CSV in $T/NAME.csv
run_zo() {
    local name=$1 extra=()
    shift
    local sargs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do sargs+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    extra=("$@")
    start_server "${ZO[@]}" "${sargs[@]}" --metrics-out "$T/$name.csv"
    local c=()
    for i in 0 1 2; do
        if [ "$i" = 1 ]; then start_client $i 3 --limit 3000 "${extra[@]}"
        else start_client $i 3 --limit 3000; fi
        c[$i]=$CPID
    done
    wait_exit "$SPID" 120 || fail "$name: server exit status $?"
    for i in 0 1 2; do wait_exit "${c[$i]}" 10 || fail "$name: client $i exit status $?"; done
    cp "$T/server.log" "$T/$name.server.txt"
    cp "$T/c1.log" "$T/$name.c1.txt"
}

run_zo pool
[ "$(csv_col "$T/pool.csv" mode | sort -u)" = zo ] || fail "mode column"
[ "$(csv_col "$T/pool.csv" clients | sort -u)" = 3 ] || fail "not all 3 clients aggregated"
l1=$(csv_col "$T/pool.csv" test_loss | head -n 1)
l8=$(csv_col "$T/pool.csv" test_loss | tail -n 1)
acc=$(csv_col "$T/pool.csv" test_accuracy | tail -n 1)
awk -v a="$l1" -v b="$l8" 'BEGIN { exit !(b < a) }' || fail "loss did not fall: $l1 -> $l8"
awk -v a="$acc" 'BEGIN { exit !(a > 0.4) }' || fail "accuracy $acc not far above chance"
# 100 steps of 3 bytes per client; the rest is one small envelope in one frame
# (round 1 also carries three handshakes and hellos)
while IFS=, read -r r mode c a l up down s; do
    ((r == 1)) && continue
    ((up >= 3 * 300 && up <= 3 * (300 + 120))) || fail "round $r: $up bytes up for 3 clients"
done < <(tail -n +2 "$T/pool.csv")
grep -q "replay_mismatch" "$T/pool.c1.txt" && fail "an undisturbed replica drifted"

# the same seed with a corrupted replica in round 3: caught, resynced, and
# the run ends with exactly the same numbers
run_zo drift -- --inject-drift 3
grep -q "replay_mismatch round=4\|replay_mismatch round=3" "$T/drift.c1.txt" ||
    fail "the drift was not caught: $(grep -E 'drift|replay' "$T/drift.c1.txt")"
grep -q "event=resync" "$T/drift.server.txt" || fail "the server saw no resync request"
[ "$(csv_col "$T/drift.csv" clients | sort -u)" = 3 ] || fail "the resynced client dropped out"
diff <(csv_col "$T/pool.csv" test_accuracy) <(csv_col "$T/drift.csv" test_accuracy) >/dev/null ||
    fail "same seed, different accuracies after a resync"
diff <(csv_col "$T/pool.csv" test_loss) <(csv_col "$T/drift.csv" test_loss) >/dev/null ||
    fail "same seed, different losses after a resync"

# the derived-seed variant: one byte per step, every client's bytes relayed
run_zo derived --zo-variant derived --lr 0.05
d1=$(csv_col "$T/derived.csv" test_loss | head -n 1)
d8=$(csv_col "$T/derived.csv" test_loss | tail -n 1)
awk -v a="$d1" -v b="$d8" 'BEGIN { exit !(b < a) }' || fail "derived: loss did not fall: $d1 -> $d8"
grep -q "replay_mismatch" "$T/derived.c1.txt" && fail "derived: a replica drifted"

# uploads that break the rules, next to one honest client
P=()
start_server --mode zo --rounds 1 --min-clients 4 --quorum 4 --round-timeout 60 \
    --eval-limit 1000 --local-steps 50 --metrics-out "$T/bad.csv"
for s in zo-short zo-seed zo-m128; do
    case $s in zo-short) k=c1 ;; zo-seed) k=c2 ;; zo-m128) k=c3 ;; esac
    peer "$s" "$k" >"$T/$s.out" 2>&1 &
    P[${#P[@]}]=$!
    PIDS+=($!)
done
start_client 0 3 --limit 1500
wait_exit "$CPID" 60 || fail "honest client exit status $?"
wait_exit "$SPID" 30 || fail "server exit status $?"
for p in "${P[@]}"; do wait_exit "$p" 10 || fail "a zo test peer: $(cat "$T"/zo-*.out)"; done
grep -q "150 bytes of steps, expected 50 steps of 3\|147 bytes of steps, expected 50 steps of 3" \
    "$T/server.log" || fail "short upload not named"
grep -q "seed 4096 outside the pool of 4096" "$T/server.log" || fail "bad seed not named"
grep -q "scalar -128 is not allowed" "$T/server.log" || fail "-128 not named"
[ "$(csv_col "$T/bad.csv" clients)" = 1 ] || fail "round with three bad uploads: $(cat "$T/bad.csv")"
echo "ok: pool loss $l1 -> $l8 (accuracy $acc), derived loss $d1 -> $d8, drift resynced"
