#!/usr/bin/env bash
# Sessions in the real world: handshake deadline, cap on unauthenticated
# connections under a flood while real clients train, heartbeats keeping a
# slow trainer alive and dropping a silent peer, a replayed first handshake
# message, two processes with one key, a kill -9'd client coming back, a
# lost server found again, a peer that stops reading and one stopped in the
# middle of its model download (what they cost the server), seeded cohorts.
. "$(dirname "$0")/lib.sh"
make_keys 4
small=(--model logreg --eval-limit 500)

# 1. an idle connection is closed at the handshake deadline; a flood of idle
#    and garbage sockets over --max-unauth is cut at once; then two clients
#    train while 300 such sockets are held all along (each one the server
#    closes is opened again)
start_server --model mlp:784-64-10 --eval-limit 500 --rounds 8 --epochs 2 --min-clients 2 \
    --quorum 2 --handshake-timeout 1 --max-unauth 400 --max-unauth-per-host 1000 \
    --metrics-out "$T/flood.csv"
peer idle c3 >"$T/idle.out" 2>&1 || fail "idle peer: $(cat "$T/idle.out")"
grep -q "handshake_timeout" "$T/server.log" || fail "no handshake_timeout logged"
peer flood:600 c3 >"$T/flood.out" 2>&1 || fail "flood peer"
grep -q "connection_refused" "$T/server.log" || fail "the unauthenticated cap never acted"
grep -q "server closed 600" "$T/flood.out" || fail "flood sockets left open: $(cat "$T/flood.out")"
# run directly (not through the peer function) so that $! is testpeer itself
"$BIN/tests/testpeer" "127.0.0.1:$PORT" "$T/server.key.pub" "$T/c3.key" flood-keep:300:300 \
    >"$T/flood2.out" 2>&1 &
FP=$!
PIDS+=($FP)
sleep 0.5
start_client 0 2 --limit 3000; A=$CPID
start_client 1 2 --limit 3000; B=$CPID
# the flood stops once round 6 opens: it was held through rounds 1 to 5
for ((i = 0; i < 600; i++)); do grep -q "event=round_open round=6" "$T/server.log" && break; sleep 0.1; done
kill -0 "$FP" 2>/dev/null || fail "the flood ended early: $(cat "$T/flood2.out")"
kill -TERM "$FP"
wait_exit "$FP" 10 || fail "second flood peer"
wait_exit "$A" 90 || fail "client 0 under flood: exit $?"
wait_exit "$B" 90 || fail "client 1 under flood: exit $?"
wait_exit "$SPID" 30 || fail "server under flood: exit $?"
[ "$(csv_col "$T/flood.csv" clients | sort -u)" = 2 ] || fail "rounds under flood: $(cat "$T/flood.csv")"
held=$(sed -n 's/.*held at least \([0-9]*\) of.*/\1/p' "$T/flood2.out")
[ "${held:-0}" -ge 290 ] || fail "the flood did not hold its sockets: $(cat "$T/flood2.out")"
cycled=$(sed -n 's/.*server closed \([0-9]*\),.*/\1/p' "$T/flood2.out")
[ "${cycled:-0}" -gt 300 ] || fail "the server did not close the held sockets: $(cat "$T/flood2.out")"
cat "$T/flood2.out"

# 1b. a server at its --max-unauth says it is busy: a real client waits and
#     retries (even its first connection) instead of giving up, and gets in
#     once the held sockets go
start_server "${small[@]}" --rounds 1 --min-clients 1 --max-unauth 20 --handshake-timeout 60
"$BIN/tests/testpeer" "127.0.0.1:$PORT" "$T/server.key.pub" "$T/c3.key" hold:40:300 \
    >"$T/hold.out" 2>&1 &
HP=$!
PIDS+=($HP)
for ((i = 0; i < 100; i++)); do grep -q "connection_refused" "$T/server.log" && break; sleep 0.1; done
start_client 0 1 --limit 500 --reconnect-for 60; A=$CPID
for ((i = 0; i < 300; i++)); do grep -q "event=server_busy" "$T/c0.log" && break; sleep 0.1; done
grep -q "event=server_busy" "$T/c0.log" || fail "the client was not told the server is busy"
kill -TERM "$HP"
wait_exit "$HP" 10 || fail "holding peer"
wait_exit "$A" 60 || fail "client after a busy server: exit $?"
wait_exit "$SPID" 30 || fail "server: exit $?"

