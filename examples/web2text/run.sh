#!/usr/bin/env bash
# examples/web2text/run.sh: web-to-text lead conversations end to end, on this machine only.
#
# Starts the Twilio emulator and the switchboard daemon (loopback only), then walks through
# every lead rule over the HTTP API: a lead opens a conversation with two SMS participants and
# a first message; the same lead again is refused (409) until resubmitted with "replace";
# another location means another conversation; two locations sharing a number share one
# conversation; a location that changes its number keeps the old one for its open leads;
# inbound SMS reach the leads through signed webhooks; a conversation closes with its last
# lead; bad input is refused without effect; a crash in the middle of a lead resumes without
# sending anything twice. Prints the conversations the emulator then holds. Checks what it
# prints, so it also runs as a test (exit 0 = every expectation held). Stops only what it
# started.
#
#   examples/web2text/run.sh                 (after scripts/setup; uses build/release)
#   SWITCHBOARD_BIN=path/to/switchboard examples/web2text/run.sh
#   KEEP=1 ...                                keep the scratch directory for a look
# shellcheck disable=SC2016  # $names in single quotes are jq's, not the shell's
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${SWITCHBOARD_BIN:-$root/build/release/switchboard}
[[ -x $bin ]] || { echo "run.sh: no switchboard binary at $bin; run scripts/setup first" >&2; exit 2; }
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: needs $tool (scripts/setup installs it)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/web2text.XXXXXX)
# Demo credentials of the local emulator (not secrets: nothing else accepts them).
export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000001
export TWILIO_AUTH_TOKEN=web2text-demo-token
export SWITCHBOARD_API_TOKEN=web2text-demo-api-token
script_name=run.sh
# The emulator, the daemon, the API and the checks (shared with tests/leads/crash_test.sh); sets
# the exit trap that stops what this script started.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"

# --- the two processes -------------------------------------------------------------------------
say "Twilio emulator"
start_emulator
echo "emulator $twilio"

say "configuration"
write_config 600000
"$bin" check-config "$work/switchboard.json"
echo "daemon on $api, Twilio calls $webhook_url"

say "switchboard daemon"
start_daemon
echo "daemon pid $daemon_pid, $(grep -m1 'switchboard listening on' "$daemon_log")"

# lead_json NAME PHONE DEALER LOCATION MESSAGE [REPLACE]: a submit body.
lead_json() {
  jq -nc --arg n "$1" --arg p "$2" --arg d "$3" --arg l "$4" --arg m "$5" --argjson r "${6:-false}" \
    '{customer_name: $n, customer_phone: $p, dealer_id: $d, location_id: $l, message: $m, replace: $r}'
}
show_lead() {
  jq -r '"  lead \(.id): \(.status), \(.customer_name) \(.customer_phone) -> \(.dealer_id)/\(.location_id) \(.location_phone) via \(.proxy_number), conversation \(.conversation_id) \(.conversation_sid)"' <<<"$1"
}
# open_lead ID JSON: POST /v1/leads/ID/submit; expects 201 with the lead open (or 202, then
# waits until it is); $lead holds the lead.
open_lead() {
  local id=$1 json=$2
  call POST "/v1/leads/$id/submit" "$json"
  echo "  POST /v1/leads/$id/submit -> $code"
  case $code in
    201) check "201 answer: lead $id open, with its invocation" "$body" \
           '.lead.id == $id and .lead.status == "open" and (.invocation | test("^inv-"))' --arg id "$id" ;;
    202) echo "  (202: $body; waiting for the lead)" ;;
    *) fail "POST /v1/leads/$id/submit: HTTP $code, expected 201: $body $(cat "$work/curl.err")" ;;
  esac
  expect "lead $id open" '.status == "open"' get_lead "$id"
  lead=$(get_lead "$id")
  show_lead "$lead"
}
field() { jq -r ".$2" <<<"$1"; }
# on_emulator LEAD: its conversation on the emulator has the customer and the location as SMS
# participants through the lead's proxy number, the daemon's webhook and exactly one first
# message of this lead.
on_emulator() {
  local l=$1 id sid conv
  id=$(field "$l" id) sid=$(field "$l" conversation_sid)
  conv=$(emu_conv "$sid")
  [[ -n $conv ]] || fail "the emulator has no conversation $sid (lead $id)"
  check "emulator: $sid is named sb-$(field "$l" conversation_id) and not closed" "$conv" \
    '.unique_name == ("sb-" + $cv) and .state != "closed"' --arg cv "$(field "$l" conversation_id)"
  check "emulator: 2 SMS participants, $(field "$l" customer_phone) and $(field "$l" location_phone) via $(field "$l" proxy_number)" \
    "$conv" '[.participants[] | [.messaging_binding.address, .messaging_binding.proxy_address]] | sort
             == ([[$c, $p], [$loc, $p]] | sort)' \
    --arg c "$(field "$l" customer_phone)" --arg loc "$(field "$l" location_phone)" --arg p "$(field "$l" proxy_number)"
  check "emulator: onMessageAdded webhook to $webhook_url" "$conv" \
    'any(.webhooks[]; .target == "webhook" and .configuration.url == $u and (.configuration.filters | index("onMessageAdded")))' \
    --arg u "$webhook_url"
  check "emulator: exactly one first message of lead $id" "$conv" \
    '[.messages[] | (.attributes | fromjson? // {}) | select(.lead == $id and ((.step // "") | endswith("/lead.first-message")))] | length == 1' \
    --arg id "$id"
  jq -r --arg id "$id" '.messages[] | select((.attributes | fromjson? // {}) | .lead == $id) | "  first message: \(.author): \(.body)"' <<<"$conv"
}

