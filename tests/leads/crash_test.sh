#!/usr/bin/env bash
# lead_crash_recovery: a lead resumes after a crash at any step, and nothing is done twice.
#
# One Twilio emulator for the whole run (it outlives every daemon); the daemon on a fixed
# loopback port and one data directory, restarted many times.
#   1. Failpoints. For each step boundary F (lead.admit ... lead.opened, :before and :after):
#      RUNS times a lead that opens a new conversation, and once a lead that joins a
#      conversation another lead already holds open (D2's east and west share a number). The
#      daemon starts with SWITCHBOARD_FAILPOINT=F, must SIGKILL itself on the lead (exit 137;
#      still running = the failpoint name is wrong), starts again without it, and the lead must
#      reach "open" within 20 s. (A lead the daemon has never heard of after the restart, which
#      only a kill before admission can cause, is submitted again with the same id, as a client
#      without an answer does.) Each lead is then closed, so the proxy pool never runs dry.
#   1b. Close, then release. For each boundary of a close (lead.close, conversation.close,
#      conversation.closed; :before and :after): a lead is open, the daemon starts with the
#      failpoint, the close must kill it, and after the restart the close must finish (the lead
#      closed, its conversation closed on Twilio); then a new customer at the same location must
#      open, through the number that close released.
#   2. Random kills. ROUNDS times: BATCH leads (32: as many in flight as the benchmark's
#      clients, so the group commit has company) submitted at once, `kill -9` a random 0-300 ms
#      after the daemon holds the first of them, restart; the leads without an answer are
#      submitted again (same ids), and every lead must open.
#   3. The emulator's state: every conversation's unique_name once, exactly one first message
#      per lead (in the lead's conversation), no SMS binding twice, every customer phone in one
#      conversation only, and as many conversations as distinct (customer, location phone) pairs.
#
# Usage: crash_test.sh BIN          (RUNS=n, ROUNDS=n, BATCH=n override 2, 5, 32; KEEP=1 keeps
#                                    the scratch directory)
# Bounded: every wait has a deadline, the whole run 420 s (ctest allows 600); only processes
# started here are signalled, by PID.
# shellcheck disable=SC2016  # $names in single quotes are jq's, not the shell's
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BIN" >&2
  exit 2
fi
bin=$(realpath "$1")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ -x $bin ]] || { echo "crash_test.sh: $bin is not an executable" >&2; exit 2; }
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || { echo "crash_test.sh: needs $tool" >&2; exit 2; }
done
runs=${RUNS:-2} rounds=${ROUNDS:-5} batch=${BATCH:-32}
# A location holds one open conversation per proxy number: 32 leads over three locations need
# 11 each at once.
export PROXY_COUNT=${PROXY_COUNT:-16}
budget=$((SECONDS + 420))

work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-lead-crash.XXXXXX")
export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000001
export TWILIO_AUTH_TOKEN=lead-crash-demo-token
export SWITCHBOARD_API_TOKEN="lead-crash-$RANDOM$RANDOM"
script_name=lead_crash_recovery
# The emulator, the daemon, the API and the waits (shared with examples/web2text/run.sh); sets
# the exit trap that stops what this script started, also the background curls in $bg_pids.
# shellcheck source-path=SCRIPTDIR source=../../examples/web2text/lib.sh
source "$repo/examples/web2text/lib.sh"
poll=0.1 exit_poll=0.05 log_lines=30 log_fd=2  # quicker polls; on failure, the log on stderr
in_budget() { ((SECONDS < budget)) || fail "over the time budget (420 s) $*"; }

# --- emulator, configuration, daemon ------------------------------------------------------------
start_emulator
write_config 0
"$bin" check-config "$work/switchboard.json" >/dev/null || fail "check-config refused $work/switchboard.json"
echo "emulator $twilio, daemon $api, data in $work/data"
kills=0

