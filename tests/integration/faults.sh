#!/usr/bin/env bash
# Peers that break the protocol each lose their connection, the server says
# which case it was, and real clients still finish their rounds. Also: a
# client killed mid-upload, a stale-round update, an unreachable quorum.
. "$(dirname "$0")/lib.sh"
make_keys 4
"$BIN/seedfl-keygen" "$T/stranger.key" >/dev/null || fail "keygen stranger"
"$BIN/seedfl-keygen" "$T/other-server.key" >/dev/null || fail "keygen other"

start_server --model logreg --rounds 3 --min-clients 3 --quorum 2 --epochs 1 --eval-limit 2000 \
    --round-timeout 60 --metrics-out "$T/m.csv" --log-level debug

# before any round: misbehaving peers, one at a time
peer oversize-preauth >"$T/p1.out" 2>&1 || fail "oversize before auth not closed"
peer garbage-preauth >"$T/p2.out" 2>&1 || fail "garbage handshake not closed"
peer flip c0 >"$T/p3.out" 2>&1 || fail "flipped byte not refused"
peer replay c0 >"$T/p4.out" 2>&1 || fail "replayed frame not refused"
peer oversize c0 >"$T/p5.out" 2>&1 || fail "oversize after auth not refused"
peer bad-version c0 >"$T/p6.out" 2>&1 || fail "bad protocol version not refused"
peer junk-envelope c0 >"$T/p9.out" 2>&1 || fail "junk envelope not refused"
peer half-handshake c0 >"$T/p10.out" 2>&1 || fail "half handshake peer"
peer expect-refused stranger >"$T/p7.out" 2>&1 || fail "key off the allow-list admitted"
"$BIN/tests/testpeer" "127.0.0.1:$PORT" "$T/other-server.key.pub" "$T/c0.key" expect-refused \
    >"$T/p8.out" 2>&1 || fail "wrong pinned server key admitted"
# the real client says the server refused or dropped it
"$BIN/seedfl-client" --server "127.0.0.1:$PORT" --server-key "$T/other-server.key.pub" \
    --key "$T/c0.key" --data "$DATA" --shard 0 --of 3 >/dev/null 2>"$T/wrongkey.log" &&
    fail "client with a wrong server key exited 0"
grep -q "refused or dropped" "$T/wrongkey.log" || fail "client message: $(cat "$T/wrongkey.log")"
sleep 0.3
for reason in "oversize frame length before authentication" \
    "handshake message 1 did not authenticate" "frame failed authentication (tampered)" \
    "replayed frame" "oversize frame length" "protocol version 99 not supported" \
    "client key not on the allow-list" "malformed message" \
    "peer closed before the handshake completed"; do
    grep -qF "$reason" "$T/server.log" || fail "server log lacks: $reason"
done

# round 1: a peer that uploads half its update and vanishes, with two real
# clients; a third real client joins late and takes part from round 2 on
peer partial-upload c3 >"$T/partial.out" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do
    grep -q client_ready "$T/server.log" && break
    sleep 0.05
done
for i in 0 1 2; do start_client $i 3 --limit 3000; C[$i]=$CPID; done
for i in 0 1 2; do wait_exit "${C[$i]}" 60 || fail "client $i exit status $?"; done
wait_exit "$SPID" 30 || fail "server exit status $?"
grep -q "connection closed mid-upload" "$T/server.log" || fail "lost upload not logged"
[ "$(tail -n +2 "$T/m.csv" | wc -l)" = 3 ] || fail "not all rounds ran"
[ "$(csv_col "$T/m.csv" clients | head -n 1)" -ge 2 ] || fail "round 1 did not complete with the others"

# a stale-round update gets STALE_ROUND and the session goes on
start_server --model logreg --rounds 1 --min-clients 1 --quorum 1 --epochs 1 --eval-limit 1000
peer stale c3 >"$T/stale.out" 2>&1 || fail "stale update: $(cat "$T/stale.out")"
grep -q "session survived" "$T/stale.out" || fail "stale: session did not survive"
wait_exit "$SPID" 30 || fail "server exit status $?"

# an update of the wrong length is refused, counted towards the quorum, and
# the round goes on with the valid one
start_server --model logreg --rounds 1 --min-clients 2 --quorum 2 --epochs 1 --eval-limit 1000 \
    --metrics-out "$T/bad.csv"
peer bad-update c3 >"$T/badupd.out" 2>&1 &
BP=$!
PIDS+=($BP)
start_client 0 3 --limit 1500
wait_exit "$CPID" 60 || fail "client exit status $?"
wait_exit "$SPID" 30 || fail "server exit status $?"
wait_exit "$BP" 10 || fail "bad-update peer: $(cat "$T/badupd.out")"
grep -q "update has 7851 values, model has 7850" "$T/server.log" || fail "bad update reason not logged"
[ "$(csv_col "$T/bad.csv" clients)" = 1 ] || fail "round with one bad update: $(cat "$T/bad.csv")"

# a session still joining when training ends is told so (TRAINING_OVER),
# not just closed
start_server --model logreg --rounds 2 --min-clients 1 --eval-limit 100
peer joining c2 >"$T/joining.out" 2>&1 &
JP=$!
PIDS+=($JP)
sleep 0.3
start_client 0 1 --limit 300
wait_exit "$CPID" 60 || fail "client: exit $?"
wait_exit "$SPID" 30 || fail "server: exit $?"
wait_exit "$JP" 10 || fail "the joining peer was not told training is over: $(cat "$T/joining.out")"

# a quorum that cannot be met: retried, then the server exits non-zero with the reason
start_server --model logreg --rounds 2 --min-clients 1 --quorum 1 --round-timeout 1 --retries 1
peer silent c0 >"$T/silent.out" 2>&1 &
PIDS+=($!)
wait_exit "$SPID" 6
rc=$?
[ "$rc" = 1 ] || fail "unreachable quorum: server exit status $rc, expected 1"
grep -q "quorum not met" "$T/server.log" || fail "quorum failure reason missing"
grep -q "attempt=1" "$T/server.log" || fail "round was not retried"
# and the port is free again
QPORT=$PORT
"$BIN/seedfl-server" --listen "127.0.0.1:$QPORT" --key "$T/server.key" --open-enrolment \
    --data "$DATA" --model logreg --eval-limit 100 --wait-timeout 0.5 >"$T/again.out" 2>&1
grep -q "listening on 127.0.0.1:$QPORT" "$T/again.out" || fail "port not freed: $(cat "$T/again.out")"
# a server that gives up tells its clients why
start_server --model logreg --rounds 1 --min-clients 2 --wait-timeout 2 --eval-limit 100
start_client 0 2 --limit 200
wait_exit "$CPID" 20
rc=$?
[ "$rc" = 1 ] || fail "client of a failing server exited $rc, expected 1"
grep -q "the server stopped: only 1 of the 2 clients needed connected within 2 s" "$T/c0.log" ||
    fail "client did not print the server's reason: $(tail -n 2 "$T/c0.log")"
wait_exit "$SPID" 10
[ $? = 1 ] || fail "server that gave up did not exit 1"
echo "ok"