# --- (a) a lead opens ---------------------------------------------------------------------------
say "(a) a lead opens: a conversation, two SMS participants, a first message"
open_lead lead-a1 "$(lead_json Ana +15557770001 D1 north 'Is the red one still there?')"
a1=$lead
check "lead-a1 as submitted, at North's number, through a pool number" "$a1" \
  '.dealer_id == "D1" and .location_id == "north" and .customer_name == "Ana" and .customer_phone == "+15557770001"
   and .message == "Is the red one still there?" and .location_phone == "+15550001001"
   and (.proxy_number | IN("+15550100001", "+15550100002", "+15550100003", "+15550100004"))
   and (.conversation_id | test("^cv-")) and (.conversation_sid | test("^CH[0-9a-f]{32}$"))
   and .customer_messages == 0 and .dealer_messages == 0 and .opened_at != null'
conv=$(get_conversation "$(field "$a1" conversation_id)")
echo "  GET /v1/conversations/$(field "$a1" conversation_id) -> $(jq -c . <<<"$conv")"
check "the conversation is open, keyed by customer and location phone, used by lead-a1" "$conv" \
  '.status == "open" and .customer_phone == "+15557770001" and .location_phone == "+15550001001"
   and .proxy_number == $l.proxy_number and .sid == $l.conversation_sid and .unique_name == ("sb-" + $l.conversation_id)
   and (.leads | index("lead-a1"))' --argjson l "$a1"
on_emulator "$a1"

# --- (b) the same lead again --------------------------------------------------------------------
say "(b) same phone, dealer and location again: 409 already open; with \"replace\": true, the old lead closes"
call POST /v1/leads/lead-a1-again/submit "$(lead_json Ana +15557770001 D1 north 'Hello again?')"
echo "  POST /v1/leads/lead-a1-again/submit -> $code $body"
[[ $code == 409 ]] || fail "a second lead for an open phone+dealer+location: HTTP $code, expected 409: $body"
check "409 says already open, names lead-a1 and how to replace it" "$body" \
  '.status == "already_open" and .lead_id == "lead-a1" and (.error | test("already open")) and (.error | test("replace"))'
call GET /v1/leads/lead-a1-again
echo "  GET /v1/leads/lead-a1-again -> $code"
open_lead lead-a2 "$(lead_json Ana +15557770001 D1 north 'Hello again? Is it still there?' true)"
a2=$lead
expect "lead-a1 closed, replaced by lead-a2" '.status == "closed" and .replaced_by == "lead-a2" and .closed_at != null' get_lead lead-a1
echo "  lead-a1: $(get_lead lead-a1 | jq -c '{status, close_reason, replaced_by, closed_at}')"
if [[ $(field "$a2" conversation_id) == "$(field "$a1" conversation_id)" ]]; then
  echo "  lead-a2 took over conversation $(field "$a2" conversation_id)"
