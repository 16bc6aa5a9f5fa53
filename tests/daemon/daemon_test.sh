#!/usr/bin/env bash
# daemon_cli: the `switchboard` binary as a user runs it.
#
#   version and --version / --help / an unknown subcommand (named, with the list) /
#   check-config, bad configs (exit 2, errors that name the file and the key), missing secrets
#   (exit 2, naming the variable), `run` on a free port: the "listening" line, GET /health and
#   /ready, `health`, a second daemon on the same port or the same data directory (exit 1,
#   naming the PID holding it), SIGTERM, SIGINT and SIGHUP (graceful, exit 0; an ignored SIGHUP
#   stays ignored), bad --listen values (exit 2).
#
# Usage: daemon_test.sh BIN SOURCE_DIR
# Every wait is bounded; only processes started here are signalled, by PID.
set -uo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BIN SOURCE_DIR" >&2
  exit 2
fi
bin=$1
source_dir=$(cd "$2" && pwd)
good_config=$source_dir/config/switchboard.json
version=$(sed -n 's/^project(switchboard VERSION \([0-9.]*\).*/\1/p' "$source_dir/CMakeLists.txt")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-daemon.XXXXXX")
daemon_pid=""  # the background daemon this script started and has not reaped yet
cleanup() {
  [[ -n $daemon_pid ]] && kill -KILL "$daemon_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
pass() { echo "ok: $*"; }
show() {  # show a captured stream, indented, when a check fails
  sed 's/^/    | /' "$1" >&2
}

# run_bounded SECONDS CMD...: runs CMD with stdout in $tmp/out, stderr in $tmp/err; sets $rc.
run_bounded() {
  local secs=$1
  shift
  rc=0
  timeout --kill-after=5 "$secs" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
}

# expect_exit CODE DESCRIPTION CMD...: the command exits with CODE within 20 s.
expect_exit() {
  local want=$1 what=$2
  shift 2
  run_bounded 20 "$@"
  if [[ $rc -eq $want ]]; then
    pass "$what (exit $rc)"
    return 0
  fi
  local note=""
  [[ $rc -eq 124 || $rc -eq 137 ]] && note=" (still running after 20 s)"
  fail "$what: exit $rc, expected $want$note"
  show "$tmp/out"
  show "$tmp/err"
  return 1
}

# stderr_names TEXT DESCRIPTION: the last command's stderr contains TEXT.
stderr_names() {
  if grep -Fq -- "$1" "$tmp/err"; then
    pass "$2 names '$1'"
  else
    fail "$2: stderr does not name '$1'"
    show "$tmp/err"
  fi
}

# --- (a) version -----------------------------------------------------------------------------
if expect_exit 0 "version" "$bin" version; then
  line=$(head -n 1 "$tmp/out")
  if [[ $line =~ ^switchboard\ ${version//./\\.}\ \(CAF\ 0\.17\.[0-9]+,\ Boost\ 1\.81(\.[0-9]+)?\)$ ]]; then
    pass "version prints '$line'"
  else
    fail "version printed '$line', expected 'switchboard $version (CAF 0.17.x, Boost 1.81)'"
  fi
fi

if expect_exit 0 "--version" "$bin" --version; then
  line=$(head -n 1 "$tmp/out")
  [[ $line == "switchboard $version "* ]] ||
    fail "--version printed '$line', expected the version line 'switchboard $version (...)'"
fi

# --- (b) help ----------------------------------------------------------------------------------
for args in "--help" "run --help" "check-config --help"; do
  # shellcheck disable=SC2086 # split on purpose
  if expect_exit 0 "$args" "$bin" $args; then
    [[ -s $tmp/out ]] || fail "'$args' printed nothing on stdout"
  fi
done
if expect_exit 2 "an unknown subcommand" "$bin" no-such-command; then
  stderr_names "unknown subcommand 'no-such-command'" "the unknown-subcommand error"
  for sub in run check-config version twilio-emulator health; do
    grep -Eq "subcommands are:.*\b$sub\b" "$tmp/err" ||
      { fail "the unknown-subcommand error does not list '$sub'"; show "$tmp/err"; }
  done
fi

# --- (c) the shipped config is valid ------------------------------------------------------------
if expect_exit 0 "check-config config/switchboard.json" "$bin" check-config "$good_config"; then
  grep -Fxq "$good_config: ok" "$tmp/out" ||
    { fail "check-config did not print '$good_config: ok'"; show "$tmp/out"; }
fi

# --- (d) bad configs: exit 2, the error names the file and the key -----------------------------
bad_port=$tmp/bad-port.json
printf '{"http": {"port": 70000}}\n' >"$bad_port"
unknown_key=$tmp/unknown-key.json
printf '{"htp": {}}\n' >"$unknown_key"
not_json=$tmp/not-json.json
printf '{"http": \n' >"$not_json"
missing=$tmp/does-not-exist.json

if expect_exit 2 "check-config with http.port 70000" "$bin" check-config "$bad_port"; then
  stderr_names "$bad_port" "the http.port error"
  stderr_names "http.port" "the http.port error"
fi
if expect_exit 2 "check-config with an unknown key" "$bin" check-config "$unknown_key"; then
  stderr_names "$unknown_key" "the unknown-key error"
  stderr_names "htp" "the unknown-key error"
fi
if expect_exit 2 "check-config with broken JSON" "$bin" check-config "$not_json"; then
  stderr_names "$not_json" "the JSON syntax error"
fi
# A lookup whose SQL names a table the database does not have: found by check-config and run.
bad_sql=$tmp/bad-sql.json
sqlite3 "$tmp/crm.db" 'CREATE TABLE managers (id TEXT PRIMARY KEY, name TEXT)'
printf '{"enrichment": {"database": "%s", "lookups": [{"name": "manager", "entity_kind": "application",
  "sql": "SELECT name FROM account_managers WHERE id = ?", "params": ["managerId"], "into": "manager"}]}}\n' \
  "$tmp/crm.db" >"$bad_sql"