# The leads of this run: where each goes. A customer phone is only ever used with one location
# phone, so each customer phone must end up in exactly one conversation.
declare -A lead_phone lead_dealer lead_location lead_conv
location_phone() {
  case $1/$2 in
    D1/north) echo +15550001001 ;; D1/south) echo +15550001002 ;;
    D2/east | D2/west) echo +15550002001 ;;
  esac
}
phones=0
new_phone() { phones=$((phones + 1)); printf -v phone '+1555880%04d' "$phones"; }
lead_body() {  # lead_body ID
  jq -nc --arg p "${lead_phone[$1]}" --arg d "${lead_dealer[$1]}" --arg l "${lead_location[$1]}" --arg id "$1" \
    '{customer_name: ("Customer " + $id), customer_phone: $p, dealer_id: $d, location_id: $l,
      message: ("Crash test lead " + $id), replace: false}'
}
new_lead() {  # new_lead ID PHONE DEALER LOCATION
  lead_phone[$1]=$2 lead_dealer[$1]=$3 lead_location[$1]=$4
}
submit() { call POST "/v1/leads/$1/submit" "$(lead_body "$1")"; }
# answered: the last answer to a submit of lead $1 says it was taken (2xx, or 409 naming it).
answered() {
  case $code in
    200 | 201 | 202) return 0 ;;
    409) jq -e --arg id "$1" '.lead_id == $id' <<<"$body" >/dev/null 2>&1 ||
           fail "submit $1: 409 names another open lead (a duplicate?): $body"
         return 0 ;;
    000) return 1 ;;
    *) fail "submit $1: HTTP $code: $body" ;;
  esac
}
resubmitted=()
# await_open ID: bounded (20 s) wait until the lead is open; records its conversation. A lead
# still unknown 3 s after the daemon is back is submitted again (same id), once.
await_open() {
  local id=$1 t0=$SECONDS sent=0 status
  while :; do
    call GET "/v1/leads/$id"
    status=$(jq -r '.status // empty' <<<"$body" 2>/dev/null || true)
    [[ $code == 200 && $status == open ]] && break
    [[ $code == 200 && ($status == failed || $status == closed) ]] && fail "lead $id is $status: $body"
    if [[ $code == 404 && $sent -eq 0 && $SECONDS -ge $((t0 + 3)) ]]; then
      submit "$id"
      answered "$id" || fail "submitting $id again: no answer"
      sent=1 resubmitted+=("$id")
      continue
    fi
    ((SECONDS < t0 + 20)) || fail "lead $id did not open within 20 s: HTTP $code $body"
    sleep 0.1
  done
  lead_conv[$id]=$(jq -r .conversation_id <<<"$body")
  jq -c --arg loc "$(location_phone "${lead_dealer[$id]}" "${lead_location[$id]}")" \
    '{id, customer_phone, location_phone, expected_location_phone: $loc, conversation_id, conversation_sid}' \
    <<<"$body" >> "$work/leads.jsonl"
}
# close_leads ID...: closes them, then waits until their conversations are closed.
close_leads() {
  local id cv
  for id in "$@"; do
    call POST "/v1/leads/$id/close" '{}'
    [[ $code == 200 ]] || fail "close $id: HTTP $code: $body"
  done
  for id in "$@"; do
    cv=${lead_conv[$id]}
    local t0=$SECONDS
    until call GET "/v1/conversations/$cv" && [[ $code == 200 ]] && jq -e '.status == "closed"' <<<"$body" >/dev/null; do
      ((SECONDS < t0 + 20)) || fail "conversation $cv (lead $id) not closed within 20 s of closing its leads: $body"
      sleep 0.1
    done
  done
}

# --- 1. failpoints ------------------------------------------------------------------------------
failpoints=()
for step in lead.admit conversation.create conversation.webhook conversation.customer \
            conversation.location conversation.ready lead.first-message lead.opened; do
  failpoints+=("$step:before" "$step:after")
done

