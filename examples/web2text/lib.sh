# shellcheck shell=bash
# examples/web2text/lib.sh: what examples/web2text/run.sh and tests/leads/crash_test.sh share;
# sourced by both, not run on its own.
#
# Offers: start_emulator (the Twilio emulator on loopback; sets $twilio); write_config (a free
# loopback port and this folder's switchboard.json.in filled in as $work/switchboard.json; sets
# $port, $api, $webhook_url); start_daemon, daemon_listening, wait_exit, stop_daemon (the daemon
# on that port and data directory; $daemon_pid, $daemon_log, $starts, $rc); exited, stop_pid;
# curl wrappers for the daemon's API (call, sb, get_lead, get_conversation) and the emulator
# (tw, emu_state, emu_conv); first_messages; say, ok, fail; wait_for, check, expect. Sourcing it
# sets the traps: on exit, cleanup stops what was started (the daemon, the emulator and any PID
# in $bg_pids), shows the end of the daemon log if the run failed, and removes $work unless
# KEEP=1.
#
# Set before sourcing: script_name (its name in failure messages), bin (the switchboard binary),
# work (the scratch directory). May be changed after: poll (seconds between wait_for tries, 0.2),
# exit_poll (between wait_exit looks, 0.1), log_lines (daemon log lines shown on failure, 40),
# log_fd (where they go: 1, or 2 for stderr).
# shellcheck disable=SC2016  # $names in single quotes are jq's, not the shell's
# shellcheck disable=SC2034  # code, body, port and the like are for the sourcing script
: "${script_name:?set by the script}" "${bin:?set by the script}" "${work:?set by the script}"
lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
poll=0.2 exit_poll=0.1 log_lines=40 log_fd=1
emulator_pid='' daemon_pid='' daemon_log=$work/daemon-0.log starts=0
bg_pids=()  # PIDs the script starts in the background (cleanup ends them)

# exited PID: true once the child PID has ended (gone, or a zombie waiting to be reaped).
exited() {
  local state
  { read -r _ _ state _ < "/proc/$1/stat"; } 2>/dev/null || return 0
  [[ $state == Z ]]
}
# stop_pid PID: SIGTERM, up to 15 s to go, then SIGKILL (only ever a PID this script started).
stop_pid() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 150; i++)); do exited "$pid" && break; sleep 0.1; done
  exited "$pid" || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$? pid
  for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [[ -n $daemon_pid ]] && stop_pid "$daemon_pid"
  [[ -n $emulator_pid ]] && stop_pid "$emulator_pid"
  if [[ $status -ne 0 ]]; then
    { echo "--- daemon log $(basename "$daemon_log") (last $log_lines lines)"
      tail -n "$log_lines" "$daemon_log" 2>/dev/null || true; } >&"$log_fd"
  fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "scratch kept in $work"; else rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }
fail() { echo "$script_name: FAILED: $*" >&2; exit 1; }
ok() { echo "  ok: $*"; }
# wait_for SECONDS DESCRIPTION CMD...: retries CMD every $poll s until it succeeds.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${limit} s waiting for $what"
    sleep "$poll"
  done
}
# check DESCRIPTION JSON JQ-FILTER [JQ-ARGS...]: the JSON passes the filter, or the run fails.
check() {
  local what=$1 json=$2 filter=$3; shift 3
  jq -e "$@" "$filter" <<<"$json" >/dev/null 2>&1 || fail "$what; got: $(head -c 3000 <<<"$json")"
  ok "$what"
}
# expect DESCRIPTION JQ-FILTER CMD...: waits (up to 20 s) until CMD's JSON output passes it.
expect() {
  local what=$1 filter=$2; shift 2
  local deadline=$((SECONDS + 20)) out
  while :; do
    out=$("$@" 2>&1) || true
    jq -e "$filter" <<<"$out" >/dev/null 2>&1 && break
    ((SECONDS < deadline)) || fail "timed out after 20 s waiting for $what; last: $(head -c 3000 <<<"$out")"
    sleep 0.2
  done
  ok "$what"
}

