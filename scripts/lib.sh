# Shared helpers for the project's scripts. Source it; it defines functions and changes nothing.

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# True when the rustc found on PATH (rustup's) has a wasm32 standard library installed.
# NUDGE_WASM_ROUTE=debian pretends it has not, to exercise the fallback on a machine that has it.
rustup_has_wasm_std() {
  [ "${NUDGE_WASM_ROUTE:-}" = debian ] && return 1
  local dir
  dir=$(rustc --print target-libdir --target wasm32-unknown-unknown 2>/dev/null) || return 1
  compgen -G "$dir/libstd-*.rlib" >/dev/null
}

# Exports what a wasm32 build needs, for whichever route setup.sh made available:
#   WASM_CARGO        the cargo to call
#   WASM_BUILD_STD    extra flags (-Zbuild-std on Debian's route, empty on rustup's)
#   CARGO_TARGET_DIR  a directory of its own on Debian's route, so two compilers never share one
wasm_env() {
  if rustup_has_wasm_std; then
    WASM_CARGO=cargo
    WASM_BUILD_STD=""
    export WASM_TARGET_DIR="$PWD/target"
  elif [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
    WASM_CARGO=/usr/bin/cargo
    WASM_BUILD_STD="-Zbuild-std=std,panic_abort"
    export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
    export WASM_TARGET_DIR="$PWD/target/wasm-debian"
    # Debian's rustc links wasm with `rust-lld`, which not every release of its packages ships;
    # LLVM's own wasm-ld of the same major version (package lld-N) is the same linker.
    if ! command -v rust-lld >/dev/null; then
      local major
      major=$(/usr/bin/rustc -vV | awk '/^LLVM version/ { split($3, v, "."); print v[1] }')
      export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="/usr/lib/llvm-$major/bin/wasm-ld"
    fi
    export CARGO_TARGET_DIR="$WASM_TARGET_DIR"
  else
    die "no wasm32 standard library: run 'make setup' first"
  fi
  export WASM_CARGO WASM_BUILD_STD
}

# The exact wasm-bindgen version that Cargo.lock holds (the CLI must match it).
locked_wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock
}

# wasm-opt for the ServiceWorker: binaryen from the npm registry, pinned, installed into
# target/tools/ (not on PATH, never global). The package is binaryen compiled to wasm with a
# Node launcher, so one download runs on any machine with Node.js (20 works); Debian's
# binaryen 108 predates wasm-bindgen's externref handling, and a native build from crates takes
# minutes. Bump the version here only after `make test-sw` and the e2e tests pass with it.
BINARYEN_VERSION=132.0.0
# NUDGE_BINARYEN_DIR moves it (the tests of the build use an empty one).
BINARYEN_DIR=${NUDGE_BINARYEN_DIR:-target/tools/binaryen}
WASM_OPT="$BINARYEN_DIR/node_modules/binaryen/bin/wasm-opt"

# The version the installed wasm-opt reports ("132"), or nothing when it is missing or broken.
wasm_opt_version() {
  [ -x "$WASM_OPT" ] || return 0
  "$WASM_OPT" --version 2>/dev/null | awk '{print $3}' || true
}

# Installs the pinned binaryen into $BINARYEN_DIR unless exactly that version is there.
# Returns non-zero (after saying why) when it cannot.
install_wasm_opt() {
  local want=${BINARYEN_VERSION%%.*}
  [ "$(wasm_opt_version)" = "$want" ] && return 0
  command -v npm >/dev/null || { say "npm is missing: cannot install wasm-opt (binaryen $BINARYEN_VERSION)"; return 1; }
  say "installing wasm-opt (binaryen $BINARYEN_VERSION from npm into $BINARYEN_DIR, once)"
  mkdir -p "$BINARYEN_DIR"
  npm install --no-audit --no-fund --save-exact --silent --prefix "$BINARYEN_DIR" \
    "binaryen@$BINARYEN_VERSION" >&2 || { say "npm install of binaryen $BINARYEN_VERSION failed"; return 1; }
  [ "$(wasm_opt_version)" = "$want" ] || { say "$WASM_OPT does not run (needs Node.js)"; return 1; }
}