# 1c. one host cannot take every slot: 40 idle sockets from 127.0.0.2 get
#     10 (--max-unauth-per-host), the rest are told the server is busy, and
#     a client from 127.0.0.1 gets in at once
start_server "${small[@]}" --rounds 1 --min-clients 1 --max-unauth 100 --max-unauth-per-host 10 \
    --handshake-timeout 60
SFL_PEER_SRC=127.0.0.2 "$BIN/tests/testpeer" "127.0.0.1:$PORT" "$T/server.key.pub" "$T/c3.key" \
    hold:40:300 >"$T/hold2.out" 2>&1 &
HP=$!
PIDS+=($HP)
for ((i = 0; i < 100; i++)); do grep -q "of this host not yet authenticated" "$T/server.log" && break; sleep 0.1; done
grep -q "addr=127.0.0.2:[0-9]* reason=\"10 connections of this host not yet authenticated" "$T/server.log" ||
    fail "the per-host cap did not act: $(grep connection_refused "$T/server.log" | head -n 2)"
start_client 0 1 --limit 500 --reconnect-for 0; A=$CPID
wait_exit "$A" 60 || fail "a client from another host: exit $? $(tail -n 2 "$T/c0.log")"
grep -q "event=server_busy" "$T/c0.log" && fail "a client from another host was told the server is busy"
kill -TERM "$HP"
wait_exit "$HP" 10 || fail "holding peer from 127.0.0.2"
wait_exit "$SPID" 30 || fail "server: exit $?"

# 2. heartbeats: clients training for longer than the silence limit
#    (0.1 s x 2) are kept; a ready peer that says nothing is dropped
start_server --model mlp:784-256-10 --eval-limit 500 --rounds 2 --min-clients 2 --quorum 2 \
    --epochs 8 --heartbeat-interval 0.1 --heartbeat-misses 2 --round-timeout 60 \
    --metrics-out "$T/hb.csv"
peer silent-ready c3 >"$T/silent.out" 2>&1 &
SP=$!
PIDS+=($SP)
sleep 0.3
start_client 0 2 --limit 4000; A=$CPID
start_client 1 2 --limit 4000; B=$CPID
wait_exit "$A" 90 || fail "slow client 0: exit $?"
wait_exit "$B" 90 || fail "slow client 1: exit $?"
wait_exit "$SPID" 30 || fail "server: exit $?"
wait_exit "$SP" 10 || fail "silent peer: $(cat "$T/silent.out")"
grep -q "event=client_timeout" "$T/server.log" || fail "silent peer not dropped for silence"
grep "event=client_timeout" "$T/server.log" | grep -q "$(cut -c1-10 "$T/c3.key.pub")" ||
    fail "a client other than the silent peer was dropped: $(grep client_timeout "$T/server.log")"
trained=$(sed -n 's/.*event=trained.*seconds=\([0-9.]*\).*/\1/p' "$T/c0.log" | sort -n | tail -n 1)
awk -v t="$trained" 'BEGIN { exit !(t > 0.2) }' ||
    fail "local training took $trained s: not longer than the silence limit, test proves nothing"
[ "$(csv_col "$T/hb.csv" clients | sort -u)" = 2 ] || fail "slow clients dropped: $(cat "$T/hb.csv")"

# 3. a replayed first handshake message is refused
start_server "${small[@]}" --rounds 1 --min-clients 1 --wait-timeout 20
peer replay-hs1 c2 >"$T/replay.out" 2>&1 || fail "replay: $(cat "$T/replay.out")"
grep -q "a replayed first message" "$T/server.log" || fail "replay refusal not logged"
kill "$SPID"; wait_exit "$SPID" 10

