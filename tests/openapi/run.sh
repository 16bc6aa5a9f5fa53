#!/usr/bin/env bash
# tests/openapi/run.sh FILE: validates FILE (api/openapi.json) against the OpenAPI 3.1 schema
# with npm @apidevtools/swagger-parser (ctest: openapi_valid). tests/adapters/
# http_openapi_test.cpp checks the same file against the daemon's routes. Installs the pinned
# package on first use (`npm ci`, into tests/openapi/node_modules, gitignored).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -eq 1 ]] || { echo "usage: $0 api/openapi.json" >&2; exit 2; }
command -v npm >/dev/null || { echo "run.sh: npm not found (Node 20 and npm are needed)" >&2; exit 1; }
installed=$here/node_modules/.package-lock.json
if [[ ! -f $installed || $here/package-lock.json -nt $installed ]]; then
  exec 9>"${TMPDIR:-/tmp}/switchboard-tests-openapi-npm.lock"
  flock 9
  if [[ ! -f $installed || $here/package-lock.json -nt $installed ]]; then
    if ! log=$(npm ci --prefix "$here" --no-audit --no-fund --loglevel=error 2>&1); then
      echo "$log" >&2
      echo "run.sh: npm ci --prefix $here failed (the npm registry must be reachable once)" >&2
      exit 1
    fi
    touch "$installed"
  fi
fi
exec node "$here/validate.mjs" "$1"