else
  echo "  lead-a2 has a new conversation $(field "$a2" conversation_id) (lead-a1's was $(field "$a1" conversation_id))"
fi
on_emulator "$a2"

# --- (c) another location of the same dealer ----------------------------------------------------
say "(c) same phone and dealer, other location: a second lead, a second conversation"
key=web2text-c-$$
call POST /v1/leads "$(lead_json Ana +15557770001 D1 south 'Or the blue one at South?')" -H "Idempotency-Key: $key"
echo "  POST /v1/leads (Idempotency-Key $key) -> $code"
[[ $code == 201 ]] || fail "POST /v1/leads: HTTP $code, expected 201: $body"
check "the server chose an id" "$body" '.lead.status == "open" and (.lead.id | type == "string" and length > 0)'
first_answer=$body
c_id=$(jq -r .lead.id <<<"$body")
expect "lead $c_id open" '.status == "open"' get_lead "$c_id"
c=$(get_lead "$c_id")
show_lead "$c"
check "a different conversation from lead-a2's, at South's number" "$c" \
  '.location_phone == "+15550001002" and .conversation_id != $a.conversation_id and .conversation_sid != $a.conversation_sid' \
  --argjson a "$a2"
on_emulator "$c"
call POST /v1/leads "$(lead_json Ana +15557770001 D1 south 'Or the blue one at South?')" -H "Idempotency-Key: $key"
echo "  the same POST with the same Idempotency-Key -> $code"
[[ $code == 201 ]] || fail "a repeated Idempotency-Key: HTTP $code, expected the first answer (201): $body"
check "the repeat returns the first answer (same lead, same invocation)" "$body" \
  '.lead.id == $first.lead.id and .invocation == $first.invocation' --argjson first "$first_answer"

# --- (d) two locations sharing one number -------------------------------------------------------
say "(d) two locations of one retailer share a number: two leads, ONE conversation"
open_lead lead-d1 "$(lead_json Ben +15557770002 D2 east 'Do you do trade-ins?')"
d1=$lead
open_lead lead-d2 "$(lead_json Ben +15557770002 D2 west 'Same question for West: trade-ins?')"
d2=$lead
check "lead-d1 and lead-d2 share the conversation (id and SID) at +15550002001" "$d2" \
  '.conversation_id == $d1.conversation_id and .conversation_sid == $d1.conversation_sid
   and .location_phone == "+15550002001" and $d1.location_phone == "+15550002001" and .id != $d1.id' --argjson d1 "$d1"
shared_cv=$(field "$d1" conversation_id)
check "GET /v1/conversations/$shared_cv lists both leads" "$(get_conversation "$shared_cv")" \
  '.status == "open" and (.leads | index("lead-d1")) and (.leads | index("lead-d2"))'
on_emulator "$d1"
on_emulator "$d2"

# --- (e) a location changes its number ----------------------------------------------------------
say "(e) North changes its number while lead-a2 is open"
call POST /v1/dealers/D1/set_location '{"location":"north","name":"North","phone":"+15550001009"}'
echo "  POST /v1/dealers/D1/set_location -> $code $body"
[[ $code == 200 ]] || fail "set_location: HTTP $code, expected 200: $body"
check "the answer has the new and the previous number" "$body" \
  '.dealer == "D1" and .location == "north" and .phone == "+15550001009" and .previous_phone == "+15550001001"'
check "GET /v1/dealers/D1 shows North's new number" "$(sb "$api/v1/dealers/D1")" \
  '.id == "D1" and .name == "Acme Motors" and ([.locations[] | select(.id == "north") | .phone] == ["+15550001009"])
   and ([.locations[] | select(.id == "south") | .phone] == ["+15550001002"])'
