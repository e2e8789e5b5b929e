#!/usr/bin/env bash
# Runs every fuzz target under fuzz/ for SECONDS each (default 600), two at a time, with
# corpora seeded from tests/fixtures. cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP=1 lets
# the stable toolchain accept them.
#
#   cargo install cargo-fuzz --locked
#   scripts/fuzz.sh             # 10 minutes a target
#   SECONDS_EACH=60 scripts/fuzz.sh invocation taskrouter
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
seconds="${SECONDS_EACH:-600}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(invocation identity taskrouter rules signatures engage)

# Seeds: the fixtures' JSON for the JSON targets, a few lines for the text ones.
for target in "${targets[@]}"; do mkdir -p "fuzz/corpus/$target"; done
seed() { local target=$1; shift; for f in "$@"; do cp "$f" "fuzz/corpus/$target/seed-$(basename "$f")"; done; }
[ -d fuzz/corpus/invocation ] && seed invocation tests/fixtures/aws/*.json
[ -d fuzz/corpus/taskrouter ] && seed taskrouter tests/fixtures/taskrouter/*.json tests/fixtures/eventstreams/*.json
[ -d fuzz/corpus/identity ] && printf 'From=whatsapp:+15555550100&phone=+44 (0) 7700 900123' > fuzz/corpus/identity/seed-form
[ -d fuzz/corpus/rules ] && printf 'traits.docs_last_2_days > 0 && channel == "sms"\n{"docs_last_2_days": 3}' > fuzz/corpus/rules/seed-rule
[ -d fuzz/corpus/engage ] && printf '{"type":"identify","userId":"u-1","traits":{"vip":true},"timestamp":"2026-12-01T10:00:00Z","context":{"personas":{"computation_class":"trait"}}}' > fuzz/corpus/engage/seed-identify
[ -d fuzz/corpus/signatures ] && printf 'POST\0foo=1\0application/x-www-form-urlencoded\0RSOYDt4T1cUTdK1PDd93/VVr8B8=\0\0CallSid=CA1234567890ABCDE&Caller=%%2B14158675309' > fuzz/corpus/signatures/seed-form

(cd fuzz && cargo fuzz build)
run() {
  local target=$1
  (cd fuzz && cargo fuzz run "$target" -- -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
    > "target/fuzz-$target.log" 2>&1) && status=ok || status=FAILED
  local summary
  summary=$(grep -E '^(#[0-9]+|Done|stat::number_of_executed_units)' "fuzz/target/fuzz-$target.log" | tail -2 | tr '\n' ' ')
  echo "$target: $status  $summary"
}
mkdir -p fuzz/target
pids=()
for target in "${targets[@]}"; do
  run "$target" &
  pids+=($!)
  if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
wait