# crash_lead FAILPOINT ID SHARED: restarts the daemon with the failpoint, submits ID, expects the
# daemon to die, starts it again without the failpoint and waits until the lead is open.
crash_lead() {
  local fp=$1 id=$2 shared=$3 note
  stop_daemon
  start_daemon "$fp"
  # (stderr off while the daemon dies: bash would report each one as "Killed")
  { submit "$id"
    if [[ $code == 000 ]]; then wait_exit 15 || rc=running; else wait_exit 3 || rc=running; fi; } 2>/dev/null
  if [[ $rc == 137 ]]; then
    kills=$((kills + 1))
    note="killed (137), answer ${code/000/none}"
  elif [[ $rc == running ]]; then
    if [[ $shared == 1 ]]; then
      # Joining an open conversation may skip the steps that create one.
      note="not reached when joining an open conversation (answer $code)"
      not_reached+=("$fp")
      stop_daemon
    else
      fail "$fp: the daemon is still running after submitting $id (answer $code $body): the failpoint is never reached or its name is wrong"
    fi
  else
    fail "$fp: the daemon exited with $rc, expected 137 (SIGKILL)"
  fi
  start_daemon
  await_open "$id"
  local n
  n=$(first_messages "$id")
  [[ $n == 1 ]] || fail "$fp: lead $id has $n first messages on the emulator, expected 1"
  printf '  %-28s %-22s %s -> open in %s\n' "$fp" "$id" "$note" "${lead_conv[$id]}"
}

not_reached=()
say "1. failpoints: ${#failpoints[@]} step boundaries x ($runs new conversations + 1 shared)"
start_daemon
for fp in "${failpoints[@]}"; do
  in_budget "(at $fp)"
  tag=${fp/:/-}
  for ((r = 1; r <= runs; r++)); do
    id=fp-$tag-$r
    new_phone
    if ((r % 2)); then new_lead "$id" "$phone" D1 north; else new_lead "$id" "$phone" D1 south; fi
    crash_lead "$fp" "$id" 0
    close_leads "$id"
  done
  # A lead that joins the open conversation of another lead of the same customer.
  base=fp-$tag-base id=fp-$tag-shared
  new_phone
  new_lead "$base" "$phone" D2 east
  new_lead "$id" "$phone" D2 west
  submit "$base"
  answered "$base" || fail "submit $base: no answer"
  await_open "$base"
  crash_lead "$fp" "$id" 1
  [[ ${lead_conv[$id]} == "${lead_conv[$base]}" ]] ||
    fail "$id opened conversation ${lead_conv[$id]}, not the one $base holds open (${lead_conv[$base]})"
  close_leads "$base" "$id"
done
echo "failpoints: $kills SIGKILLs; resubmitted after a restart (unknown to the daemon): ${resubmitted[*]:-none}"
echo "not reached on a shared conversation: ${not_reached[*]:-none}"

# --- 1b. a kill between a close and its release ------------------------------------------------
close_failpoints=()
for step in lead.close conversation.close conversation.closed; do
  close_failpoints+=("$step:before" "$step:after")
done
say "1b. close, then release: ${#close_failpoints[@]} step boundaries"
for fp in "${close_failpoints[@]}"; do
  in_budget "(at $fp)"
  tag=${fp/:/-}
  id=cl-$tag
  new_phone
  new_lead "$id" "$phone" D1 north
  submit "$id"
  answered "$id" || fail "submit $id: no answer"
  await_open "$id"
  stop_daemon
  start_daemon "$fp"
  { call POST "/v1/leads/$id/close" '{}'
    wait_exit 15 || rc=running; } 2>/dev/null
  [[ $rc == 137 ]] || fail "$fp: closing $id did not kill the daemon (exit ${rc}, answer $code $body)"
  kills=$((kills + 1))
  start_daemon
  cv=${lead_conv[$id]} t0=$SECONDS
  until call GET "/v1/conversations/$cv" && [[ $code == 200 ]] && jq -e '.status == "closed"' <<<"$body" >/dev/null; do
    ((SECONDS < t0 + 20)) || fail "$fp: conversation $cv of $id not closed within 20 s of the restart: $body"
    sleep 0.1
  done
  call GET "/v1/leads/$id"
  jq -e '.status == "closed"' <<<"$body" >/dev/null || fail "$fp: lead $id is not closed after the restart: $body"
  # Its number is free again: a new customer at the same location opens.
  after=cl-$tag-next
  new_phone
  new_lead "$after" "$phone" D1 north
  submit "$after"
  answered "$after" || fail "submit $after: no answer"
  await_open "$after"
  printf '  %-28s %-22s killed while closing; closed after the restart; %s opened in %s\n' \
    "$fp" "$id" "$after" "${lead_conv[$after]}"
  close_leads "$after"
