#!/usr/bin/env bash
# Starts the sandbox binary on free loopback ports (in memory, no demo data) and runs
# Segment's official Python and Node clients against it. Needs: the sandbox binary built
# (cargo build -p sandbox), a python with segment-analytics-python (PYTHON, default
# python3), and `npm ci` done in this folder.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
binary="${SANDBOX_BINARY:-$root/target/debug/sandbox}"

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
segment_port=$(free_port)
functions_port=$(free_port)
log=$(mktemp)
"$binary" --in-memory --no-demo --segment-port "$segment_port" --functions-port "$functions_port" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  if "$python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $segment_port), 0.2)" 2>/dev/null; then break; fi
  sleep 0.1
done
export SANDBOX_SEGMENT_URL="http://127.0.0.1:$segment_port"

"$python" "$here/python_client.py"
(cd "$here" && node --test)