# 4. two live processes with one key: the newer session replaces the older,
#    whose client exits non-zero without reconnecting; never two updates
#    from one key in a round
slow=(--model mlp:784-128-10 --epochs 2 --eval-limit 500)
start_server "${slow[@]}" --rounds 15 --min-clients 2 --quorum 2 --round-timeout 30 \
    --metrics-out "$T/dup.csv"
start_client 0 2 --limit 3000; A=$CPID
start_client 1 2 --limit 3000; B=$CPID
for ((i = 0; i < 100; i++)); do grep -q "round=2" "$T/server.log" && break; sleep 0.1; done
cp "$T/c0.key" "$T/twin.key"
"$BIN/seedfl-client" --server "127.0.0.1:$PORT" --server-key "$T/server.key.pub" \
    --key "$T/twin.key" --data "$DATA" --shard 0 --of 2 --limit 3000 >"$T/twin.out" 2>"$T/twin.log" &
TW=$!
PIDS+=($TW)
wait_exit "$A" 60
rc=$?
[ "$rc" = 1 ] || fail "the replaced client exited $rc, expected 1"
grep -q "replaced" "$T/c0.log" || fail "replaced client did not say why: $(tail -n 2 "$T/c0.log")"
grep -q "connection_lost" "$T/c0.log" && fail "the replaced client tried to reconnect"
wait_exit "$TW" 60 || fail "the newer twin: exit $?"
wait_exit "$B" 60 || fail "client 1: exit $?"
wait_exit "$SPID" 30 || fail "server: exit $?"
grep -q "session_replaced" "$T/server.log" || fail "no session_replaced logged"
awk -F, 'NR > 1 && $3 > 2 { exit 1 }' "$T/dup.csv" || fail "a round took two updates of one key"

# 5. a client killed with -9 and restarted with the same key is counted once
start_server "${slow[@]}" --rounds 12 --min-clients 2 --quorum 2 --round-timeout 30 \
    --metrics-out "$T/k9.csv"
start_client 0 2 --limit 3000; A=$CPID
start_client 1 2 --limit 3000; B=$CPID
for ((i = 0; i < 100; i++)); do grep -q "round=2" "$T/server.log" && break; sleep 0.1; done
kill -9 "$A"
start_client 0 2 --limit 3000; A=$CPID
wait_exit "$A" 60 || fail "restarted client: exit $?"
wait_exit "$B" 60 || fail "client 1: exit $?"
wait_exit "$SPID" 30 || fail "server: exit $?"
awk -F, 'NR > 1 && $3 > 2 { exit 1 }' "$T/k9.csv" || fail "a round counted the killed client twice"
[ "$(tail -n 1 "$T/k9.csv" | cut -d, -f3)" = 2 ] || fail "the restarted client is not in the last round"

# 6. the server goes away and comes back on the same port, twice: the
#    client reconnects with backoff each time (the --reconnect-for budget
#    starts afresh with each outage), and while it is away, a server that
#    drops its handshakes (here: one whose allow-list lacks the key) does not
#    end a client that has been welcomed before
start_server "${small[@]}" --rounds 100000 --min-clients 1 --quorum 1
OLDPORT=$PORT
start_client 0 1 --limit 500 --reconnect-for 4; A=$CPID
for ((i = 0; i < 100; i++)); do grep -q "round=3" "$T/server.log" && break; sleep 0.1; done
kill -9 "$SPID"
t_lost=$(date +%s)
grep -v "$(cat "$T/c0.key.pub")" "$T/allow" >"$T/allow-no-c0"
"$BIN/seedfl-server" --listen "127.0.0.1:$OLDPORT" --key "$T/server.key" --allow "$T/allow-no-c0" \
    --data "$DATA" "${small[@]}" --rounds 2 --min-clients 1 >"$T/server1b.out" 2>"$T/server1b.log" &
S1B=$!
PIDS+=($S1B)
for ((i = 0; i < 100; i++)); do grep -q "client key not on the allow-list" "$T/server1b.log" && break; sleep 0.1; done
grep -q "client key not on the allow-list" "$T/server1b.log" || fail "the client never tried the refusing server"
kill -9 "$S1B"
wait "$S1B" 2>/dev/null
"$BIN/seedfl-server" --listen "127.0.0.1:$OLDPORT" --key "$T/server.key" --allow "$T/allow" \
    --data "$DATA" "${small[@]}" --rounds 100000 --min-clients 1 >"$T/server2.out" 2>"$T/server2.log" &
