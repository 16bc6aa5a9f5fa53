#!/usr/bin/env bash
# tests/twilio/run.sh BIN: checks the Twilio emulator of BIN (the switchboard binary) against
# things switchboard did not write (ctest: twilio_conformance):
#   conformance.mjs      every route against Twilio's OpenAPI specs (npm @twilio-alpha/mcp)
#   official_client.mjs  Twilio's official Node library (npm twilio) against the emulator,
#                        webhook signatures checked with its validateRequest
# Needs Node 20 and npm (preinstalled on the CI machines; not installed by scripts/setup).
# The first run installs the pinned packages with `npm ci --prefix tests/twilio` (from
# package-lock.json, into tests/twilio/node_modules, gitignored); later runs reuse them and
# install again only when package-lock.json changes. Exits non-zero if either script fails.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ $# -ne 1 ]]; then
  echo "usage: $0 path/to/switchboard" >&2
  exit 2
fi
bin=$(realpath -e "$1") || { echo "run.sh: no such binary: $1" >&2; exit 2; }

for tool in node npm; do
  command -v "$tool" >/dev/null || {
    echo "run.sh: $tool not found: these tests need Node 20 and npm" >&2
    exit 1
  }
done

# Install when node_modules is missing or older than the lock file; one install at a time
# (two build trees may run ctest at once).
installed=$here/node_modules/.package-lock.json
if [[ ! -f $installed || $here/package-lock.json -nt $installed ]]; then
  exec 9>"${TMPDIR:-/tmp}/switchboard-tests-twilio-npm.lock"
  flock 9
  if [[ ! -f $installed || $here/package-lock.json -nt $installed ]]; then
    if ! log=$(npm ci --prefix "$here" --no-audit --no-fund --loglevel=error 2>&1); then
      echo "$log" >&2
      echo "run.sh: npm ci --prefix $here failed (the npm registry must be reachable once)" >&2
      exit 1
    fi
    touch "$installed"
  fi
  flock -u 9
fi

status=0
node "$here/conformance.mjs" "$bin" || status=1
node "$here/official_client.mjs" "$bin" || status=1
exit $status
