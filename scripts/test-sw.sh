#!/usr/bin/env bash
# Runs the ServiceWorker's tests: its native unit tests (the pure logic in sw/src, on the host),
# then the in-browser ones inside a real ServiceWorker in headless Chromium (wasm-pack), against
# a fixture HTTP server of our own that is started here and stopped on any exit. Every part and
# every test file runs even when an earlier one fails; the script fails at the end if any did.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

command -v wasm-pack >/dev/null || die "wasm-pack is missing: run 'make setup'"
[ -x /usr/bin/chromedriver ] || die "/usr/bin/chromedriver is missing: run 'make setup'"

# Host builds first, before wasm_env can point cargo at another compiler.
failed=()
say "native unit tests of nudge-sw"
cargo test -p nudge-sw --lib || failed+=("native unit tests")

# The fixture is a host binary too.
say "building the fixture server"
cargo build --quiet -p nudge-sw-fixture
fixture_bin="$PWD/target/debug/nudge-sw-fixture"

wasm_env

work=$(mktemp -d)
fixture_pid=""
cleanup() {
  [ -n "$fixture_pid" ] && kill "$fixture_pid" 2>/dev/null && wait "$fixture_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkfifo "$work/urls"
"$fixture_bin" >"$work/urls" 2>"$work/fixture.log" &
fixture_pid=$!
# Its first two lines are its own URL and a closed port's; reading them is the wait for it.
exec 3<"$work/urls"
read -r -t 30 NUDGE_FIXTURE_URL <&3 || die "the fixture did not start: $(cat "$work/fixture.log")"
read -r -t 5 NUDGE_FIXTURE_CLOSED_URL <&3 || die "the fixture printed no closed port"
export NUDGE_FIXTURE_URL NUDGE_FIXTURE_CLOSED_URL
say "fixture at $NUDGE_FIXTURE_URL"

# webdriver.json (Chromium's flags for running headless as root) is read from the crate dir.
cd sw
# One wasm-pack run per test file: cargo would stop at the first failing file (and wasm-pack
# hands `--no-fail-fast` to its build step too, which refuses it). wasm-pack's check for a newer
# version of itself cannot reach the network here; its warning is dropped so that the output
# ends with the test runner's summary (pipefail keeps the status).
for file in tests/*.rs; do
  name=$(basename "$file" .rs)
  say "in-browser tests: $name"
  # shellcheck disable=SC2086 # WASM_BUILD_STD is empty or one flag
  wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver --mode no-install \
    -- --test "$name" $WASM_BUILD_STD 2>&1 \
    | grep --line-buffered -v 'failed to get wasm-pack version' || failed+=("$name")
done

if [ ${#failed[@]} -gt 0 ]; then
  die "ServiceWorker tests failed: ${failed[*]}"
fi
