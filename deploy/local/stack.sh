#!/usr/bin/env bash
# Local, Docker-free infrastructure: a real single-node Apache Kafka (KRaft) from the
# official jars resolved through Maven, and a real redis-server with AOF, on loopback.
#
#   deploy/local/stack.sh up       resolve jars (once), start Kafka + Redis, create topics
#   deploy/local/stack.sh down     stop both cleanly (SIGTERM, then wait)
#   deploy/local/stack.sh status   is each one up?
#   deploy/local/stack.sh env      print the KIZUNA_* exports that point at this stack
#
# Everything it writes lives under $KIZUNA_LOCAL_DIR (default .local/, git-ignored).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL_DIR="${KIZUNA_LOCAL_DIR:-$ROOT/.local}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/local/kafka/pom.xml")"
KAFKA_PORT="${KIZUNA_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KIZUNA_KAFKA_CONTROLLER_PORT:-19093}"
REDIS_PORT="${KIZUNA_REDIS_PORT:-16379}"
KAFKA_HEAP="${KIZUNA_KAFKA_HEAP:--Xms256m -Xmx768m}"

KAFKA_HOME="$LOCAL_DIR/kafka"
KAFKA_LIB="$KAFKA_HOME/lib-$KAFKA_VERSION"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_PID="$KAFKA_HOME/kafka.pid"
REDIS_HOME="$LOCAL_DIR/redis"
REDIS_PID="$REDIS_HOME/redis.pid"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# running, and not a zombie left unreaped by the container's init after a kill -9
alive() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null &&
    ! grep -qs '^State:[[:space:]]*Z' "/proc/$(cat "$1")/status"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- Kafka ------------------------------------------------------------------------------

kafka_resolve() {
  [ -f "$KAFKA_LIB/.complete" ] && return 0
  command -v java >/dev/null || die "java is required for Kafka (apt-get install default-jre-headless)"
  command -v mvn >/dev/null || as_root apt-get install -y -q maven >/dev/null
  log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION (runtime scope) through Maven"
  rm -rf "$KAFKA_LIB" && mkdir -p "$KAFKA_LIB"
  mvn -q -B -f "$ROOT/deploy/local/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIB" \
    || die "Maven could not resolve Kafka $KAFKA_VERSION (see output above)"
  [ -f "$KAFKA_LIB/kafka_2.13-$KAFKA_VERSION.jar" ] || die "kafka_2.13-$KAFKA_VERSION.jar missing"
  touch "$KAFKA_LIB/.complete"
}

kafka_configure() {
  mkdir -p "$KAFKA_DATA" "$KAFKA_HOME/logs"
  sed -e "s|@PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
      "$ROOT/deploy/local/kafka/server.properties.in" > "$KAFKA_HOME/server.properties"
  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    local cluster_id
    cluster_id="$(java -cp "$KAFKA_LIB/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
    log "formatting KRaft storage (cluster $cluster_id)"
    java -cp "$KAFKA_LIB/*" -Dlog4j.configuration="file:$ROOT/deploy/local/kafka/log4j.properties" \
      -Dkafka.logs.dir="$KAFKA_HOME/logs" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_HOME/server.properties" \
      --ignore-formatted >"$KAFKA_HOME/logs/format.log" 2>&1 \
      || { cat "$KAFKA_HOME/logs/format.log" >&2; die "KRaft storage format failed"; }
  fi
}

kafka_up() {
  if alive "$KAFKA_PID"; then log "kafka already running (pid $(cat "$KAFKA_PID"))"; return 0; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process"
  kafka_resolve
  kafka_configure
  log "starting Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1:$KAFKA_PORT"
  # shellcheck disable=SC2086
  nohup java $KAFKA_HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$ROOT/deploy/local/kafka/log4j.properties" \
    -Dkafka.logs.dir="$KAFKA_HOME/logs" \
    -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_HOME/server.properties" \
    >"$KAFKA_HOME/logs/stdout.log" 2>&1 &
  echo $! > "$KAFKA_PID"
}

# --- Redis ------------------------------------------------------------------------------

redis_install() {
  command -v redis-server >/dev/null && return 0
  log "installing Debian's redis-server"
  as_root apt-get update -q >/dev/null || log "apt-get update failed; trying the install anyway"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null \
    || die "apt-get install redis-server failed"
}

redis_up() {
  if alive "$REDIS_PID"; then log "redis already running (pid $(cat "$REDIS_PID"))"; return 0; fi
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by another process"
  redis_install
  mkdir -p "$REDIS_HOME"
  log "starting redis-server on 127.0.0.1:$REDIS_PORT (appendonly yes)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_HOME" \
    --appendonly yes --appendfsync everysec --save "" --protected-mode yes \
    --hash-max-listpack-entries 256 --hash-max-listpack-value 1024 \
    --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_HOME/redis.log"
}

# --- lifecycle ----------------------------------------------------------------------------

wait_healthy() {
  "$PYTHON" -m runtime.localstack wait --kafka "127.0.0.1:$KAFKA_PORT" \
    --redis "redis://127.0.0.1:$REDIS_PORT/0" --timeout "${KIZUNA_STACK_TIMEOUT:-120}" \
    || { tail -n 40 "$KAFKA_HOME/logs/server.log" >&2 || true; die "stack did not become healthy"; }
}

stop_pid() {
  local name="$1" pidfile="$2" grace="$3"
  alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  local pid; pid="$(cat "$pidfile")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq "$grace"); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in ${grace}s; killing"; kill -KILL "$pid"; fi
  rm -f "$pidfile"
}

cmd_up() {
  mkdir -p "$LOCAL_DIR"
  redis_up
  kafka_up
  wait_healthy
  "$PYTHON" -m runtime.topics ensure --bootstrap "127.0.0.1:$KAFKA_PORT"
  log "up: kafka 127.0.0.1:$KAFKA_PORT, redis 127.0.0.1:$REDIS_PORT"
}

cmd_down() {
  stop_pid kafka "$KAFKA_PID" 60
  stop_pid redis "$REDIS_PID" 20
}

cmd_status() {
  local rc=0
  if alive "$KAFKA_PID"; then echo "kafka: up (pid $(cat "$KAFKA_PID"), 127.0.0.1:$KAFKA_PORT)"; else echo "kafka: down"; rc=1; fi
  if alive "$REDIS_PID"; then echo "redis: up (pid $(cat "$REDIS_PID"), 127.0.0.1:$REDIS_PORT)"; else echo "redis: down"; rc=1; fi
  return $rc
}

cmd_env() {
  echo "export KIZUNA_KAFKA=127.0.0.1:$KAFKA_PORT"
  echo "export KIZUNA_REDIS=redis://127.0.0.1:$REDIS_PORT/0"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
