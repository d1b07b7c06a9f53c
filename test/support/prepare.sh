#!/usr/bin/env bash
# Makes sure the servers and tools the test suite uses are installed: redis-server, the
# PostgreSQL 15 server binaries, runuser, promtool (Debian `prometheus`: the reference checker of
# the /metrics exposition), Debian `chromium` at /usr/bin/chromium (driven by the status page's
# browser spec through playwright-core) and `php` (Debian `php-cli`: the Drupal module in drupal/
# is syntax-checked with `php -l`, and its webhook signing is run against the gateway). Run by
# `npm test` before vitest. Idempotent: when everything is present it only checks and prints
# nothing. As root it installs what is missing with apt-get (quietly; apt's output is shown if it
# fails); otherwise it says what to install and exits 1.
set -euo pipefail

PG_MAJOR=15
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
if ! have redis-server && [ ! -x /usr/bin/redis-server ]; then
  missing+=(redis-server)
fi
for bin in postgres initdb pg_isready psql; do
  if [ ! -x "${PG_BIN}/${bin}" ]; then
    missing+=("postgresql-${PG_MAJOR}")
    break
  fi
done
if ! have runuser && [ ! -x /usr/sbin/runuser ] && [ ! -x /sbin/runuser ]; then
  missing+=(util-linux)
fi
if ! have promtool; then
  missing+=(prometheus)
fi
if [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium)
fi
if ! have php; then
  missing+=(php-cli)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "[prepare] missing: ${missing[*]}" >&2
  echo "[prepare] install them, e.g.: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

if ! have apt-get; then
  echo "[prepare] missing: ${missing[*]}, and there is no apt-get here to install them with" >&2
  exit 1
fi

echo "[prepare] installing ${missing[*]} with apt-get" >&2
log="$(mktemp)"
# The suite starts its own servers: keep the packages' own daemons from starting on install.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
fi
cleanup() {
  rm -f "$log"
  if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi
}
trap cleanup EXIT

if ! {
  apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
} >"$log" 2>&1; then
  cat "$log" >&2
  echo "[prepare] apt-get could not install: ${missing[*]}" >&2
  exit 1
fi

if ! have redis-server && [ ! -x /usr/bin/redis-server ]; then
  echo "[prepare] redis-server still missing after install" >&2
  exit 1
fi
if [ ! -x "${PG_BIN}/postgres" ] || [ ! -x "${PG_BIN}/initdb" ]; then
  echo "[prepare] PostgreSQL ${PG_MAJOR} binaries still missing in ${PG_BIN} after install" >&2
  exit 1
fi
if ! have promtool; then
  echo "[prepare] promtool still missing after install" >&2
  exit 1
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "[prepare] /usr/bin/chromium still missing after install" >&2
  exit 1
fi
if ! have php; then
  echo "[prepare] php still missing after install" >&2
  exit 1
fi
echo "[prepare] installed ${missing[*]}" >&2