check "open lead-a2 keeps the number it opened with" "$(get_lead lead-a2)" '.status == "open" and .location_phone == "+15550001001"'
check "and so does its conversation" "$(get_conversation "$(field "$a2" conversation_id)")" '.location_phone == "+15550001001"'
open_lead lead-e1 "$(lead_json Cleo +15557770003 D1 north 'Can I book a test drive?')"
e1=$lead
check "a new lead at North uses the new number" "$e1" '.location_phone == "+15550001009"'
on_emulator "$e1"
call POST /v1/leads/lead-a3/submit "$(lead_json Ana +15557770001 D1 north 'Third time')"
echo "  Ana at North again (no replace) -> $code $body"
[[ $code == 409 ]] || fail "the same phone+dealer+location after a number change: HTTP $code, expected 409: $body"
check "still lead-a2, whatever North's number now is" "$body" '.status == "already_open" and .lead_id == "lead-a2"'

# --- (f) inbound SMS ----------------------------------------------------------------------------
say "(f) inbound SMS through the emulator's signed onMessageAdded webhooks"
# sms FROM TO BODY: an SMS arrives at Twilio (the emulator), which calls the daemon's webhook.
sms() {
  local out
  out=$(tw -X POST "$twilio/_emulator/inbound-sms" --data-urlencode "From=$1" --data-urlencode "To=$2" \
        --data-urlencode "Body=$3") || fail "POST /_emulator/inbound-sms failed"
  jq -e '.sid | test("^IM")' <<<"$out" >/dev/null || fail "inbound SMS $1 -> $2 not taken: $out"
  echo "  SMS $1 -> $2: \"$3\" ($(jq -r .sid <<<"$out") in $(jq -r .conversation_sid <<<"$out"))"
}
deliveries() { emu_state | jq -c --arg u "$webhook_url" '[.webhook_deliveries[] | select(.url == $u)]'; }
a2_proxy=$(field "$a2" proxy_number)
a2_conv=$(emu_conv "$(field "$a2" conversation_sid)")
check "the customer's binding goes through the lead's proxy number" "$a2_conv" \
  'any(.participants[]; .messaging_binding.address == "+15557770001" and .messaging_binding.proxy_address == $p)' --arg p "$a2_proxy"
sms +15557770001 "$a2_proxy" "Yes please, I can come on Saturday"
expect "lead-a2 counts 1 customer message" '.customer_messages == 1 and .dealer_messages == 0' get_lead lead-a2
check "Ana's other lead ($c_id, another conversation) counts none" "$(get_lead "$c_id")" '.customer_messages == 0'
dealer_proxy=$(jq -r '[.participants[] | select(.messaging_binding.address == "+15550001001") | .messaging_binding.proxy_address][0]' <<<"$a2_conv")
[[ $dealer_proxy == "$a2_proxy" ]] || fail "North's binding in lead-a2's conversation goes through $dealer_proxy, not the lead's proxy number $a2_proxy"
sms +15550001001 "$a2_proxy" "Saturday 10am works, see you then"
expect "lead-a2 counts 1 dealer message (from the old number it kept)" '.customer_messages == 1 and .dealer_messages == 1' get_lead lead-a2
sms +15557770002 "$(field "$d1" proxy_number)" "Trade-in is a 2015 Civic"
d_leads() { { get_lead lead-d1; get_lead lead-d2; } | jq -sc .; }
expect "the shared conversation's leads count Ben's message" \
  '(.[0].customer_messages + .[1].customer_messages) >= 1' d_leads
echo "  customer_messages: lead-d1 $(get_lead lead-d1 | jq .customer_messages), lead-d2 $(get_lead lead-d2 | jq .customer_messages)"
expect "the emulator delivered 3 webhooks, each answered 200" \
  'length == 3 and all(.[]; .event == "onMessageAdded" and .status == 200)' deliveries
deliveries | jq -r '.[] | "  delivery: \(.event) \(.method) \(.url) -> \(.status // .error)"'
echo "  (a replayed delivery cannot be forged here without the auth token; the daemon dedupes by"
echo "   message, and the emulator never redelivers: 3 SMS, 3 deliveries, 1 count each)"
# A webhook that is not Twilio's: same form, no or a wrong signature.
webhook_form=(--data-urlencode EventType=onMessageAdded --data-urlencode "AccountSid=$TWILIO_ACCOUNT_SID"
              --data-urlencode "ConversationSid=$(field "$a2" conversation_sid)"
              --data-urlencode MessageSid=IM00000000000000000000000000000099 --data-urlencode Index=9
              --data-urlencode Author=+15557770001 --data-urlencode "Body=forged" --data-urlencode Source=SMS)
