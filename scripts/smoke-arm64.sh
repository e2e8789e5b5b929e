#!/usr/bin/env bash
# Runs the arm64 bootstraps that get deployed, under qemu-user, against a local Lambda Runtime
# API (scripts/runtime_api.py) and the sandbox's Segment-compatible server. Each one must
# start, answer a warm-up and do its job once: route-decision reads a demo profile and
# decides, profile-lookup reads it, wrap-up-ingest delivers a wrap-up to the Tracking API,
# trait-sync writes an Engage identify to dynalite (tests/dynalite, installed by .ci/run).
#
#   scripts/smoke-arm64.sh [BUILD_DIR]     # default .aws-sam/build (after `sam build`)
#
# Needs the sandbox binary (cargo build -p sandbox) and qemu-aarch64 with the arm64 glibc;
# when they are missing and apt-get can run, it installs qemu-user and libc6-arm64-cross.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${1:-.aws-sam/build}"
python="${PYTHON:-python3}"
sysroot=/usr/aarch64-linux-gnu

if ! command -v qemu-aarch64 >/dev/null || [[ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing qemu-user and the arm64 glibc"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user libc6-arm64-cross >/dev/null
  else
    echo "qemu-aarch64 and $sysroot are needed (apt-get install qemu-user libc6-arm64-cross)" >&2
    exit 1
  fi
fi

bootstrap() {
  # sam names build folders after the template's logical ids (with "-Shared" when two
  # functions, here the classic and the Managed Instances one, share a build); cargo lambda
  # after the binary.
  local logical="$1" binary="$2"
  for candidate in "$build/$logical/bootstrap" "$build/$logical-Shared/bootstrap" "$build/$binary/bootstrap"; do
    [[ -f "$candidate" ]] && { echo "$candidate"; return; }
  done
  echo "no bootstrap for $binary under $build" >&2
  exit 1
}

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
segment_port=$(free_port)
unused_port=$(free_port)
work=$(mktemp -d)
cleanup() {
  kill "${sandbox_pid:-}" "${dynalite_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

target/debug/sandbox --in-memory --segment-port "$segment_port" --functions-port "$unused_port" >"$work/sandbox" 2>&1 &
sandbox_pid=$!
for _ in $(seq 1 100); do
  "$python" -c "import socket; socket.create_connection(('127.0.0.1', $segment_port), 0.2)" 2>/dev/null && break
  sleep 0.2
done

export SEGMENT_SPACE_ID=spa_sandbox
export SEGMENT_PROFILE_API_TOKEN=sandbox-profile-token
export SEGMENT_PROFILE_API_URL="http://127.0.0.1:$segment_port"
export SEGMENT_WRITE_KEY=smoke-write-key
export SEGMENT_TRACKING_API_URL="http://127.0.0.1:$segment_port"
export PROXY_SHARED_SECRET=smoke-secret

passed=0
# run NAME LOGICAL_ID BINARY EVENTS_JSON EXPECTED_SUBSTRING...: one answer per event, in order.
run() {
  local name="$1" logical="$2" binary="$3" events="$4"
  shift 4
  local path
  path=$(bootstrap "$logical" "$binary")
  file -b "$path" | grep -q 'ARM aarch64' || { echo "$path is not an arm64 binary" >&2; exit 1; }
  echo "$events" >"$work/events.json"
  local answers
  answers=$("$python" scripts/runtime_api.py "$work/events.json" -- qemu-aarch64 -L "$sysroot" "$path") || {
    echo "smoke-arm64: $name failed; answers: ${answers:-none}" >&2
    exit 1
  }
  local line=0 expected
  for expected in "$@"; do
    line=$((line + 1))
    local answer
    answer=$(sed -n "${line}p" <<<"$answers" | tr -d ' ')
    [[ "$answer" == *"$expected"* ]] || { echo "smoke-arm64: $name answer $line was $answer, expected $expected" >&2; exit 1; }
    echo "$name: $answer"
    passed=$((passed + 1))
  done
}

docs_reader='+15555550100'
wrapup=$(cat tests/fixtures/taskrouter/voice-inbound-reservation-wrapup.json)

run route-decision RouteDecisionFunction route-decision \
  "[{\"warmup\": true}, {\"From\": \"whatsapp:$docs_reader\"}]" \
  '"warm":true' '"transition":"agent","rule":"read-docs-recently"'
run profile-lookup ProfileLookupFunction profile-lookup \
  "[{\"warmup\": true}, {\"From\": \"$docs_reader\", \"include\": \"docs_last_2_days\"}]" \
  '"warm":true' '"found":true'
run wrap-up-ingest WrapUpIngestFunction wrap-up-ingest \
  "[{\"warmup\": true}, $wrapup]" \
  '"warm":true' '"accepted":true'

dynalite_port=$(free_port)
tests/dynalite/node_modules/.bin/dynalite --host 127.0.0.1 --port "$dynalite_port" --createTableMs 0 >/dev/null 2>&1 &
dynalite_pid=$!
"$python" - "$dynalite_port" <<'PY'
import json, sys, time, urllib.request
port = sys.argv[1]
body = {"TableName": "traits", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}
for _ in range(100):
    try:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/", json.dumps(body).encode(), {
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.CreateTable",
            "X-Amz-Date": "20261206T000000Z",
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0"}))
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("dynalite did not start")
PY
identify='{"type": "identify", "userId": "u-smoke", "timestamp": "2026-12-01T10:00:00Z", "traits": {"vip": true, "phone": "+15555550100"}, "context": {"personas": {"computation_class": "trait", "computation_key": "vip", "space_id": "spa_sandbox"}}}'
TRAIT_STORE_TABLE=traits AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$dynalite_port" AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=smoke-secret-key \
  run trait-sync TraitSyncFunction trait-sync "[{\"warmup\": true}, $identify]" '"warm":true' '"written":4'

echo "smoke-arm64: $passed passed, 0 failed"
