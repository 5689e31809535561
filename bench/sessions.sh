#!/usr/bin/env bash
# What held sessions cost the server: starts a seedfl-server on 127.0.0.1
# with an allow-list of N keys from `seedfl-load keys`, opens N authenticated
# (not ready) sessions with seedfl-load, and prints the server's RSS before
# and after, the memory per session next to the 32 KiB goal, and
# seedfl-load's handshake figures. With --with-clients, two real clients
# train a few rounds while the sessions are held, and it says whether the
# rounds completed.
#
# usage: bench/sessions.sh [--sessions N] [--with-clients] [--rounds R] [--open-enrolment]
#                          [--settle SEC] [--keep] [-- seedfl-load run options...]
#   --sessions N     sessions to open (default 10000)
#   --open-enrolment the server admits any key instead of checking the allow-list
#                    (to compare: what the allow-list lookup costs per handshake)
#   --with-clients   two seedfl-client processes train --rounds rounds meanwhile
#   --rounds R       rounds for the clients (default 3)
#   --settle SEC     wait after the last session is established before the RSS is
#                    read (default 3)
#   --rate-runs R    then R more runs of seedfl-load (3000 sessions each, opened
#                    and closed while the N are held) for the handshake rate; the
#                    median of all runs is compared with the bound (default 3)
#   --keep           keep the working folder (keys, logs) and print its path
#   after --: passed to `seedfl-load run` (e.g. --concurrency 512 --rate 500)
set -u
cd "$(dirname "$0")/.."
. scripts/common.sh

sessions=10000
clients=0
rounds=3
settle=3
keep=0
open_enrol=0
rate_runs=3
rate_n=3000
load_args=()
need() { [ "$2" -ge 2 ] || { echo "sessions: $1 needs a value (try --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
    --sessions) need "$1" $#; sessions=$2; shift 2 ;;
    --with-clients) clients=1; shift ;;
    --rounds) need "$1" $#; rounds=$2; shift 2 ;;
    --settle) need "$1" $#; settle=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --open-enrolment) open_enrol=1; shift ;;
    --rate-runs) need "$1" $#; rate_runs=$2; shift 2 ;;
    --) shift; load_args=("$@"); break ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "sessions: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[[ "$sessions" =~ ^[1-9][0-9]*$ && "$rounds" =~ ^[1-9][0-9]*$ && "$rate_runs" =~ ^[0-9]+$ ]] ||
    { echo "sessions: --sessions and --rounds take whole numbers >= 1, --rate-runs >= 0" >&2; exit 2; }
