#!/usr/bin/env bash
# Upload size and client memory of the zo mode next to dense FedAvg on the
# same model (logistic regression), from two real demo runs: bytes read by
# the server per client per round, their ratio, and the largest client peak
# RSS next to the 32 MiB limit. Usage: bench/modes.sh [DENSE_ROUNDS]
set -u
cd "$(dirname "$0")/.."
dense_rounds=${1:-5}
out=$(mktemp -d "${TMPDIR:-/tmp}/seedfl-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT

run() { # NAME ARGS...: the demo's summary lines into $out/NAME.txt
    local name=$1
    shift
    ./scripts/demo "$@" --metrics-out "$out/$name.csv" >"$out/$name.txt" 2>&1 ||
        { echo "bench: demo $* failed:"; tail -n 5 "$out/$name.txt"; exit 1; }
}
field() { sed -n "s/.*$2[^0-9]*\([0-9.]*\).*/\1/p" "$out/$1.txt" | tail -n 1; }

echo "bench: zo demo (defaults) and dense demo (--model logreg --rounds $dense_rounds)..."
run zo --mode zo
run dense --mode dense --model logreg --rounds "$dense_rounds"
zo_up=$(field zo "per round (mean): ")
de_up=$(field dense "per round (mean): ")
zo_rss=$(field zo "peak RSS: ")
de_rss=$(field dense "peak RSS: ")
zo_acc=$(field zo "final test accuracy ")
de_acc=$(field dense "final test accuracy ")
awk -v zu="$zo_up" -v du="$de_up" -v zr="$zo_rss" -v dr="$de_rss" -v za="$zo_acc" -v da="$de_acc" \
    -v tau=200 'BEGIN {
    printf "%-44s %12s %12s %10s\n", "figure", "zo", "dense", "ratio"
    printf "%-44s %12d %12d %10.4f\n", "bytes up per client per round", zu, du, zu / du
    printf "%-44s %12.2f %12s %10s\n", "  of which per step (tau = 200)", zu / tau, "-", "-"
    printf "%-44s %12.1f %12.1f %10s\n", "largest client peak RSS (MiB); limit 32", zr / 1024, dr / 1024, (zr <= 32768 ? "zo ok" : "zo OVER")
    printf "%-44s %12.4f %12.4f %10s\n", "final test accuracy", za, da, "-"
}'
