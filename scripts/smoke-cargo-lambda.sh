#!/usr/bin/env bash
# Smoke test of the real binaries under cargo-lambda's emulator (`cargo lambda watch`): a
# warm-up through `cargo lambda invoke`, and a routing decision through a Function URL path,
# against the sandbox's Segment-compatible server (in memory, demo customers).
# Needs: cargo-lambda on PATH, the sandbox binary built (cargo build -p sandbox).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
wait_port() {
  for _ in $(seq 1 "${2:-600}"); do
    if "$python" -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "nothing listened on port $1" >&2
  return 1
}

segment_port=$(free_port)
unused_port=$(free_port)
lambda_port=$(free_port)
logs=$(mktemp -d)
cleanup() {
  kill "${watch_pid:-}" "${sandbox_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$logs"
}
trap cleanup EXIT

target/debug/sandbox --in-memory --segment-port "$segment_port" --functions-port "$unused_port" >"$logs/sandbox" 2>&1 &
sandbox_pid=$!
wait_port "$segment_port" 100

cat >"$logs/env" <<ENV
SEGMENT_SPACE_ID=spa_sandbox
SEGMENT_PROFILE_API_TOKEN=sandbox-profile-token
SEGMENT_PROFILE_API_URL=http://127.0.0.1:$segment_port
PROXY_SHARED_SECRET=smoke-secret
ENV
cargo lambda watch --bin route-decision --invoke-address 127.0.0.1 --invoke-port "$lambda_port" --env-file "$logs/env" >"$logs/watch" 2>&1 &
watch_pid=$!
wait_port "$lambda_port" 600 || { cat "$logs/watch"; exit 1; }

fail() { echo "smoke test failed: $*" >&2; echo "--- cargo lambda watch:" >&2; tail -30 "$logs/watch" >&2; exit 1; }

# The first invoke builds the function if needed; give it time.
warm=$(cargo lambda invoke route-decision --invoke-address 127.0.0.1 --invoke-port "$lambda_port" --data-ascii '{"warmup": true}' 2>&1) || fail "$warm"
[[ "$warm" == *'"warm":true'* || "$warm" == *'"warm": true'* ]] || fail "warm-up answered: $warm"
echo "warm-up: $warm"

decision=$(curl -sS --max-time 60 -u "studio:smoke-secret" "http://127.0.0.1:$lambda_port/lambda-url/route-decision/" \
  --data-urlencode 'From=whatsapp:+15555550100') || fail "curl"
[[ "$decision" == *'"transition":"agent"'* && "$decision" == *'"rule":"read-docs-recently"'* ]] || fail "decision answered: $decision"
echo "decision: $decision"

refused=$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$lambda_port/lambda-url/route-decision/" \
  --data-urlencode 'From=+15555550100')
[[ "$refused" == 401 ]] || fail "an unauthenticated request got $refused"
echo "unauthenticated: $refused"
echo "smoke: 3 passed, 0 failed"
