#!/usr/bin/env bash
# Runs a nats-server (JetStream) and N skein control-plane replicas sharing their state through it,
# all on this machine and on loopback, for trying high availability by hand. Prints each
# replica's addresses, then waits; Ctrl-C (or SIGTERM) stops everything it started.
#
#   deploy/local/run-replicas.sh            # 3 replicas, NATS on 127.0.0.1:14222
#   REPLICAS=2 BASE_PORT=19100 NATS_PORT=15222 deploy/local/run-replicas.sh
#
# Environment (defaults): REPLICAS (3), NATS_PORT (14222), BASE_PORT (18100: replica i listens on
# BASE_PORT+10*i for xDS, +1 for the API, +2 for /metrics), BUCKET (skein), DIR (a new temp dir:
# NATS's store, each replica's --data-dir and logs; kept afterwards so you can read the logs).
# Replica 1 generates the mesh CA; the others plug the same one (--ca-cert/--ca-key), as replicas must.
# Try: stop the nats-server (kill the pid printed) and apply a change: 503 SKEIN_ERR_STORE_UNAVAILABLE,
# while every replica keeps serving; start it again with the printed command and they catch up.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REPLICAS="${REPLICAS:-3}"
NATS_PORT="${NATS_PORT:-14222}"
BASE_PORT="${BASE_PORT:-18100}"
BUCKET="${BUCKET:-skein}"
DIR="${DIR:-$(mktemp -d -t skein-replicas-XXXXXX)}"
SKEIN=("node" "$ROOT/dist/cli/src/main.js")

bash "$ROOT/scripts/ensure-debian-tools.sh" nats-server
NATS_BIN="$(command -v nats-server || echo /usr/sbin/nats-server)"
[ -f "$ROOT/dist/cli/src/main.js" ] || (cd "$ROOT" && npm run build --silent)
mkdir -p "$DIR"

pids=()
stop_all() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped; logs and data in $DIR" >&2
}
trap stop_all INT TERM EXIT

NATS_CMD=("$NATS_BIN" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$DIR/nats")
"${NATS_CMD[@]}" >"$DIR/nats.log" 2>&1 &
pids+=($!)
nats_pid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && break; sleep 0.1; done
(exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null || { echo "nats-server did not start; see $DIR/nats.log" >&2; exit 1; }

# Starts replica $1 in the background and waits for its ready line (written to $DIR/rN.ready).
start_replica() {
  local i="$1"; shift
  local port=$((BASE_PORT + 10 * i))
  mkdir -p "$DIR/r$i"
  # One nats-server, not clustered: it keeps one copy of each stream (--store-replicas 1; more is refused).
  "${SKEIN[@]}" control-plane --store "nats://127.0.0.1:$NATS_PORT" --store-bucket "$BUCKET" --store-replicas 1 --data-dir "$DIR/r$i" \
    --xds-listen "127.0.0.1:$port" --api-listen "127.0.0.1:$((port + 1))" --monitoring-listen "127.0.0.1:$((port + 2))" "$@" \
    >"$DIR/r$i.ready" 2>"$DIR/r$i.log" &
  pids+=($!)
  for _ in $(seq 1 300); do grep -q '"ready":true' "$DIR/r$i.ready" 2>/dev/null && return 0; sleep 0.1; done
  echo "replica $i did not become ready; see $DIR/r$i.log" >&2
  exit 1
}

start_replica 1
for i in $(seq 2 "$REPLICAS"); do start_replica "$i" --ca-cert "$DIR/r1/ca/root-cert.pem" --ca-key "$DIR/r1/ca/root-key.pem"; done

echo "nats-server: nats://127.0.0.1:$NATS_PORT (pid $nats_pid; restart it with: ${NATS_CMD[*]})"
for i in $(seq 1 "$REPLICAS"); do
  port=$((BASE_PORT + 10 * i))
  echo "replica $i: xds 127.0.0.1:$port  api https://127.0.0.1:$((port + 1))  metrics http://127.0.0.1:$((port + 2))/metrics  data $DIR/r$i  log $DIR/r$i.log"
done
echo "try: SKEIN_DATA_DIR=$DIR/r1 node $ROOT/dist/cli/src/main.js apply -f $ROOT/examples/mesh.yaml --api https://127.0.0.1:$((BASE_PORT + 11))"
echo "     SKEIN_DATA_DIR=$DIR/r2 node $ROOT/dist/cli/src/main.js get --api https://127.0.0.1:$((BASE_PORT + 21))   # the same revision, from replica 2"
echo "Ctrl-C stops everything."
wait "${pids[@]}"
