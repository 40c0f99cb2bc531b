#!/usr/bin/env bash
# Installs what building and testing nudge needs, and only what is missing, so a second run
# takes about a second. Progress goes to stderr; every step says what it is doing and why.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  if [ $apt_updated -eq 0 ]; then
    $sudo apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# 1. A wasm32 standard library: rustup's first (with a time limit, since it may hang where it
#    cannot download), Debian's Rust with -Zbuild-std as the fallback.
if rustup_has_wasm_std; then
  :
else
  if [ "${NUDGE_WASM_ROUTE:-}" != debian ]; then
    say "adding the wasm32-unknown-unknown target with rustup (time limit 120 s)"
    timeout 120 rustup target add wasm32-unknown-unknown >&2 || true
  fi
  if ! rustup_has_wasm_std; then
    say "rustup could not add the target: falling back to Debian's Rust and -Zbuild-std"
    apt_install rustc-web cargo-web rust-web-src
    llvm_major=$(/usr/bin/rustc -vV | awk '/^LLVM version/ { split($3, v, "."); print v[1] }')
    apt_install "lld-$llvm_major"
  fi
fi

# 2. A browser and its driver for the ServiceWorker and end-to-end tests, and PostgreSQL's
#    server binaries for the tests of the PostgreSQL store (each test starts its own cluster).
apt_install chromium chromium-driver postgresql-15

# 3. The wasm-bindgen CLI, at exactly the version Cargo.lock holds. (Not --locked: a crate its
#    lock file names was yanked from the registry, and that install then fails.)
[ -f Cargo.lock ] || cargo generate-lockfile
want=$(locked_wasm_bindgen_version)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  say "installing wasm-bindgen-cli $want (about 3 minutes, once)"
  cargo install wasm-bindgen-cli --version "$want"
fi

# 4. wasm-pack, which runs the ServiceWorker's tests in headless Chromium.
if ! command -v wasm-pack >/dev/null; then
  say "installing wasm-pack (about 5 minutes, once)"
  cargo install wasm-pack --locked
fi

# 4b. wasm-opt, pinned (scripts/lib.sh), without which the SW's wasm ships a quarter larger and
#     scripts/build-sw.sh refuses to build it. Node.js and npm come from Debian where missing.
command -v npm >/dev/null || apt_install nodejs npm
install_wasm_opt || die "could not install wasm-opt (binaryen $BINARYEN_VERSION): see above"

# 5. An nginx binary, only to check deploy/nginx.conf with `nginx -t`: extracted from Debian's
#    package into target/tools/ rather than installed, so that no nginx service is set up.
nginx_root=target/tools/nginx
if ! [ -x "$nginx_root/usr/sbin/nginx" ]; then
  say "fetching nginx (extracted into $nginx_root, not installed) to check deploy/nginx.conf"
  work=$(mktemp -d)
  if ! (cd "$work" && apt-get download nginx >/dev/null 2>&1); then
    $([ "$(id -u)" -eq 0 ] || echo sudo) apt-get update -qq
    (cd "$work" && apt-get download nginx >/dev/null 2>&1) || say "could not fetch nginx: its check will be skipped"
  fi
  for deb in "$work"/nginx_*.deb; do
    [ -e "$deb" ] && mkdir -p "$nginx_root" && dpkg-deb -x "$deb" "$nginx_root"
  done
  rm -rf "$work"
fi
