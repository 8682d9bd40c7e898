#!/usr/bin/env bash
# `make run`: local Kafka + Redis, then every kizuna worker that exists
# (services/<name>/__main__.py), in the foreground until Ctrl-C, which stops it all.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
LOG_DIR="$ROOT/.local/logs"
mkdir -p "$LOG_DIR"

PYTHON="$PYTHON" deploy/local/stack.sh up
eval "$(deploy/local/stack.sh env)"
export KIZUNA_LOG_FORMAT="${KIZUNA_LOG_FORMAT:-json}"

declare -A PORTS=([gateway]=8080 [identity]=6066 [segmenter]=6067 [journey]=6068 [notifier]=6069)
pids=()
stop_all() {
  trap - INT TERM EXIT
  echo; echo "[run] stopping workers"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  PYTHON="$PYTHON" deploy/local/stack.sh down
}
trap stop_all INT TERM EXIT

for main in services/*/__main__.py; do
  [ -e "$main" ] || continue
  name="$(basename "$(dirname "$main")")"
  port="${PORTS[$name]:-0}"
  echo "[run] starting $name (http://127.0.0.1:$port/metrics, log $LOG_DIR/$name.log)"
  KIZUNA_WEB_PORT="$port" "$PYTHON" -m "services.$name" >"$LOG_DIR/$name.log" 2>&1 &
  pids+=($!)
done

echo "[run] Kafka $KIZUNA_KAFKA, Redis $KIZUNA_REDIS; ${#pids[@]} worker(s) running. Ctrl-C stops everything."
if [ "${#pids[@]}" -eq 0 ]; then
  echo "[run] no workers yet: only the infrastructure runs"
fi
if [ -n "${KIZUNA_RUN_SECONDS:-}" ]; then sleep "$KIZUNA_RUN_SECONDS"; else while true; do sleep 3600; done; fi