# --- the emulator --------------------------------------------------------------------------------
# start_emulator: the Twilio emulator on a free loopback port; $twilio is its base URL.
start_emulator() {
  "$bin" twilio-emulator --host 127.0.0.1 --port 0 > "$work/emulator.log" 2>&1 &
  emulator_pid=$!
  wait_for 10 "the emulator" grep -q 'listening on' "$work/emulator.log"
  twilio="http://$(sed -n 's/.*listening on //p' "$work/emulator.log" | head -n1)"
}
tw() { curl -sS --max-time 20 -u "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN" "$@"; }
emu_state() { tw "$twilio/_emulator/state"; }
# emu_conv SID: one conversation as the emulator holds it, with participants and messages.
emu_conv() { emu_state | jq -c --arg sid "$1" '.conversations.conversations[] | select(.sid == $sid)'; }
# first_messages LEAD: how many first messages of LEAD the emulator holds.
first_messages() {
  emu_state | jq --arg id "$1" '[.conversations.conversations[].messages[] | (.attributes | fromjson? // {})
    | select(.lead == $id and ((.step // "") | endswith("/lead.first-message")))] | length'
}

# --- configuration and the daemon ----------------------------------------------------------------
# write_config REMINDER_AFTER_MS: picks a free loopback port for the daemon and fills in
# switchboard.json.in (data in $work/data, Twilio at $twilio) as $work/switchboard.json.
write_config() {
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  api="http://127.0.0.1:$port"
  webhook_url="$api/v1/webhooks/twilio/conversations"
  # PROXY_COUNT=N: a pool of N numbers (+15550100001 on) instead of the template's four.
  local pool=''
  if [[ -n ${PROXY_COUNT-} ]]; then
    pool=$(printf '"+1555010%04d", ' $(seq 1 "$PROXY_COUNT"))
    pool="\"proxy_numbers\": [${pool%, }],"
  fi
  sed -e "s|@DATA_DIR@|$work/data|" -e "s|@PORT@|$port|" -e "s|@TWILIO_URL@|$twilio|" \
      -e "s|@WEBHOOK_URL@|$webhook_url|" -e "s|@REMINDER_AFTER_MS@|$1|" \
      ${pool:+-e "s|^ *\"proxy_numbers\": .*|    $pool|"} \
      "$lib_dir/switchboard.json.in" > "$work/switchboard.json"
}
# start_daemon [FAILPOINT]: the daemon on the fixed port and the same data directory, its log
# in $work/daemon-N.log (N = $starts).
start_daemon() {
  starts=$((starts + 1))
  daemon_log=$work/daemon-$starts.log
  : > "$daemon_log"  # exists before the first look at it (the child opens it a moment later)
  if [[ -n ${1-} ]]; then
    SWITCHBOARD_FAILPOINT=$1 "$bin" run --config "$work/switchboard.json" > "$daemon_log" 2>&1 &
  else
    "$bin" run --config "$work/switchboard.json" > "$daemon_log" 2>&1 &
  fi
  daemon_pid=$!
  # Not wait_for: its silenced output would swallow daemon_listening's failure message.
  local deadline=$((SECONDS + 20))
  until daemon_listening; do
    ((SECONDS < deadline)) || fail "timed out after 20 s waiting for the daemon (start $starts${1:+, failpoint $1})"
    sleep "$poll"
  done
}
daemon_listening() {
  if exited "$daemon_pid"; then
    local rc=0
    wait "$daemon_pid" || rc=$?
    daemon_pid=''
    fail "the daemon exited with $rc before listening (start $starts); $(tail -n 5 "$daemon_log")"
  fi
  grep -q 'switchboard listening on' "$daemon_log"
}
# wait_exit SECONDS: waits (bounded) for the daemon to end; its exit status is then in $rc.
wait_exit() {
  local deadline=$((SECONDS + $1))
  while ! exited "$daemon_pid"; do
    ((SECONDS < deadline)) || return 1
    sleep "$exit_poll"
  done
  rc=0
  wait "$daemon_pid" || rc=$?
  daemon_pid=''
}
stop_daemon() {  # SIGTERM drains and exits 0
  kill -TERM "$daemon_pid"
  wait_exit 30 || fail "the daemon did not stop within 30 s of SIGTERM"
  [[ $rc -eq 0 ]] || fail "SIGTERM: the daemon exited with $rc, expected 0"
}

# --- the daemon's API ----------------------------------------------------------------------------
# call METHOD PATH [JSON [CURL-ARGS...]]: one request to the daemon; sets $code and $body (curl's
# complaint, if any, in $work/curl.err).
call() {
  local method=$1 path=$2 data=${3-}
  shift $(($# < 3 ? $# : 3))
  local args=(-sS --max-time 30 -o "$work/answer" -w '%{http_code}' -X "$method"
              -H "Authorization: Bearer $SWITCHBOARD_API_TOKEN")
  [[ -n $data ]] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
  rm -f "$work/answer"
  code=$(curl "${args[@]}" "$@" "$api$path" 2>"$work/curl.err") || code=000
  body=$(cat "$work/answer" 2>/dev/null || true)
}
sb() { curl -sS --max-time 20 -H "Authorization: Bearer $SWITCHBOARD_API_TOKEN" "$@"; }
get_lead() { sb "$api/v1/leads/$1"; }
get_conversation() { sb "$api/v1/conversations/$1"; }