wh_code=$(curl -sS --max-time 20 -o "$work/answer" -w '%{http_code}' "${webhook_form[@]}" \
          -H 'X-Twilio-Signature: c2lnbmF0dXJlLW9mLW5vYm9keQ==' "$webhook_url") || wh_code=000
echo "  POST webhook with a bad signature -> $wh_code $(cat "$work/answer" 2>/dev/null)"
[[ $wh_code == 403 ]] || fail "a webhook with a bad X-Twilio-Signature: HTTP $wh_code, expected 403"
wh_code=$(curl -sS --max-time 20 -o "$work/answer" -w '%{http_code}' "${webhook_form[@]}" "$webhook_url") || wh_code=000
echo "  POST webhook without a signature -> $wh_code $(cat "$work/answer" 2>/dev/null)"
[[ $wh_code == 403 ]] || fail "a webhook without X-Twilio-Signature: HTTP $wh_code, expected 403"
check "neither counted" "$(get_lead lead-a2)" '.customer_messages == 1 and .dealer_messages == 1'

# --- (g) a conversation stays open while any lead uses it ---------------------------------------
say "(g) closing the leads of the shared conversation $shared_cv one by one"
shared_sid=$(field "$d1" conversation_sid)
call POST /v1/leads/lead-d1/close '{}'
echo "  POST /v1/leads/lead-d1/close -> $code"
[[ $code == 200 ]] || fail "close lead-d1: HTTP $code, expected 200: $body"
check "lead-d1 closed" "$body" '.lead.id == "lead-d1" and .lead.status == "closed" and .lead.closed_at != null'
sleep 1  # give a wrongly closing conversation the time to show it
check "$shared_cv stays open for lead-d2" "$(get_conversation "$shared_cv")" '.status == "open" and (.leads | index("lead-d2"))'
check "and stays open on the emulator" "$(emu_conv "$shared_sid")" '.state != "closed"'
call POST /v1/leads/lead-d2/close '{}'
echo "  POST /v1/leads/lead-d2/close -> $code"
[[ $code == 200 ]] || fail "close lead-d2: HTTP $code, expected 200: $body"
check "lead-d2 closed" "$body" '.lead.status == "closed"'
expect "$shared_cv closed with its last lead" '.status == "closed"' get_conversation "$shared_cv"
expect "and closed on the emulator" '.state == "closed"' emu_conv "$shared_sid"