if expect_exit 2 "check-config with a lookup on a missing table" "$bin" check-config "$bad_sql"; then
  stderr_names "enrichment.lookups[0].sql" "the lookup SQL error"
  stderr_names "account_managers" "the lookup SQL error"
fi
if expect_exit 2 "run with a lookup on a missing table" \
    "$bin" run --config "$bad_sql" --data-dir "$tmp/data-bad-sql" --listen 127.0.0.1:0; then
  stderr_names "enrichment.lookups[0].sql" "run's lookup SQL error"
fi
# A part that calls Twilio needs its credentials from the environment: check-config says which
# variable is missing (exit 2), and run refuses the same way, before it starts.
leads_config=$tmp/leads.json
printf '{"leads": {"proxy_numbers": ["+15550100001"], "dealers": [{"id": "D1", "name": "Acme",
  "locations": [{"id": "north", "name": "North", "phone": "+15550001001"}]}]}}\n' >"$leads_config"
no_twilio=(env -u TWILIO_ACCOUNT_SID -u TWILIO_AUTH_TOKEN)
if expect_exit 2 "check-config of leads without TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN" \
    "${no_twilio[@]}" "$bin" check-config "$leads_config"; then
  stderr_names "TWILIO_ACCOUNT_SID" "the missing-secret error"
  stderr_names "TWILIO_AUTH_TOKEN" "the missing-secret error"
  stderr_names "leads.proxy_numbers" "the missing-secret error"
fi
if expect_exit 2 "check-config of leads with only TWILIO_ACCOUNT_SID" \
    "${no_twilio[@]}" TWILIO_ACCOUNT_SID=AC00000000000000000000000000000001 \
    "$bin" check-config "$leads_config"; then
  stderr_names "TWILIO_AUTH_TOKEN" "the missing-token error"
  grep -q "needs TWILIO_ACCOUNT_SID" "$tmp/err" &&
    fail "the missing-token error also names TWILIO_ACCOUNT_SID, which is set"
