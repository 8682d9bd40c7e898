#!/usr/bin/env bash
# `make run`: local Kafka + Redis, every kizuna worker that exists (services/<name>/__main__.py),
# the simulated shop (python -m simulator) feeding them, and the live view in the foreground
# until Ctrl-C, which stops it all. KIZUNA_RUN_SECONDS=N stops by itself after N seconds
# (without a terminal it then prints one final summary screen instead of the live view).
# Kafka + Redis are stopped at the end only if this script started them.
# Simulator knobs: KIZUNA_SIM_RATE (events/s, 50), KIZUNA_SIM_SPEED (simulated s per s, 3600),
# KIZUNA_SIM_SEED (42), KIZUNA_SIM_CUSTOMERS (2000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
LOG_DIR="$ROOT/.local/logs"
mkdir -p "$LOG_DIR"

started_stack=0
if ! PYTHON="$PYTHON" deploy/local/stack.sh status >/dev/null 2>&1; then started_stack=1; fi
PYTHON="$PYTHON" deploy/local/stack.sh up
eval "$(deploy/local/stack.sh env)"
export KIZUNA_LOG_FORMAT="${KIZUNA_LOG_FORMAT:-json}"
# One write key per SDK source (the gateway's and the simulator's shared configuration).
SIM_WRITE_KEYS='{"sim-web-key":"web","sim-app-key":"app"}'
export KIZUNA_GATEWAY_WRITE_KEYS="${KIZUNA_GATEWAY_WRITE_KEYS:-$SIM_WRITE_KEYS}"
export KIZUNA_GATEWAY_LINE_CHANNEL_SECRET="${KIZUNA_GATEWAY_LINE_CHANNEL_SECRET:-sim-line-channel-secret}"
# The shop's clock runs ahead of the wall clock (--speed): journeys follow event time.
export KIZUNA_JOURNEY_CLOCK_SKEW_SECONDS="${KIZUNA_JOURNEY_CLOCK_SKEW_SECONDS:-315360000}"
export KIZUNA_SIM_STATS_FILE="${KIZUNA_SIM_STATS_FILE:-$ROOT/.local/simulator/stats.json}"
rm -f "$KIZUNA_SIM_STATS_FILE"

declare -A PORTS=([gateway]=8080 [identity]=6066 [segmenter]=6067 [journey]=6068 [notifier]=6069)
pids=()
sim_pid=""
stop_all() {
  trap - INT TERM EXIT
  echo; echo "[run] stopping the simulator and the workers"
  if [ -n "$sim_pid" ]; then kill -TERM "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$started_stack" = 1 ]; then
    PYTHON="$PYTHON" deploy/local/stack.sh down
  else
    echo "[run] Kafka + Redis were already running: left up"
  fi
}
trap stop_all INT TERM EXIT

names=()
for main in services/*/__main__.py; do
  [ -e "$main" ] || continue
  name="$(basename "$(dirname "$main")")"
  port="${PORTS[$name]:-0}"
  echo "[run] starting $name (http://127.0.0.1:$port/metrics, log $LOG_DIR/$name.log)"
  KIZUNA_WEB_PORT="$port" "$PYTHON" -m "services.$name" >"$LOG_DIR/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
done

echo "[run] Kafka $KIZUNA_KAFKA, Redis $KIZUNA_REDIS; ${#pids[@]} worker(s) running. Ctrl-C stops everything."
if [ "${#pids[@]}" -eq 0 ]; then
  echo "[run] no workers yet: only the infrastructure runs"
fi

wait_healthy() {  # name port pid
  local deadline=$((SECONDS + 120))
  until curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$2/health"; do
    kill -0 "$3" 2>/dev/null || { echo "[run] $1 exited: see $LOG_DIR/$1.log" >&2; return 1; }
    [ "$SECONDS" -lt "$deadline" ] || { echo "[run] $1 not healthy after 120 s" >&2; return 1; }
    sleep 0.5
  done
  echo "[run] $1 healthy"
}
for i in "${!names[@]}"; do
  wait_healthy "${names[$i]}" "${PORTS[${names[$i]}]:-0}" "${pids[$i]}"
done

if [ -e services/gateway/__main__.py ]; then
  echo "[run] starting the simulated shop (log $LOG_DIR/simulator.log)"
  "$PYTHON" -m simulator --seed "${KIZUNA_SIM_SEED:-42}" --rate "${KIZUNA_SIM_RATE:-50}" \
    --speed "${KIZUNA_SIM_SPEED:-3600}" --customers "${KIZUNA_SIM_CUSTOMERS:-2000}" \
    --log "$LOG_DIR/simulator.log" >>"$LOG_DIR/simulator.log" 2>&1 &
  sim_pid=$!
fi

view=("$PYTHON" -m simulator.console)
if [ -n "${KIZUNA_RUN_SECONDS:-}" ]; then view+=(--seconds "$KIZUNA_RUN_SECONDS"); fi
"${view[@]}" || true