# --- (h) bad input ------------------------------------------------------------------------------
say "(h) bad input: a clear 4xx each, and nothing changes"
snapshot() { emu_state | jq -c '.conversations.conversations | {conversations: length,
  participants: (map(.participants | length) | add // 0), messages: (map(.messages | length) | add // 0),
  states: map(.state)}'; }
before=$(snapshot)
# refused WHAT ID CODE JQ-FILTER JSON [CURL-ARGS...]: a submit answered CODE that leaves no lead.
refused() {
  local what=$1 id=$2 want=$3 filter=$4 json=$5; shift 5
  call POST "/v1/leads/$id/submit" "$json" "$@"
  echo "  $what -> $code $body"
  [[ $code == "$want" ]] || fail "$what: HTTP $code, expected $want: $body"
  check "$what: the answer says why" "$body" "$filter"
  call GET "/v1/leads/$id"
  [[ $code == 404 ]] || fail "$what: GET /v1/leads/$id answers $code, expected 404 (no lead): $body"
}
refused "invalid phone 555-0100" bad-1 400 '.field == "customer_phone" and (.error | type == "string")' \
  "$(lead_json Dan 555-0100 D1 north 'hi')"
refused "unknown dealer D9" bad-2 404 '.error | test("D9")' "$(lead_json Dan +15557770009 D9 north 'hi')"
refused "unknown location D1/nowhere" bad-3 404 '.error | test("nowhere")' "$(lead_json Dan +15557770009 D1 nowhere 'hi')"
refused "a 1601-character message" bad-4 400 '.field == "message" and (.error | type == "string")' \
  "$(lead_json Dan +15557770009 D1 north "$(printf 'x%.0s' {1..1601})")"
code=$(curl -sS --max-time 20 -o "$work/answer" -w '%{http_code}' -H 'Authorization: Bearer not-the-token' \
       -H 'Content-Type: application/json' --data-binary "$(lead_json Dan +15557770009 D1 north 'hi')" \
       "$api/v1/leads/bad-5/submit") || code=000
echo "  a wrong bearer token -> $code $(cat "$work/answer" 2>/dev/null)"
[[ $code == 401 ]] || fail "a wrong bearer token: HTTP $code, expected 401"
call GET /v1/leads/bad-5
[[ $code == 404 ]] || fail "a wrong bearer token: GET /v1/leads/bad-5 answers $code, expected 404: $body"
wh_code=$(curl -sS --max-time 20 -o "$work/answer" -w '%{http_code}' "${webhook_form[@]}" \
          -H 'X-Twilio-Signature: AAAA' "$webhook_url") || wh_code=000
echo "  a webhook with a bad signature -> $wh_code"
[[ $wh_code == 403 ]] || fail "a webhook with a bad signature: HTTP $wh_code, expected 403"
check "the emulator holds what it held before" "$(snapshot)" '. == $before' --argjson before "$before"
check "lead-a2 unchanged" "$(get_lead lead-a2)" '.status == "open" and .customer_messages == 1 and .dealer_messages == 1'

# --- (i) a crash in the middle of a lead --------------------------------------------------------
say "(i) a crash before the first message: SWITCHBOARD_FAILPOINT=lead.first-message:before"
stop_daemon
echo "  daemon stopped (SIGTERM, exit 0)"
start_daemon lead.first-message:before
echo "  daemon restarted with the failpoint (pid $daemon_pid)"
# (stderr off while the daemon dies: bash would report it as "Killed")
{ call POST /v1/leads/lead-crash/submit "$(lead_json Dana +15557770004 D1 south 'Any estates under 10k?')"
  wait_exit 15 || rc=running; } 2>/dev/null
echo "  POST /v1/leads/lead-crash/submit -> $code ($(tr -d '\n' < "$work/curl.err"))"
[[ $code == 000 ]] || fail "the submit got an answer ($code $body) although the daemon should have died before the first message"
[[ $rc != running ]] || fail "the daemon is still running 15 s after the submit: failpoint lead.first-message:before not reached"
[[ $rc -eq 137 ]] || fail "the daemon exited with $rc, expected 137 (SIGKILL)"
ok "the daemon killed itself (exit $rc): $(grep -i -m1 'failpoint' "$daemon_log" || echo 'no log line')"
echo "  first messages of lead-crash on the emulator while the daemon is down: $(first_messages lead-crash)"
start_daemon
echo "  daemon started again without the failpoint"
expect "lead-crash resumes to open" '.status == "open"' get_lead lead-crash
crash=$(get_lead lead-crash)
show_lead "$crash"
check "exactly one first message of lead-crash on the emulator" "$(first_messages lead-crash)" '. == 1'
on_emulator "$crash"
check "the leads from before the crash are as they were" "$(get_lead lead-a2)" \
  '.status == "open" and .location_phone == "+15550001001" and .customer_messages == 1'
north_now=$(sb "$api/v1/dealers/D1" | jq -r '.locations[] | select(.id == "north") | .phone')
# A number set at run time outlives restarts until the configuration gives another one.
check "North keeps the number set_location gave it across the restarts" "\"$north_now\"" '. == "+15550001009"'

# --- (j) what the emulator holds ----------------------------------------------------------------
say "(j) the conversations the emulator holds"
emu_state | jq -r '.conversations.conversations[] |
  "\(.unique_name // "-")  \(.sid)  \(.state)",
  (.participants[] | "    participant \(.messaging_binding.address // .identity) via \(.messaging_binding.proxy_address // "-")"),
  (.messages[] | ((.attributes | fromjson? // {}) as $a
     | "    #\(.index) \(.author): \(.body)" + (if $a.lead then "   [lead \($a.lead), \($a.step)]" else "" end)))'

say "the daemon stops cleanly"
stop_daemon
ok "SIGTERM, exit 0"
echo
echo "web2text: all expectations held"
