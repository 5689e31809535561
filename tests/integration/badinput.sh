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
# one_line: the last expect's complaint was a single line
one_line() {
    [ "$(wc -l <"$T/err")" = 1 ] || fail "wanted one line, got: $(cat "$T/err")"
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
expect 1 "no-such-file" "$S" --key "$T/no-such-file" --open-enrolment

# every long option spelled in full: glibc would take a prefix (the first
# match when several fit), so --open would turn on open enrolment
SK=(--key "$T/server.key" --allow "$T/allow")
expect 2 "option '--round' is not known \(did you mean --rounds or --round-timeout\?\)" \
    "$S" "${SK[@]}" --round 5
expect 2 "option '--mod' is not known \(did you mean --model or --mode\?\)" \
    "$S" "${SK[@]}" --mod logreg
expect 2 "option '--open' is not known \(did you mean --open-enrolment\?\)" \
    "$S" --key "$T/server.key" --open
expect 2 "option '--min' is not known \(did you mean --min-clients\?\)" "$S" "${SK[@]}" --min 3
expect 2 "option '--min' is not known" "$S" "${SK[@]}" --min=3
expect 2 "option '--rouns' is not known \(did you mean --rounds\?\)" "$S" "${SK[@]}" --rouns 3
expect 2 "option '--help' takes no value" "$S" --help=yes
expect 2 "option '--rounds' needs a value" "$S" "${SK[@]}" --rounds

# every command-line problem exits 2, before any file is read
expect 2 "^seedfl-server: no --allow list given" "$S" --key "$T/server.key"
expect 2 "--allow and --open-enrolment are alternatives" "$S" "${SK[@]}" --open-enrolment
expect 2 "--model: model spec 'foo': unknown kind" "$S" "${SK[@]}" --model foo
expect 2 "--model: model spec 'mlp:784-0-10': size 0 out of range" "$S" "${SK[@]}" \
    --model mlp:784-0-10
expect 2 "--model: model spec 'mlp:784-x-10': bad number" "$S" "${SK[@]}" --model mlp:784-x-10
expect 2 "--rounds: 'x'" "$S" --config "$T/no-such.ini" "${SK[@]}" --rounds x
# a value is echoed in part only
expect 2 "--rounds: 'x{64}\.\.\.' is not" "$S" "${SK[@]}" --rounds "$(printf 'x%.0s' {1..5000})"
[ "$(wc -c <"$T/err")" -lt 200 ] || fail "the --rounds complaint echoed the whole value"

# --listen takes a host name, resolved at start (IPv4 first)
start_server --listen localhost:0 --model logreg --eval-limit 100 --wait-timeout 30
grep -q "listening on 127.0.0.1:$PORT\$" "$T/server.out" ||
    fail "--listen localhost:0: $(cat "$T/server.out")"
kill "$SPID"
wait_exit "$SPID" 10 || fail "server on localhost did not stop on SIGTERM"

# the config file: a wrong value is a wrong option (2) at FILE:LINE; a file
# that cannot be read is a failure at run time (1); one line per problem
printf '[server]\nrounds = banana\n' >"$T/bad.ini"
expect 2 "bad.ini:2: --rounds: 'banana' is not" "$S" --config "$T/bad.ini" --key "$T/server.key"
one_line
expect 1 "no-such.ini: cannot read config file" "$S" --config "$T/no-such.ini" "${SK[@]}"
expect 1 "seedfl-it\.[^/]*: not a regular file" "$S" --config "$T" "${SK[@]}"
expect 2 "--config is given twice" "$S" --config "$T/bad.ini" --config "$T/bad.ini" "${SK[@]}"
printf 'rounds = 3\n' >"$T/nosect.ini"
expect 2 "nosect.ini:1: 'rounds' comes before any section" "$S" --config "$T/nosect.ini" "${SK[@]}"
one_line
printf '[Server]\nrounds = 3\nmode = zo\n' >"$T/case.ini"
expect 2 "case.ini:1: unknown section \[Server\]" "$S" --config "$T/case.ini" "${SK[@]}"
one_line
printf '[server\nrounds = 3\n' >"$T/hdr.ini"
expect 2 "hdr.ini:1: section header without its closing" "$S" --config "$T/hdr.ini" "${SK[@]}"
one_line
printf '[server]\nrounds = 3\nopen-enrolment\nmode = zo\n' >"$T/noval.ini"
expect 2 "noval.ini:3: 'open-enrolment' is not NAME = VALUE" "$S" --config "$T/noval.ini" \
    --key "$T/server.key"
one_line
printf '[server]\n\x7fELF\x02\x01\x01\x00\x00\n\x00\x00garbage = 1\n' >"$T/bin.ini"
expect 2 "bin.ini:2: control character 0x7f: not a text file" "$S" --config "$T/bin.ini" "${SK[@]}"
one_line
printf '[server]\nrounds = 3\nmode = zo\nrounds = 4\n' >"$T/twice.ini"
expect 2 "twice.ini:4: 'rounds' is set twice \(first on line 2\)" "$S" --config "$T/twice.ini" \
    "${SK[@]}"
one_line
printf '[server]\nround = 3\n' >"$T/abbrev.ini"
expect 2 "abbrev.ini:2: unknown option 'round' \(did you mean rounds or round-timeout\?\)" \
    "$S" --config "$T/abbrev.ini" "${SK[@]}"
printf '[server]\n= 3\n' >"$T/noname.ini"
expect 2 "noname.ini:2: no option name before the '='" "$S" --config "$T/noname.ini" "${SK[@]}"
# indented lines are options of their own, not continuations of the last value
printf '[server]\nmode = dense\n  rounds = x\n' >"$T/indent.ini"
expect 2 "indent.ini:3: --rounds: 'x'" "$S" --config "$T/indent.ini" "${SK[@]}"
# one pair of double quotes is not part of a value
printf '[server]\nkey = "%s"\nopen-enrolment = true\n' "$T/server.key.pub" >"$T/quoted.ini"
expect 1 "server.key.pub: this is a public key" "$S" --config "$T/quoted.ini"
printf '[server]\nkey = "%s\n' "$T/server.key" >"$T/quote1.ini"
expect 2 "quote1.ini:2: key: the value's opening '\"' has no closing one" \
    "$S" --config "$T/quote1.ini" --open-enrolment
# alternatives stay alternatives across the file and the command line
printf '[server]\nopen-enrolment = true\n' >"$T/open.ini"
expect 2 "--allow and --open-enrolment are alternatives" "$S" --config "$T/open.ini" "${SK[@]}"
"$S" --help | grep -q "relative paths in it are taken from the" || fail "--help on relative paths"
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
printf 'round,mode,clients\n1,precious\n' >"$T/keep.csv"
start_server --model logreg --rounds 1 --min-clients 1 --eval-limit 100 --wait-timeout 30
expect 1 "cannot listen" "$S" --key "$T/server.key" --open-enrolment --listen "127.0.0.1:$PORT" \
    --model logreg --eval-limit 100 --metrics-out "$T/keep.csv" --port-file "$T/port2"
grep -q precious "$T/keep.csv" || fail "a failed start truncated the metrics file"
[ ! -e "$T/port2" ] || fail "a failed start left a port file"
# the output files never replace a file the server did not write
cp "$T/server.key" "$T/precious.key"
expect 1 "not one seedfl-server wrote" "$S" --key "$T/server.key" --open-enrolment \
    --listen 127.0.0.1:0 --model logreg --eval-limit 100 --metrics-out "$T/precious.key"
expect 1 "not one seedfl-server wrote" "$S" --key "$T/server.key" --open-enrolment \
    --listen 127.0.0.1:0 --model logreg --eval-limit 100 --port-file "$T/allow"
cmp -s "$T/server.key" "$T/precious.key" || fail "--metrics-out replaced a key file"
grep -q "seedfl-server listening" "$T/out" && fail "a server that failed said it was listening"
# an allow-list with no keys can never admit anyone
printf '# nobody yet\n' >"$T/empty-allow"
expect 1 "no keys" "$S" --key "$T/server.key" --allow "$T/empty-allow"
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