fi
expect_exit 0 "check-config of leads with both Twilio variables" \
  "${no_twilio[@]}" TWILIO_ACCOUNT_SID=AC00000000000000000000000000000001 \
  TWILIO_AUTH_TOKEN=token "$bin" check-config "$leads_config"
if expect_exit 2 "run of leads without the Twilio variables" "${no_twilio[@]}" "$bin" run \
    --config "$leads_config" --data-dir "$tmp/data-no-twilio" --listen 127.0.0.1:0; then
  stderr_names "TWILIO_ACCOUNT_SID" "run's missing-secret error"
  grep -q 'listening' "$tmp/out" && fail "run without the Twilio variables said it was listening"
fi

if expect_exit 2 "check-config with a missing file" "$bin" check-config "$missing"; then
  stderr_names "$missing" "the missing-file error"
fi
if expect_exit 2 "run --config with http.port 70000" \
    "$bin" run --config "$bad_port" --data-dir "$tmp/data-bad" --listen 127.0.0.1:0; then
  stderr_names "http.port" "run's config error"
  grep -q 'listening' "$tmp/out" && fail "run with a bad config said it was listening"
fi
expect_exit 2 "run without --config" "$bin" run --data-dir "$tmp/data-bad" --listen 127.0.0.1:0

# --- (e) run, probe, stop -----------------------------------------------------------------------
daemon_port=""

# start_daemon NAME [ENV-ARGS...]: starts `run` in the background; sets daemon_pid and, once the
# daemon says it is listening (within 20 s), daemon_port. Returns 1 if it never did. ENV-ARGS go
# to env(1) after the defaults, e.g. --ignore-signal=HUP.
start_daemon() {
  local name=$1 line=""
  shift
  daemon_port=""
  # A non-interactive shell starts background jobs with SIGINT ignored; give the daemon the
  # default disposition, as a terminal user's Ctrl-C would find it.
  env --default-signal=INT,TERM,HUP "$@" "$bin" run --config "$good_config" --data-dir "$tmp/data" \
    --listen 127.0.0.1:0 >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null &
  daemon_pid=$!
  local deadline=$((SECONDS + 20))
  while ((SECONDS < deadline)); do
    line=$(grep -m 1 '^switchboard listening on ' "$tmp/$name.out" || true)
    [[ -n $line ]] && break
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
      wait "$daemon_pid"
      fail "$name: the daemon exited with $? before it was listening"
      daemon_pid=""
      show "$tmp/$name.err"
      return 1
    fi
    sleep 0.1
  done
  if [[ $line =~ ^switchboard\ listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]] && ((BASH_REMATCH[1] > 0)); then
    daemon_port=${BASH_REMATCH[1]}
    pass "$name: '$line'"
    return 0
  fi
  fail "$name: no 'switchboard listening on 127.0.0.1:PORT' line (PORT > 0) within 20 s; got '$line'"
  show "$tmp/$name.out"
  show "$tmp/$name.err"
  return 1
}

# stop_daemon SIGNAL NAME: sends SIGNAL to the daemon; it must exit 0 within 15 s.
stop_daemon() {
  local sig=$1 name=$2 status
  kill "-$sig" "$daemon_pid"
  local deadline=$((SECONDS + 15))
  while kill -0 "$daemon_pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if kill -0 "$daemon_pid" 2>/dev/null; then
    fail "$name: still running 15 s after SIG$sig"
    kill -KILL "$daemon_pid" 2>/dev/null
    wait "$daemon_pid" 2>/dev/null
    daemon_pid=""
    show "$tmp/$name.err"
    return
  fi
  wait "$daemon_pid"
  status=$?
  daemon_pid=""
  if [[ $status -eq 0 ]]; then
    pass "$name: SIG$sig -> exit 0"
  else
    fail "$name: SIG$sig -> exit $status, expected 0"
    show "$tmp/$name.err"
  fi
  local lines
  lines=$(grep -c 'listening' "$tmp/$name.out")
  [[ $lines -eq 1 ]] || fail "$name: stdout has $lines 'listening' lines, expected exactly 1"
}