done

# --- 2. random kills ----------------------------------------------------------------------------
say "2. random kills: $rounds rounds of $batch leads, kill -9 after 0-300 ms"
locations=("D1 north" "D1 south" "D2 east")
for ((round = 1; round <= rounds; round++)); do
  in_budget "(at round $round)"
  ids=()
  for ((i = 1; i <= batch; i++)); do
    id=rk-$round-$i
    new_phone
    read -r dealer location <<<"${locations[$((i % 3))]}"
    new_lead "$id" "$phone" "$dealer" "$location"
    ids+=("$id")
    curl -sS --max-time 30 -o "$work/$id.body" -w '%{http_code}' -X POST \
      -H "Authorization: Bearer $SWITCHBOARD_API_TOKEN" -H 'Content-Type: application/json' \
      --data-binary "$(lead_body "$id")" "$api/v1/leads/$id/submit" > "$work/$id.code" 2>/dev/null &
    bg_pids+=($!)
  done
  # The kill lands while leads are in flight: a random 0-300 ms after the daemon holds the
  # first of them (starting 32 curls takes longer than that on a busy machine).
  deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    call GET "/v1/leads/${ids[0]}"
    [[ $code == 200 ]] && break
    sleep 0.02
  done
  ms=$((RANDOM % 301))
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  { kill -KILL "$daemon_pid"; wait_exit 10 || rc=running; } 2>/dev/null
  [[ $rc != running ]] || fail "the daemon did not die within 10 s of SIGKILL"
  [[ $rc -eq 137 ]] || fail "kill -9: the daemon exited with $rc"
  kills=$((kills + 1))
  for pid in "${bg_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  bg_pids=()
  start_daemon
  got=0 again=()
  for id in "${ids[@]}"; do
    code=$(cat "$work/$id.code" 2>/dev/null || echo 000)
    body=$(cat "$work/$id.body" 2>/dev/null || true)
    if answered "$id"; then got=$((got + 1)); else again+=("$id"); fi
  done
  known=0
  for id in "${again[@]}"; do
    call GET "/v1/leads/$id"
    [[ $code == 200 ]] && known=$((known + 1))
  done
  # Without an answer, a client sends the lead again: the same id, all at once.
  for id in "${again[@]}"; do
    rm -f "$work/$id.code" "$work/$id.body"
    curl -sS --max-time 30 -o "$work/$id.body" -w '%{http_code}' -X POST \
      -H "Authorization: Bearer $SWITCHBOARD_API_TOKEN" -H 'Content-Type: application/json' \
      --data-binary "$(lead_body "$id")" "$api/v1/leads/$id/submit" > "$work/$id.code" 2>/dev/null &
    bg_pids+=($!)
  done
  for pid in "${bg_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  bg_pids=()
  for id in "${again[@]}"; do
    code=$(cat "$work/$id.code" 2>/dev/null || echo 000)
    body=$(cat "$work/$id.body" 2>/dev/null || true)
    answered "$id" || fail "submitting $id again after the restart: no answer"
  done
  for id in "${ids[@]}"; do await_open "$id"; done
  printf '  round %d: kill -9 after %3d ms; %2d answered before the kill, %2d sent again (%2d of them known after the restart); all %d open\n' \
    "$round" "$ms" "$got" "${#again[@]}" "$known" "${#ids[@]}"
  close_leads "${ids[@]}"
done