S2=$!
PIDS+=($S2)
for ((i = 0; i < 200; i++)); do grep -q "round=3" "$T/server2.log" && break; sleep 0.1; done
grep -q "round=3" "$T/server2.log" || fail "the client did not rejoin the restarted server: $(tail -n 3 "$T/c0.log")"
# the second outage starts after the first one's budget (4 s) has run out
while [ $(($(date +%s) - t_lost)) -le 5 ]; do sleep 0.2; done
kill -9 "$S2"
sleep 0.5
"$BIN/seedfl-server" --listen "127.0.0.1:$OLDPORT" --key "$T/server.key" --allow "$T/allow" \
    --data "$DATA" "${small[@]}" --rounds 2 --min-clients 1 >"$T/server3.out" 2>"$T/server3.log" &
S3=$!
PIDS+=($S3)
wait_exit "$A" 60 || fail "client did not finish after the second restart: exit $? $(tail -n 2 "$T/c0.log")"
[ "$(grep -c "event=rejoined" "$T/c0.log")" -ge 2 ] || fail "client did not rejoin twice"
wait_exit "$S3" 30 || fail "third server: exit $?"

# 7. a peer that never reads its replies is paused, then closed; the round
#    goes on with the others. The model (13 MB) is streamed: the server
#    holds about one window of it for that peer, not an encrypted copy
big=(--model mlp:784-4096-10 --eval-limit 200 --round-timeout 60 --epochs 1)
# queued_ok PEER: every queued= the server logged for PEER is under 2 MiB,
# while it was owed more than 4 MiB at least once
queued_ok() {
    local lines
    lines=$(grep -E "event=(peer_throttled|slow_reader) " "$T/server.log" | grep -F "peer=$1 ")
    [ -n "$lines" ] || fail "no peer_throttled or slow_reader logged for $1"
    echo "$lines" | sed 's/.*queued=\([0-9]*\).*/\1/' | awk '$1 >= 2097152 { exit 1 }' ||
        fail "more than 2 MiB queued for $1: $lines"
    echo "$lines" | sed 's/.*owed=\([0-9]*\).*/\1/' | awk '$1 > 4194304 { big = 1 } END { exit !big }' ||
        fail "$1 was never owed enough for the bound to mean anything: $lines"
}
start_server "${big[@]}" --rounds 1 --min-clients 2 --quorum 1 --write-hwm 65536 --slow-timeout 1
peer no-read c3 >"$T/noread.out" 2>&1 &
NP=$!
PIDS+=($NP)
start_client 0 1 --limit 300; A=$CPID
wait_exit "$NP" 30 || fail "no-read peer: $(cat "$T/noread.out")"
grep -q "event=slow_reader" "$T/server.log" || fail "slow reader not closed"
wait_exit "$A" 120 || fail "client next to a slow reader: exit $?"
wait_exit "$SPID" 30 || fail "server: exit $?"
queued_ok "$(cut -c1-10 "$T/c3.key.pub")"
grep "event=slow_reader" "$T/server.log"

# 7b. a client stopped in the middle of its download is throttled with
#     little queued; resumed, it takes the rest, and its model is the
#     server's to the bit (a client checks the task's model digest before
#     it trains, and the quorum needs its update)
start_server "${big[@]}" --rounds 2 --min-clients 2 --quorum 2 --write-hwm 65536 --slow-timeout 30
start_client 0 2 --limit 300; A=$CPID
for ((i = 0; i < 300; i++)); do grep -q "event=client_ready" "$T/server.log" && break; sleep 0.1; done
kill -STOP "$A"
start_client 1 2 --limit 300; B=$CPID
id0=$(cut -c1-10 "$T/c0.key.pub")
for ((i = 0; i < 300; i++)); do grep -qF "event=peer_throttled peer=$id0 " "$T/server.log" && break; sleep 0.1; done
sleep 1
kill -CONT "$A"
wait_exit "$A" 120 || fail "client stopped mid-download: exit $?"
wait_exit "$B" 120 || fail "client 1: exit $?"
wait_exit "$SPID" 30 || fail "server: exit $?"
queued_ok "$id0"
[ "$(grep -c "event=trained" "$T/c0.log")" = 2 ] || fail "the resumed client did not train both rounds"

