#!/usr/bin/env bash
# Label skew (--partition dirichlet:ALPHA) in both modes: every client gets
# a differently skewed shard, the same for the same seed, and training still
# works; a skew that leaves a client empty is a clear error.
. "$(dirname "$0")/lib.sh"
make_keys 3

# skew_run NAME SERVER_ARGS...: 3 clients with dirichlet:0.3
skew_run() {
    local name=$1
    shift
    start_server --eval-limit 1000 --min-clients 3 --quorum 3 --round-timeout 60 \
        --metrics-out "$T/$name.csv" "$@"
    local p=()
    for i in 0 1 2; do start_client $i 3 --limit 3000 --partition dirichlet:0.3; p[$i]=$CPID; done
    for i in 0 1 2; do wait_exit "${p[$i]}" 60 || fail "$name: client $i exit $?"; done
    wait_exit "$SPID" 30 || fail "$name: server exit $?"
    for i in 0 1 2; do
        sed -n 's/.*partition=dirichlet per_class=\([0-9/]*\).*/\1/p' "$T/c$i.log"
    done >"$T/$name.shards"
}

skew_run dense --model logreg --rounds 4 --epochs 1
[ "$(sort -u "$T/dense.shards" | wc -l)" = 3 ] || fail "shards not distinct: $(cat "$T/dense.shards")"
# skewed: in every shard one class holds far more than a tenth
while IFS=/ read -r -a per; do
    tot=0 top=0
    for v in "${per[@]}"; do tot=$((tot + v)); ((v > top)) && top=$v; done
    ((tot > 0 && top * 4 > tot)) || fail "shard not skewed: ${per[*]}"
    total_all=$((${total_all:-0} + tot))
done <"$T/dense.shards"
[ "$total_all" = 3000 ] || fail "shards cover $total_all of 3000 examples"
l1=$(csv_col "$T/dense.csv" test_loss | head -n 1)
l4=$(csv_col "$T/dense.csv" test_loss | tail -n 1)
awk -v a="$l1" -v b="$l4" 'BEGIN { exit !(b < a) }' || fail "dense under skew: loss $l1 -> $l4"

skew_run zo --mode zo --rounds 4 --local-steps 50
diff "$T/dense.shards" "$T/zo.shards" >/dev/null || fail "same seed, other shards in zo mode"
[ "$(csv_col "$T/zo.csv" clients | sort -u)" = 3 ] || fail "zo under skew: $(cat "$T/zo.csv")"

# more clients than a strong skew can serve: refused with the reason
start_server --model logreg --eval-limit 100 --rounds 1 --min-clients 1 --wait-timeout 20
start_client 0 30 --limit 40 --partition dirichlet:0.001
wait_exit "$CPID" 30
rc=$?
[ "$rc" = 1 ] || fail "impossible skew: client exit $rc"
grep -q "some client gets no example" "$T/c0.log" || fail "no reason: $(tail -n 1 "$T/c0.log")"
kill "$SPID"
echo "ok: dense loss $l1 -> $l4 under dirichlet:0.3"
