#!/usr/bin/env bash
# Checks the deployment files as far as this machine can: the systemd unit with
# `systemd-analyze verify` (against the built binary), the nginx configuration with `nginx -t`
# when nginx is installed, and the Dockerfile's shape (no Docker engine runs here).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/debug/nudge}
fail() { echo "deploy check: $*" >&2; exit 1; }

# systemd: verify the unit in a scratch root where ExecStart's binary exists.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
cp "$binary" "$root/usr/local/bin/nudge"
cp -r /usr/lib/systemd/system "$root/usr/lib/systemd/"   # the targets the unit depends on
cp deploy/nudge.service "$root/etc/systemd/system/"
out=$(systemd-analyze verify --root="$root" "$root/etc/systemd/system/nudge.service" 2>&1) \
  || fail "systemd-analyze: $out"
# verify prints warnings without failing; any line about our unit is a defect.
if grep -q "nudge.service" <<<"$out"; then fail "systemd-analyze: $out"; fi
echo "ok: deploy/nudge.service passes systemd-analyze verify"

# The unit's flags must be flags the binary knows.
flags=$(grep '^ExecStart=' deploy/nudge.service | grep -o -- '--[a-z-]*' | sort -u)
help=$("$binary" --help)
for flag in $flags; do
  grep -q -- "$flag" <<<"$help" || fail "nudge.service uses $flag, which nudge --help does not list"
done
echo "ok: every flag in nudge.service is one nudge accepts"

# nginx: a full syntax check (setup.sh extracts a binary into target/tools/; a system nginx
# works too), with a throwaway certificate in place of the real ones.
nginx=target/tools/nginx/usr/sbin/nginx
[ -x "$nginx" ] || nginx=$(command -v nginx || true)
if [ -n "$nginx" ]; then
  conf=$root/nginx.conf
  mkdir -p "$root/logs"
  # nginx -t also creates its temp directories: keep them in the scratch root.
  temps=""
  for t in client_body proxy fastcgi uwsgi scgi; do temps+="${t}_temp_path $root/$t; "; done
  temps+="access_log $root/access.log; "
  printf 'events {}\nhttp {\n%s\n%s\n}\n' "$temps" \
    "$(sed 's#/etc/ssl/[^;]*#'"$root"'/snake.pem#' deploy/nginx.conf)" >"$conf"
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
    -keyout "$root/snake.pem" -out "$root/snake.crt" >/dev/null 2>&1
  cat "$root/snake.crt" >>"$root/snake.pem"
  out=$("$nginx" -t -e stderr -p "$root" -c "$conf" 2>&1) || fail "nginx -t: $out"
  echo "ok: deploy/nginx.conf passes nginx -t ($("$nginx" -v 2>&1 | sed 's/.*: //'))"
else
  echo "deploy check: no nginx binary, so deploy/nginx.conf was not checked" >&2
  exit 1
fi

# nginx must not hand /metrics or /debug/ to the public: each has a location of its own that
# denies all (nginx -t above checked the syntax, this checks the intent).
for loc in 'location = /metrics' 'location ^~ /debug/'; do
  block=$(awk -v loc="$loc" 'index($0, loc) { on = 1 } on { print } on && /^ *}/ { exit }' deploy/nginx.conf)
  [ -n "$block" ] || fail "nginx.conf has no \`$loc\` block: /${loc##*/} would be public"
  grep -q '^ *deny all;' <<<"$block" || fail "nginx.conf: \`$loc\` does not deny all"
done
echo "ok: deploy/nginx.conf keeps /metrics and /debug/ from the public"

# Dockerfile: multi-stage, non-root at run time, and every COPY source exists.
[ "$(grep -c '^FROM ' deploy/Dockerfile)" -ge 2 ] || fail "Dockerfile is not multi-stage"
last_user=$(grep '^USER ' deploy/Dockerfile | tail -n1 | awk '{print $2}')
[ -n "$last_user" ] && [ "$last_user" != root ] && [ "$last_user" != 0 ] || fail "Dockerfile runs as root"
grep '^COPY ' deploy/Dockerfile | grep -v -- '--from=' | while read -r _ src _; do
  for path in $src; do [ -e "$path" ] || fail "Dockerfile copies $path, which does not exist"; done
done
# Cargo reads every workspace member's manifest: each member's top directory must be copied.
members=$(grep '^members = ' Cargo.toml | grep -o '"[^"]*"' | tr -d '"' | cut -d/ -f1 | sort -u)
for top in $members; do
  grep -q "^COPY $top " deploy/Dockerfile || fail "Dockerfile does not copy the workspace member $top/"
done
echo "ok: deploy/Dockerfile is multi-stage, runs as $last_user, and copies what exists and every workspace member"
