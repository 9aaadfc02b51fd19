#!/usr/bin/env bash
# Side-by-side load test: our stun-server against coturn (--stun-only), on
# loopback, in one run. Each server gets CPU 0 and one worker; the load
# generator gets CPU 1. Rounds alternate between servers so drift in the
# shared machine hits both alike; the table shows medians over rounds.
#
#   scripts/bench-compare.sh [ROUNDS] [SECONDS]
#
# Needs: coturn (apt-get install coturn), python3, taskset (util-linux).
set -euo pipefail
ROUNDS=${1:-5}
SECS=${2:-5}
cd "$(dirname "$0")/.."
cargo build --release -q -p stun-server -p ice-probe
cargo build --release -q -p stun-server --example minimal_responder
command -v turnserver >/dev/null || { echo "coturn is not installed: apt-get install -y coturn" >&2; exit 3; }
OUT=$(mktemp -d)
trap 'kill $OURS $COTURN $YARD 2>/dev/null || true; rm -rf "$OUT"' EXIT
OUR_PORT=34780; COTURN_PORT=34790; YARD_PORT=34800

taskset -c 0 ./target/release/stun-server --listen 127.0.0.1:$OUR_PORT --workers 1 --rate-limit off 2>"$OUT/ours.log" &
OURS=$!
taskset -c 0 turnserver --stun-only -L 127.0.0.1 --listening-port $COTURN_PORT --no-cli --no-tls --no-dtls \
  --relay-threads 0 --log-file stdout --no-stdout-log -n >"$OUT/coturn.log" 2>&1 &
COTURN=$!
# The yardstick: the least work that answers validly (see the example's docs).
taskset -c 0 ./target/release/examples/minimal_responder 127.0.0.1:$YARD_PORT 2>/dev/null &
YARD=$!
sleep 1.5
rss() { awk '/VmRSS/ {print $2}' /proc/$1/status; }
echo "idle RSS: stun-server $(rss $OURS) KiB, coturn $(rss $COTURN) KiB" >&2

bench() { # name port pid round
  taskset -c 1 ./target/release/ice-probe bench stun:127.0.0.1:$2 --sockets 32 --window 32 \
    --duration "$SECS" --warmup 1 --server-pid "$3" --json > "$OUT/$1.$4.json" || true
}
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS" >&2
  bench stun-server $OUR_PORT $OURS "$r"
  bench coturn $COTURN_PORT $COTURN "$r"
  bench minimal-responder $YARD_PORT $YARD "$r"
done
# Memory against many clients: one request from each of 100,000 addresses.
for s in "stun-server $OUR_PORT $OURS" "coturn $COTURN_PORT $COTURN"; do
  set -- $s
  ./target/release/ice-probe bench stun:127.0.0.1:$2 --distinct-sources 100000 --duration 1 \
    --warmup 0 --server-pid "$3" --json > "$OUT/$1.spray.json" || true
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys, glob
out, rounds = sys.argv[1], int(sys.argv[2])
rows = []
for name in ["stun-server", "coturn", "minimal-responder"]:
    runs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{name}.[0-9]*.json"))]
    per_core = [r["server"]["responses_per_cpu_second"] or 0 for r in runs]
    rps = [r["responses_per_sec"] for r in runs]
    p50 = [r["latency_us"]["p50"] for r in runs]
    p99 = [r["latency_us"]["p99"] for r in runs]
    lost = sum(r["lost"] for r in runs); invalid = sum(r["invalid"] for r in runs)
    try:
        spray = json.load(open(f"{out}/{name}.spray.json"))
    except FileNotFoundError:
        spray = {"server": {"rss_kib_before": 0, "rss_kib_after": 0}, "distinct_sources": {"answered": 0}}
    sv = spray["server"]
    rows.append((name, statistics.median(per_core), min(per_core), max(per_core),
                 statistics.median(rps), statistics.median(p50), statistics.median(p99),
                 lost, invalid, sv["rss_kib_before"], sv["rss_kib_after"],
                 spray["distinct_sources"]["answered"]))
print(f"| server | responses / s / server core (median of {rounds}) | range | responses / s | p50 | p99 | lost | invalid | RSS before -> after 100k sources | answered of 100k |")
print("|---|---|---|---|---|---|---|---|---|---|")
for n, pc, lo, hi, rps, p50, p99, lost, inv, r0, r1, ans in rows:
    print(f"| {n} | **{pc:,.0f}** | {lo:,.0f}-{hi:,.0f} | {rps:,.0f} | {p50/1000:.2f} ms | {p99/1000:.2f} ms | {lost} | {inv} | {r0/1024:.1f} -> {r1/1024:.1f} MiB | {ans:,} |")
print(f"\nper server core: stun-server / coturn = {rows[0][1]/rows[1][1]:.2f}x; stun-server / minimal responder = {rows[0][1]/rows[2][1]:.2f}")
PY
