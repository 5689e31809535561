# Shared helpers for the integration tests: real binaries, real keys, real
# sockets on 127.0.0.1, a private temporary folder removed on exit.
set -u
BIN=${SFL_BIN:?SFL_BIN must name the build folder}
DATA=${SFL_DATA:-/usr/share/datasets/fashion-mnist}
T=$(mktemp -d "${TMPDIR:-/tmp}/seedfl-it.XXXXXX")
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    for f in "$T"/*.log "$T"/*.out; do
        [ -f "$f" ] || continue
        echo "--- $(basename "$f") (last 25 lines)"
        tail -n "${TAIL_LINES:-25}" "$f"
    done
    exit 1
}

# make_keys N: a server key and N client keys c0..c(N-1) on the allow-list
make_keys() {
    "$BIN/seedfl-keygen" "$T/server.key" >/dev/null || fail "keygen server"
    : >"$T/allow"
    echo "# seedfl test allow-list" >>"$T/allow"
    for ((i = 0; i < $1; i++)); do
        "$BIN/seedfl-keygen" "$T/c$i.key" >/dev/null || fail "keygen c$i"
        cat "$T/c$i.key.pub" >>"$T/allow"
    done
}

# start_server ARGS...: sets SPID and PORT
start_server() {
    rm -f "$T/port"
    "$BIN/seedfl-server" --listen 127.0.0.1:0 --port-file "$T/port" --key "$T/server.key" \
        --allow "$T/allow" --data "$DATA" "$@" >"$T/server.out" 2>"$T/server.log" &
    SPID=$!
    PIDS+=("$SPID")
    for ((i = 0; i < 200; i++)); do
        [ -s "$T/port" ] && break
        kill -0 "$SPID" 2>/dev/null || fail "server exited at start"
        sleep 0.05
    done
    [ -s "$T/port" ] || fail "server wrote no port file"
    PORT=$(cat "$T/port")
}

# start_client I OF ARGS...: client I with key cI; sets CPID
start_client() {
    local i=$1 of=$2
    shift 2
    "$BIN/seedfl-client" --server "127.0.0.1:$PORT" --server-key "$T/server.key.pub" \
        --key "$T/c$i.key" --data "$DATA" --shard "$i" --of "$of" "$@" \
        >"$T/c$i.out" 2>"$T/c$i.log" &
    CPID=$!
    PIDS+=("$CPID")
}

# wait_exit PID SECONDS: the process's exit status, or 124 after killing it
wait_exit() {
    local pid=$1 limit=$2 n=0
    while kill -0 "$pid" 2>/dev/null; do
        if ((n >= limit * 10)); then
            kill -9 "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            return 124
        fi
        sleep 0.1
        n=$((n + 1))
    done
    wait "$pid"
}

# peer SCENARIO [KEY]: run the misbehaving test peer
peer() {
    "$BIN/tests/testpeer" "127.0.0.1:$PORT" "$T/server.key.pub" "$T/${2:-c0}.key" "$1"
}

# csv_col FILE COLUMN: values of one column of the metrics CSV
csv_col() {
    awk -F, -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } { print $k }' "$1"
}
