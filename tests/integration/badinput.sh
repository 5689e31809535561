#!/usr/bin/env bash
# Wrong flags, missing, truncated and unsafe files: a clear error and a
# non-zero exit, never a crash.
. "$(dirname "$0")/lib.sh"
make_keys 1

# expect STATUS PATTERN CMD...: exit status and a message on stderr
expect() {
    local want=$1 pat=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $(cat "$T/err")"
    grep -qiE -- "$pat" "$T/err" || fail "'$*' said: $(cat "$T/err") (wanted /$pat/)"
}
S="$BIN/seedfl-server"
C="$BIN/seedfl-client"
K="$BIN/seedfl-keygen"
CA=(--server 127.0.0.1:9 --server-key "$T/server.key.pub" --key "$T/c0.key" --data "$DATA")

expect 2 "not known" "$S" --bogus
expect 2 "required" "$S"
expect 2 "--rounds: 'x'" "$S" --key "$T/server.key" --rounds x
expect 2 "--listen" "$S" --key "$T/server.key" --listen nowhere
expect 2 "--quorum" "$S" --key "$T/server.key" --quorum -1
expect 1 "no --allow" "$S" --key "$T/server.key"
expect 1 "no-such-file" "$S" --key "$T/no-such-file" --open-enrolment
expect 1 "model|spec" "$S" --key "$T/server.key" --open-enrolment --model mlp:784-x-10
printf '[server]\nrounds = banana\n' >"$T/bad.ini"
expect 2 "rounds" "$S" --config "$T/bad.ini" --key "$T/server.key"
printf 'not-a-key\n' >"$T/badallow"
expect 1 "badallow:1: not a base64" "$S" --key "$T/server.key" --allow "$T/badallow"

expect 2 "required" "$C" --server 127.0.0.1:9
expect 2 "--shard 3 must be below" "$C" "${CA[@]}" --shard 3 --of 3
expect 2 "--server" "$C" --server localhost --server-key x --key y --shard 0 --of 1
expect 2 "not known" "$C" "${CA[@]}" --shard 0 --of 1 --frobnicate
expect 2 "option '--serv' is not known \(did you mean --server or --server-key\?\)" \
    "$C" --serv 127.0.0.1:9
expect 2 "option '--of' needs a value" "$C" "${CA[@]}" --shard 0 --of
expect 2 "--name: 'n{64}\.\.\.' is not a name of 1 to 64" "$C" "${CA[@]}" --shard 0 --of 1 \
    --name "$(printf 'n%.0s' {1..5000})"
[ "$(wc -c <"$T/err")" -lt 200 ] || fail "the --name complaint echoed the whole value"
expect 1 "cannot connect" "$C" "${CA[@]}" --shard 0 --of 1
cp "$T/c0.key" "$T/open.key"
chmod 644 "$T/open.key"
expect 1 "group or others" "$C" --server 127.0.0.1:9 --server-key "$T/server.key.pub" \
    --key "$T/open.key" --data "$DATA" --shard 0 --of 1
expect 1 "no-such-dir" "$C" --server 127.0.0.1:9 --server-key "$T/server.key.pub" \
    --key "$T/c0.key" --data "$T/no-such-dir" --shard 0 --of 1
echo garbage >"$T/garbage.pub"
expect 1 "garbage.pub" "$C" --server 127.0.0.1:9 --server-key "$T/garbage.pub" \
    --key "$T/c0.key" --data "$DATA" --shard 0 --of 1

# a truncated and a corrupt data set
mkdir -p "$T/trunc" "$T/corrupt"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
    t10k-labels-idx1-ubyte.gz; do
    cp "$DATA/$f" "$T/corrupt/$f"
done
gzip -dc "$DATA/train-labels-idx1-ubyte.gz" | head -c 5000 | gzip >"$T/trunc/train-labels-idx1-ubyte.gz"
cp "$DATA/train-images-idx3-ubyte.gz" "$T/trunc/"
printf '\x00\x00\x09\x01\x00\x00\x00\x05abcde' | gzip >"$T/corrupt/train-labels-idx1-ubyte.gz"
start_server --model logreg --rounds 1 --min-clients 1 --eval-limit 500 --wait-timeout 30
expect 1 "truncated" "$C" --server "127.0.0.1:$PORT" --server-key "$T/server.key.pub" \
    --key "$T/c0.key" --data "$T/trunc" --shard 0 --of 1
expect 1 "train-labels-idx1-ubyte.gz" "$C" --server "127.0.0.1:$PORT" \
    --server-key "$T/server.key.pub" --key "$T/c0.key" --data "$T/corrupt" --shard 0 --of 1
# the server is still there and serves a good client
start_client 0 1 --limit 500
wait_exit "$CPID" 60 || fail "good client exit status $?"
wait_exit "$SPID" 30 || fail "server exit status $?"

# a model that cannot fit the data is refused at start
expect 1 "has 5 outputs but the data has 10 classes" "$S" --key "$T/server.key" --open-enrolment \
    --model mlp:784-16-5
# the config file takes log-level like the command line
printf '[server]\nlog-level = warn\nrounds = x\n' >"$T/ll.ini"
expect 2 "rounds" "$S" --config "$T/ll.ini" --key "$T/server.key"
# a public key where the secret key belongs, a directory as allow-list
expect 1 "this is a public key" "$S" --key "$T/server.key.pub" --open-enrolment
expect 1 "not a regular file" "$S" --key "$T/server.key" --allow "$T"
# more shards than examples: refused before connecting
expect 1 "more shards than the 100 training examples" "$C" "${CA[@]}" --shard 0 --of 101 \
    --limit 100
# a server that cannot start leaves an existing metrics file alone
echo "precious" >"$T/keep.csv"
start_server --model logreg --rounds 1 --min-clients 1 --eval-limit 100 --wait-timeout 30
expect 1 "cannot listen" "$S" --key "$T/server.key" --open-enrolment --listen "127.0.0.1:$PORT" \
    --model logreg --eval-limit 100 --metrics-out "$T/keep.csv"
[ "$(cat "$T/keep.csv")" = precious ] || fail "a failed start truncated the metrics file"
kill "$SPID"
wait_exit "$SPID" 10 || fail "server did not stop on SIGTERM"

# scripts/test takes no arguments
TEST_SCRIPT="$(dirname "$0")/../../scripts/test"
expect 2 "takes no arguments" "$TEST_SCRIPT" --bogus
"$TEST_SCRIPT" --help >"$T/out" 2>&1 || fail "scripts/test --help exited $?"
grep -q "^usage: scripts/test" "$T/out" || fail "scripts/test --help said: $(cat "$T/out")"

expect 2 "usage" "$K"
expect 2 "option '--hel' is not known \(did you mean --help\?\)" "$K" --hel
expect 2 "one PATH only" "$K" "$T/k2" "$T/k3"
"$K" "$T/k1" >/dev/null || fail "keygen"
[ "$(stat -c %a "$T/k1")" = 600 ] || fail "secret key mode $(stat -c %a "$T/k1")"
expect 1 "exists" "$K" "$T/k1"
echo "ok"