# 7c. one stopped mid-download under the default mark goes silent and is
#     dropped; the rest of its download would only wait, so it is closed
#     outright after --slow-timeout instead of holding the model's copy
start_server "${big[@]}" --rounds 6 --start-clients 2 --min-clients 1 --quorum 1 \
    --slow-timeout 0.3 --heartbeat-interval 0.2 --heartbeat-misses 3
start_client 0 2 --limit 300; A=$CPID
for ((i = 0; i < 300; i++)); do grep -q "event=client_ready" "$T/server.log" && break; sleep 0.1; done
kill -STOP "$A"
start_client 1 2 --limit 300; B=$CPID
for ((i = 0; i < 300; i++)); do grep -q "event=slow_reader" "$T/server.log" && break; sleep 0.1; done
kill -9 "$A"
wait_exit "$B" 120 || fail "client next to a stopped one: exit $?"
wait_exit "$SPID" 30 || fail "server: exit $?"
grep "event=client_timeout" "$T/server.log" | grep -qF "peer=$id0 " || fail "the stopped client was not dropped"
grep "event=slow_reader" "$T/server.log" | grep -F "peer=$id0 " | grep -q "closing, and not taking" ||
    fail "the stopped client's flush was not cut short: $(grep slow_reader "$T/server.log")"

# 7d. training ends while a ready peer reads nothing (under the default mark,
#     so it is never closed as a slow reader): the server still exits, after
#     its stop grace, instead of waiting for that peer forever
start_server "${big[@]}" --rounds 1 --min-clients 2 --quorum 1 --round-timeout 3
peer no-read c3 >"$T/noread2.out" 2>&1 &
NP=$!
PIDS+=($NP)
start_client 0 1 --limit 300; A=$CPID
wait_exit "$A" 120 || fail "client next to a peer that reads nothing: exit $?"
wait_exit "$SPID" 30 || fail "server with a peer that reads nothing did not exit: $?"
grep -q "event=stop_forced" "$T/server.log" || fail "no stop_forced logged"
wait_exit "$NP" 30

# 8. cohorts: 2 of 4 clients per round, the same ones for the same seed
cohort_run() {
    start_server "${small[@]}" --rounds 3 --min-clients 4 --cohort 2 --quorum 2 --seed 9 \
        --metrics-out "$T/co$1.csv"
    local p=()
    for i in 0 1 2 3; do start_client $i 4 --limit 800; p[$i]=$CPID; done
    for i in 0 1 2 3; do wait_exit "${p[$i]}" 60 || fail "cohort client $i: exit $?"; done
    wait_exit "$SPID" 30 || fail "server: exit $?"
    grep -o "event=round_open round=[0-9]* attempt=0 cohort=[0-9]*" "$T/server.log" >"$T/co$1.open"
    for i in 0 1 2 3; do grep -c "event=trained" "$T/c$i.log" || true; done >"$T/co$1.count"
}
cohort_run a
cohort_run b
[ "$(csv_col "$T/coa.csv" clients | sort -u)" = 2 ] || fail "cohort of 2: $(cat "$T/coa.csv")"
grep -q "cohort=2" "$T/coa.open" || fail "cohort size not 2"
[ "$(awk "{ s += \$1 } END { print s }" "$T/coa.count")" = 6 ] || fail "3 rounds of 2 clients: $(cat "$T/coa.count")"
diff "$T/coa.count" "$T/cob.count" >/dev/null || fail "same seed, other cohorts"
diff <(csv_col "$T/coa.csv" test_accuracy) <(csv_col "$T/cob.csv" test_accuracy) >/dev/null ||
    fail "same seed, other accuracies with cohorts"
echo "ok"