# get PATH: GET on the running daemon; sets http_code and body.
get() {
  http_code=$(curl -sS --max-time 5 -o "$tmp/body" -w '%{http_code}' \
    "http://127.0.0.1:$daemon_port$1" 2>"$tmp/curl.err") || http_code="curl failed: $(cat "$tmp/curl.err")"
  body=$(cat "$tmp/body" 2>/dev/null || true)
}

if start_daemon term; then
  get /health
  if [[ $http_code == 200 && $body == '{"status":"ok"}' ]]; then
    pass "GET /health -> 200 $body"
  else
    fail "GET /health -> $http_code '$body', expected 200 '{\"status\":\"ok\"}'"
  fi
  get /ready
  if [[ $http_code == 200 && $body == '{"status":"ready"}' ]]; then
    pass "GET /ready -> 200 $body"
  else
    fail "GET /ready -> $http_code '$body', expected 200 '{\"status\":\"ready\"}'"
  fi

  # A second daemon on the same port cannot start: exit 1 (start failure), not a hang.
  if expect_exit 1 "run on a port already in use" "$bin" run --config "$good_config" \
      --data-dir "$tmp/data2" --listen "127.0.0.1:$daemon_port"; then
    stderr_names "$daemon_port" "the address-in-use error"
  fi

  # Nor on the same data directory (another port): two would write the same SQLite files.
  if expect_exit 1 "run on a data directory in use" "$bin" run --config "$good_config" \
      --data-dir "$tmp/data" --listen 127.0.0.1:0; then
    stderr_names "$tmp/data" "the data-directory-in-use error"
    stderr_names "PID $daemon_pid" "the data-directory-in-use error"
    grep -q 'listening' "$tmp/out" && fail "a second daemon on the same data directory listened"
  fi

  # `health` is what the Dockerfile's HEALTHCHECK runs.
  if expect_exit 0 "health on the running daemon" \
      "$bin" health --url "http://127.0.0.1:$daemon_port/health"; then
    grep -Fxq '{"status":"ok"}' "$tmp/out" || { fail "health did not print the answer"; show "$tmp/out"; }
  fi

  stop_daemon TERM term

  expect_exit 1 "health with no daemon on the port" \
    "$bin" health --url "http://127.0.0.1:$daemon_port/health"
fi

if start_daemon int; then
  get /health
  [[ $http_code == 200 ]] || fail "GET /health on the second start -> $http_code"
  stop_daemon INT int
fi

# SIGHUP (a closed terminal, kill -HUP) drains and exits 0 like SIGTERM, and says so.
if start_daemon hup; then
  stop_daemon HUP hup
  grep -q 'received SIGHUP, draining' "$tmp/hup.err" ||
    { fail "hup: the log does not say it drained on SIGHUP"; show "$tmp/hup.err"; }
fi

# Started with SIGHUP ignored (nohup), it keeps running through one.
if start_daemon nohup --ignore-signal=HUP; then
  kill -HUP "$daemon_pid"
  sleep 0.5
  if kill -0 "$daemon_pid" 2>/dev/null; then
    pass "nohup: an ignored SIGHUP left it running"
  else
    fail "nohup: the daemon stopped on a SIGHUP it was started ignoring"
  fi
  stop_daemon TERM nohup
fi

# --- (f) bad --listen values: exit 2 ------------------------------------------------------------
for listen in "nonsense" "127.0.0.1" "127.0.0.1:70000" "127.0.0.1:http" ":"; do
  if expect_exit 2 "run --listen '$listen'" "$bin" run --config "$good_config" \
      --data-dir "$tmp/data-bad" --listen "$listen"; then
    grep -q 'listening' "$tmp/out" && fail "run --listen '$listen' said it was listening"
  fi
done

if ((failures > 0)); then
  echo "daemon_cli: $failures check(s) failed" >&2
  exit 1
fi
echo "daemon_cli: all checks passed"