# --- 3. what the emulator holds -----------------------------------------------------------------
say "3. the emulator's conversations against the $(wc -l < "$work/leads.jsonl") leads"
emu_state > "$work/state.json"
jq -s . "$work/leads.jsonl" > "$work/leads.json"
jq --slurpfile leads "$work/leads.json" '
  ($leads[0]) as $leads | .conversations.conversations as $convs |
  [$convs[] | .sid as $sid | .messages[] | (.attributes | fromjson? // {})
   | select((.step // "") | endswith("/lead.first-message")) | {lead, sid: $sid}] as $firsts |
  ($convs | map([.participants[] | [.messaging_binding.address, .messaging_binding.proxy_address]])) as $bindings |
  {
    conversations: ($convs | length),
    distinct_pairs: ($leads | map([.customer_phone, .location_phone] | sort) | unique | length),
    leads: ($leads | length),
    first_messages: ($firsts | length),
    unique_names_twice: ([$convs[].unique_name] | group_by(.) | map(select(length > 1) | .[0])),
    unnamed: [$convs[] | select((.unique_name // "") | startswith("sb-") | not) | .sid],
    unique_name_mismatch: [$leads[] | .conversation_sid as $s | .conversation_id as $cv
      | select([$convs[] | select(.sid == $s and .unique_name == ("sb-" + $cv))] | length != 1) | .id],
    leads_without_one_first_message: [$leads[] | .id as $id | .conversation_sid as $s
      | [$firsts[] | select(.lead == $id)] as $f | select(($f | length) != 1 or $f[0].sid != $s)
      | {id, first_messages_in: [$f[].sid]}],
    stray_first_messages: [$firsts[] | select(.lead as $l | $leads | map(.id) | index($l) | not)],
    wrong_location_phone: [$leads[] | select(.location_phone != .expected_location_phone) | .id],
    not_two_participants: [$convs[] | select(([.participants[]] | length) != 2) | .sid],
    binding_twice_in_a_conversation: [$bindings | to_entries[] | select((.value | unique | length) != (.value | length)) | $convs[.key].sid],
    binding_twice_among_open: ([$convs[] | select(.state != "closed") | .participants[]
      | [.messaging_binding.address, .messaging_binding.proxy_address]] | group_by(.) | map(select(length > 1) | .[0])),
    customer_phone_not_in_one_conversation: [$leads | map(.customer_phone) | unique | .[] as $p
      | {phone: $p, conversations: [$convs[] | select(any(.participants[]; .messaging_binding.address == $p)) | .sid]}
      | select((.conversations | length) != 1)],
    pairs_differ: (($convs | map([.participants[].messaging_binding.address] | sort) | sort)
                   != ($leads | map([.customer_phone, .location_phone] | sort) | unique)),
    still_open: [$convs[] | select(.state != "closed") | .sid]
  }' "$work/state.json" > "$work/verdict.json"
jq -c '{conversations, distinct_pairs, leads, first_messages}' "$work/verdict.json"
jq -e '.conversations == .distinct_pairs and .first_messages == .leads
       and ([.unique_names_twice, .unnamed, .unique_name_mismatch, .leads_without_one_first_message,
             .stray_first_messages, .wrong_location_phone, .not_two_participants,
             .binding_twice_in_a_conversation, .binding_twice_among_open,
             .customer_phone_not_in_one_conversation, .still_open] | all(length == 0))
       and .pairs_differ == false' "$work/verdict.json" >/dev/null ||
  fail "the emulator's state breaks a rule: $(jq -c 'with_entries(select((.value | type) != "array" or (.value | length) > 0))' "$work/verdict.json")"
echo "every unique_name once; one first message per lead; no binding twice; one conversation per (customer, location phone)"

# Every lead as the daemon has it now: closed, in the conversation it opened in.
while read -r id sid; do
  call GET "/v1/leads/$id"
  jq -e --arg sid "$sid" '.status == "closed" and .conversation_sid == $sid' <<<"$body" >/dev/null ||
    fail "lead $id: expected closed in $sid, got HTTP $code $body"
done < <(jq -r '"\(.id) \(.conversation_sid)"' "$work/leads.jsonl")

stop_daemon
echo
echo "lead_crash_recovery: passed ($starts daemon starts, $kills SIGKILLs, $(wc -l < "$work/leads.jsonl") leads, ${SECONDS} s)"
