#!/usr/bin/env bash
# End-to-end test of the trace viewer in headless Chromium.
#
#   scenarios/tests/browser/run.sh            # from anywhere; needs cargo, node/npm, chromium
#   OUT=/tmp/view-out UPDATE_SCREENSHOT=1 scenarios/tests/browser/run.sh
#
# Builds `sim`, records the failing ping-pong scenario and a large
# (100,000+ events) run, turns both into pages and checks them in Chromium: lanes, arrows,
# the violation banner and its jump button, clicking and hovering messages, zoom, pan, the
# filters, no network access, and frame times on the large page. Writes $OUT/viewer.png;
# with UPDATE_SCREENSHOT=1 copies the Raft one (else that one) to docs/viewer.png.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/detsim-browser.XXXXXX")"
OUT="${OUT:-$TMP/out}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$OUT"
trap 'rm -f "$TMP"/*.jsonl "$TMP"/*.html' EXIT

fail() { echo "browser test: setup failed: $*" >&2; exit 1; }

[ -x "$CHROMIUM" ] || fail "$CHROMIUM not found (apt-get install -y chromium)"
command -v node >/dev/null || fail "node not found"

cd "$ROOT"
cargo build --release --bin sim -p scenarios >&2 || fail "cargo build"
SIM="$TARGET/release/sim"
VIEW="$SIM view"

# the deliberately failing scenario: exit 1 expected
set +e
"$SIM" run --seed 1 scenarios/pingpong/buggy.json --trace "$TMP/t.jsonl" >"$TMP/run.txt"
code=$?
set -e
[ "$code" -eq 1 ] || fail "sim run buggy.json exited $code, expected 1"
$VIEW "$TMP/t.jsonl" -o "$TMP/violation.html" >&2 || fail "view violation page"

# a large run for responsiveness
cat >"$TMP/big.json" <<'JSON'
{
  "name": "pingpong/viewer-load",
  "description": "Viewer load test: 20 nodes, over 100,000 events.",
  "system": "pingpong",
  "servers": 20,
  "duration_ms": 36000,
  "network": {"latency_ms": [1, 30], "drop_request": 0.05, "drop_reply": 0.05, "duplicate": 0.02,
    "long_delay": {"probability": 0.02, "min_ms": 200, "max_ms": 1000, "replies_only": true}},
  "faults": {"schedule": [
    {"at_ms": 5000, "fault": {"crash": 3}}, {"at_ms": 8000, "fault": {"restart": 3}},
    {"at_ms": 10000, "fault": {"partition": [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]]}},
    {"at_ms": 12000, "fault": "heal"}]},
  "pingpong": {"interval_ms": 20, "bug": false}
}
JSON
"$SIM" run --seed 3 "$TMP/big.json" --trace "$TMP/big.jsonl" >/dev/null || fail "sim run big.json"
$VIEW "$TMP/big.jsonl" -o "$TMP/big.html" >&2 || fail "view big page"

# a Raft bug (leader completeness), if that scenario is present: roles, terms, commits
RAFT_PAGE=""
if [ -f scenarios/buggy/raft-no-election-restriction.json ]; then
  set +e
  "$SIM" run --seed 2 scenarios/buggy/raft-no-election-restriction.json --trace "$TMP/raft.jsonl" >/dev/null
  code=$?
  set -e
  [ "$code" -eq 1 ] || fail "sim run raft-no-election-restriction.json exited $code, expected 1"
  $VIEW "$TMP/raft.jsonl" -o "$TMP/raft.html" >&2 || fail "view raft page"
  RAFT_PAGE="$TMP/raft.html"
fi

cd "$HERE"
if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund >&2 || fail "npm ci"
fi
PAGE="$TMP/violation.html" BIG_PAGE="$TMP/big.html" RAFT_PAGE="$RAFT_PAGE" OUT="$OUT" \
  CHROMIUM="$CHROMIUM" node view.test.mjs
echo "screenshots: $OUT/viewer.png (ping-pong), $OUT/viewer-big.png, $OUT/viewer-raft.png"
if [ "${UPDATE_SCREENSHOT:-0}" = 1 ]; then
  best="$OUT/viewer-raft.png"
  [ -f "$best" ] || best="$OUT/viewer.png"
  cp "$best" "$ROOT/docs/viewer.png"
  echo "copied $best to docs/viewer.png"
fi