[[ "$settle" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "sessions: --settle takes a number of seconds" >&2; exit 2; }
# the load tool checks its own options: a wrong one ends the run here
if [ ${#load_args[@]} -gt 0 ]; then
    for a in "${load_args[@]}"; do
        case "$a" in --keys | --keys=* | --server | --server=* | --server-key | --server-key=* | --count | --count=*)
            echo "sessions: $a is set by this script; pass only seedfl-load's other run options" >&2
            exit 2 ;;
        esac
    done
fi

sfl_install_deps || { echo "sessions: could not install the packages seedfl needs" >&2; exit 1; }
sfl_build build || { echo "sessions: build failed" >&2; exit 1; }

# every session is a descriptor in the server and one in seedfl-load
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then
    ulimit -n unlimited
else
    ulimit -n "$hard"
    need=$((sessions + 100))
    if [ "$hard" -lt "$need" ]; then
        echo "sessions: the hard limit on open files is $hard, below the $need that $sessions"
        echo "          sessions need (N + 100); raise it (limits.conf, or prlimit/ulimit -Hn as"
        echo "          root) to measure N = $sessions. Running $((hard - 100)) sessions instead."
        sessions=$((hard - 100))
    fi
    [ $((sessions + rate_n + 100)) -le "$hard" ] || rate_runs=0
fi
echo "sessions: open-file limit $(ulimit -n) (hard $hard)"

work=$(mktemp -d "${TMPDIR:-/tmp}/seedfl-sessions.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ "$keep" = 1 ]; then echo "sessions: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

status_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; } # utime + stime
tcp_kib() { awk -v pg="$(getconf PAGESIZE)" '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) * pg / 1024 }' /proc/net/sockstat; }
alive() { kill -0 "$1" 2>/dev/null; }

build/seedfl-keygen "$work/server.key" >/dev/null || exit 1
build/seedfl-load keys --count "$sessions" --out "$work/load" >/dev/null || exit 1
cp "$work/load/allow" "$work/allow"
for ((r = 1; r <= rate_runs; r++)); do
    build/seedfl-load keys --count "$rate_n" --out "$work/rate$r" >/dev/null || exit 1
    cat "$work/rate$r/allow" >>"$work/allow"
done
min_clients=1
if [ "$clients" = 1 ]; then
    min_clients=2
    for i in 0 1; do
        build/seedfl-keygen "$work/client$i.key" >>"$work/allow" || exit 1
    done
fi

# the load tool's sessions never send Ready, so the server waits for real
# clients (or for nothing): a long --wait-timeout keeps it from giving up
admit=(--allow "$work/allow")
[ "$open_enrol" = 1 ] && admit=(--open-enrolment)
echo "sessions: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (other work lowers every figure)"
build/seedfl-server --listen 127.0.0.1:0 --port-file "$work/port" --key "$work/server.key" \
    "${admit[@]}" --min-clients "$min_clients" --rounds "$rounds" --model logreg \
    --epochs 1 --wait-timeout 3600 --round-timeout 120 --max-unauth-per-host 1024 \
    >"$work/server.out" 2>"$work/server.log" &
server=$!
pids+=("$server")
for _ in $(seq 300); do
    [ -s "$work/port" ] && break
    alive "$server" || break
    sleep 0.1
done
if [ ! -s "$work/port" ]; then
    echo "sessions: the server did not start:"
    tail -n 5 "$work/server.log"
    exit 1
fi
port=$(cat "$work/port")
sleep 1
rss0=$(status_kib "$server" VmRSS)
maps0=$(wc -l <"/proc/$server/maps")
fds0=$(ls "/proc/$server/fd" | wc -l)
tcp0=$(tcp_kib)
cpu0=$(cpu_ticks "$server")

echo "sessions: server pid $server on 127.0.0.1:$port, RSS $rss0 KiB; opening $sessions sessions"
build/seedfl-load run --server "127.0.0.1:$port" --server-key "$work/server.key.pub" \
    --keys "$work/load" --count "$sessions" --hold 100000 "${load_args[@]}" \
    >"$work/load.out" 2>"$work/load.err" &
load=$!
pids+=("$load")
# the connect phase ends when every session is established or failed
limit=$((sessions / 50 + 120))
t0=$(date +%s)
while ! grep -q '^holding ' "$work/load.out" 2>/dev/null; do
    if ! alive "$load"; then break; fi
    if [ $(($(date +%s) - t0)) -gt "$limit" ]; then
        echo "sessions: the connect phase took over $limit s; measuring anyway"
        break
    fi
    sleep 0.5
done
cpu1=$(cpu_ticks "$server")
sleep "$settle"
status=0
server_up=1
alive "$server" || { server_up=0; status=1; }
if ! alive "$load" && ! grep -q '^holding ' "$work/load.out" 2>/dev/null; then
    echo "sessions: seedfl-load ended early:"
    tail -n 5 "$work/load.err"
    status=1
fi
if [ "$server_up" = 1 ]; then
    rss1=$(status_kib "$server" VmRSS)
    hwm1=$(status_kib "$server" VmHWM)
    maps1=$(wc -l <"/proc/$server/maps")
    fds1=$(ls "/proc/$server/fd" | wc -l)
    tcp1=$(tcp_kib)
fi

# more handshake-rate runs while the sessions are held: each opens and
# closes rate_n sessions of its own keys
rates=()
bound=""
if [ "$server_up" = 1 ]; then
    for ((r = 1; r <= rate_runs; r++)); do
        build/seedfl-load run --server "127.0.0.1:$port" --server-key "$work/server.key.pub" \
            --keys "$work/rate$r" --hold 0 --heartbeat 0 "${load_args[@]}" \
            >"$work/rate$r.out" 2>"$work/rate$r.err"
        rates+=("$(sed -n 's/^achieved \/ bound: \([0-9]*\) \/ \([0-9]*\) = \([0-9.]*\).*/\1:\2:\3/p' "$work/rate$r.out")")
    done
fi

rounds_done=""
if [ "$clients" = 1 ] && [ "$server_up" = 1 ]; then
    echo "sessions: sessions held; 2 clients train $rounds rounds"
    cpids=()
    for i in 0 1; do
        build/seedfl-client --server "127.0.0.1:$port" --server-key "$work/server.key.pub" \
            --key "$work/client$i.key" --shard "$i" --of 2 --limit 6000 --name "real$i" \
            --reconnect-for 0 >"$work/client$i.out" 2>"$work/client$i.log" &
        cpids+=($!)
        pids+=($!)
    done
    crc=()
    for p in "${cpids[@]}"; do
        wait "$p"
        crc+=($?)
    done
    rounds_done=$(grep -c '^round ' "$work/server.out")
fi

alive "$load" && kill -INT "$load"
wait "$load" 2>/dev/null
server_after=1
alive "$server" || server_after=0

echo
cat "$work/load.out"
echo
if [ ${#rates[@]} -gt 0 ]; then
    # each run's rate over the bound it measured itself just before connecting
    main=$(sed -n 's/^achieved \/ bound: \([0-9]*\) \/ \([0-9]*\) = \([0-9.]*\).*/\1:\2:\3/p' "$work/load.out")
    echo "== handshake rate over runs (rate / one-core X25519 bound of that run = ratio)"
    printf '%s\n' "$main" "${rates[@]}" | awk -F: -v n="$sessions" -v m="$rate_n" '
        NF == 3 {
            printf "run %d: %d / %d = %.2f (%s sessions%s)\n", NR, $1, $2, $3,
                NR == 1 ? n : m, NR == 1 ? "" : ", the first run'"'"'s held meanwhile"
            r[NR] = $3; k = NR
        }
        END {
            if (!k) { print "no run reported a rate"; exit }
            for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
            med = k % 2 ? r[(k + 1) / 2] : (r[k / 2] + r[k / 2 + 1]) / 2
            printf "median of %d runs: %.2f of the bound (goal >= 0.60: %s)\n", k, med, (med >= 0.6 ? "met" : "NOT met")
        }'
    echo
fi
echo "== server"
if [ "$server_up" = 0 ]; then
    echo "the server exited during the connect phase; its last lines:"
    tail -n 10 "$work/server.log"
else
    established=$(sed -n 's/^sessions established: \([0-9]*\) of.*/\1/p' "$work/load.out" | head -n 1)
    established=${established:-0}
    [ "$established" = "$sessions" ] || status=1
    awk -v a="$rss0" -v b="$rss1" -v h="$hwm1" -v n="$established" 'BEGIN {
        printf "server RSS before: %d KiB; with %d sessions held: %d KiB (peak %d KiB)\n", a, n, b, h
        if (n > 0) {
            per = (b - a) / n
            printf "memory per session: %.1f KiB (goal <= 32 KiB: %s)\n", per, per <= 32 ? "met" : "NOT met"
        } else {
            print "memory per session: n/a (no session established)"
        }
    }'
    echo "server descriptors: $fds0 before, $fds1 with the sessions; memory mappings: $maps0 before, $maps1 with the sessions"
    echo "kernel TCP buffer memory (both ends, loopback; not in RSS): $tcp0 KiB before, $tcp1 KiB with the sessions"
    handshakes=$(sed -n 's/^handshakes completed: \([0-9]*\).*/\1/p' "$work/load.out" | head -n 1)
    awk -v c0="$cpu0" -v c1="$cpu1" -v hz="$(getconf CLK_TCK)" -v n="${handshakes:-0}" \
        -v adm="$([ "$open_enrol" = 1 ] && echo "open enrolment" || echo "allow-list of $sessions keys")" 'BEGIN {
        s = (c1 - c0) / hz
        printf "server CPU while connecting: %.2f s", s
        if (n > 0 && s > 0) printf " = %.0f us per handshake, %.0f handshakes per server CPU second (%s)", 1e6 * s / n, n / s, adm
        print ""
    }'
fi
[ "$server_after" = 1 ] || [ "$clients" = 1 ] ||
    echo "the server was no longer running at the end (see its log)"
# warnings and errors by event, from the server's log
awk '/level=(warn|error)/ { for (i = 1; i <= NF; i++) if ($i ~ /^event=/) n[substr($i, 7)]++ }
     END { if (length(n) == 0) print "server warnings: none"; else { printf "server warnings:"; for (e in n) printf " %s=%d", e, n[e]; print "" } }' \
    "$work/server.log"
if [ "$clients" = 1 ]; then
    echo
    echo "== real clients (min-clients 2, the load sessions not ready)"
    if [ -n "$rounds_done" ]; then
        echo "rounds completed: $rounds_done of $rounds; client exit status: ${crc[*]}"
        grep '^round ' "$work/server.out" | sed 's/^/  /'
        if [ "$rounds_done" = "$rounds" ] && [ "${crc[*]}" = "0 0" ]; then
            echo "the rounds completed with $sessions sessions held"
        else
            echo "the rounds did NOT complete; client logs:"
            tail -n 3 "$work/client0.log" "$work/client1.log"
            status=1
        fi
    else
        echo "not run (the server had exited)"
        status=1
    fi
fi
exit "$status"
