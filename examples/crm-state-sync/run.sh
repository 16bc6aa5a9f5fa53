#!/usr/bin/env bash
# examples/crm-state-sync/run.sh: entity-state propagation end to end, on this machine only.
#
# Starts a private RabbitMQ (loopback, its own ports and data), the Twilio emulator and the
# switchboard daemon; publishes MassTransit-style CRM events with amqp-publish; prints the Sync
# documents, the Sync map and the TaskRouter worker attributes the emulator then holds; renames
# an account manager in the CRM database and runs a rebuild. Checks what it prints, so it also
# runs as a test (exit 0 = every expectation held). Stops only what it started.
#
#   examples/crm-state-sync/run.sh            (after scripts/setup; uses build/release)
#   SWITCHBOARD_BIN=path/to/switchboard examples/crm-state-sync/run.sh
#   KEEP=1 ...                                 keep the scratch directory for a look
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${SWITCHBOARD_BIN:-$root/build/release/switchboard}
[[ -x $bin ]] || { echo "run.sh: no switchboard binary at $bin; run scripts/setup first" >&2; exit 2; }
for tool in amqp-publish curl jq sqlite3; do
  command -v "$tool" >/dev/null || { echo "run.sh: needs $tool (scripts/setup installs it)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/crm-state-sync.XXXXXX)
export RMQ_BASE=$work/rabbitmq RMQ_PORT=${RMQ_PORT:-5674} ERL_EPMD_PORT=${ERL_EPMD_PORT:-4371}
# Demo credentials of the local emulator (not secrets: nothing else accepts them).
export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000001
export TWILIO_AUTH_TOKEN=crm-state-sync-demo-token
export SWITCHBOARD_API_TOKEN=crm-state-sync-demo-api-token
emulator_pid= daemon_pid=
cleanup() {
  local status=$?
  [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [[ -n $emulator_pid ]] && kill "$emulator_pid" 2>/dev/null && wait "$emulator_pid" 2>/dev/null
  bash "$root/scripts/rabbitmq" stop >/dev/null 2>&1 || true
  if [[ $status -ne 0 ]]; then
    echo "--- daemon log (last 40 lines)"; tail -n 40 "$work/daemon.log" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "scratch kept in $work"; else rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }
fail() { echo "run.sh: FAILED: $*" >&2; exit 1; }
# wait_for SECONDS DESCRIPTION CMD...: retries CMD every 0.2 s until it succeeds.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${limit} s waiting for $what"
    sleep 0.2
  done
}

say "RabbitMQ on 127.0.0.1:$RMQ_PORT (private node, data in $RMQ_BASE)"
bash "$root/scripts/rabbitmq" start

say "Twilio emulator"
"$bin" twilio-emulator --host 127.0.0.1 --port 0 > "$work/emulator.log" 2>&1 &
emulator_pid=$!
wait_for 10 "the emulator" grep -q 'listening on' "$work/emulator.log"
twilio="http://$(sed -n 's/.*listening on //p' "$work/emulator.log" | head -n1)"
tw() { curl -sS -u "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN" "$@"; }
service=$(tw -X POST "$twilio/sync/v1/Services" --data-urlencode FriendlyName=crm | jq -r .sid)
workspace=$(tw -X POST "$twilio/taskrouter/v1/Workspaces" --data-urlencode FriendlyName=contact-centre | jq -r .sid)
worker7=$(tw -X POST "$twilio/taskrouter/v1/Workspaces/$workspace/Workers" --data-urlencode FriendlyName=agent-7 | jq -r .sid)
worker8=$(tw -X POST "$twilio/taskrouter/v1/Workspaces/$workspace/Workers" --data-urlencode FriendlyName=agent-8 | jq -r .sid)
echo "emulator $twilio: Sync service $service, workspace $workspace, workers $worker7 $worker8"

say "CRM database and configuration"
sqlite3 "$work/crm.db" < "$here/crm.sql"
sed -e "s|@DATA_DIR@|$work/data|" -e "s|@AMQP_PORT@|$RMQ_PORT|" -e "s|@CRM_DB@|$work/crm.db|" \
    -e "s|@SYNC_SERVICE@|$service|" -e "s|@WORKSPACE@|$workspace|" -e "s|@TWILIO_URL@|$twilio|" \
    "$here/switchboard.json.in" > "$work/switchboard.json"
"$bin" check-config "$work/switchboard.json"

say "switchboard daemon"
"$bin" run --config "$work/switchboard.json" > "$work/daemon.log" 2>&1 &
daemon_pid=$!
wait_for 20 "the daemon" grep -q 'switchboard listening on' "$work/daemon.log"
api="http://$(sed -n 's/.*switchboard listening on //p' "$work/daemon.log" | head -n1)"
sb() { curl -sS -H "Authorization: Bearer $SWITCHBOARD_API_TOKEN" "$@"; }
source_connected() { sb "$api/v1/propagation" | jq -e '.sources[0].connected == true'; }
wait_for 30 "the AMQP source to connect" source_connected
echo "daemon $api, AMQP source connected"

# publish TYPE JSON-MESSAGE: one MassTransit envelope to the type's fan-out exchange.
n=0
publish() {
  local type=$1 message=$2
  n=$((n + 1))
  local body
  body=$(jq -nc --arg id "$(printf '00000000-0000-4000-8000-%012d' "$n")" --arg type "$type" \
    --argjson message "$message" --arg sent "$(date -u +%Y-%m-%dT%H:%M:%S.0000000Z)" \
    '{messageId: $id, correlationId: $id, conversationId: $id, sourceAddress: "rabbitmq://localhost/crm",
      destinationAddress: ("rabbitmq://localhost/" + $type), messageType: ["urn:message:" + $type],
      message: $message, sentTime: $sent, headers: {}, host: {machineName: "crm-1", processName: "Crm.Api"}}')
  amqp-publish -u "amqp://guest:guest@127.0.0.1:$RMQ_PORT" -e "$type" -r "" -p \
    -C application/vnd.masstransit+json -b "$body"
}

say "publishing CRM events (MassTransit envelopes)"
publish Crm.Events:ApplicationStatusChanged '{"applicationId":"A-1001","applicantId":"P-1","status":"submitted","version":1}'
publish Crm.Events:AccountManagerAllocated '{"applicationId":"A-1001","accountManagerId":"AM-1","version":2}'
publish Crm.Events:ApplicationStatusChanged '{"applicationId":"A-1001","status":"approved","version":3}'
# An old version arriving late never overwrites the newer state.
publish Crm.Events:ApplicationStatusChanged '{"applicationId":"A-1001","status":"in_review","version":2}'
publish Crm.Events:ApplicationStatusChanged '{"applicationId":"A-1002","applicantId":"P-2","accountManagerId":"AM-2","status":"submitted","version":1}'
publish Crm.Events:AgentAvailabilityChanged "{\"agentId\":\"agent-7\",\"workerSid\":\"$worker7\",\"available\":true,\"skills\":[\"mortgages\"],\"version\":1}"
publish Crm.Events:AgentAvailabilityChanged "{\"agentId\":\"agent-8\",\"workerSid\":\"$worker8\",\"available\":false,\"skills\":[\"loans\"],\"version\":1}"
echo "$n events published"

doc() { tw "$twilio/sync/v1/Services/$service/Documents/$1" | jq -c .data; }
item() { tw "$twilio/sync/v1/Services/$service/Maps/applications/Items/$1" | jq -c .data; }
worker() { tw "$twilio/taskrouter/v1/Workspaces/$workspace/Workers/$1" | jq -r .attributes | jq -c .; }
expect() {  # expect DESCRIPTION JQ-FILTER CMD...: waits until CMD's JSON output passes the filter
  local what=$1 filter=$2; shift 2
  check() { "$@" | jq -e "$filter"; }
  wait_for 30 "$what" check "$@"
}
expect "application-A-1001" '.status == "approved" and .accountManager == "Grace Hopper" and .applicant == "Ada Lovelace"' doc application-A-1001
expect "application-A-1002" '.accountManager == "Alan Turing"' doc application-A-1002
expect "map item A-1001" '.status == "approved"' item A-1001
expect "worker agent-7" '.available == true and .team == "mortgages"' worker "$worker7"
expect "worker agent-8" '.available == false and .team == "loans"' worker "$worker8"

say "what the telephony side now reads (from the emulator)"
echo "Sync document application-A-1001: $(doc application-A-1001)"
echo "Sync document application-A-1002: $(doc application-A-1002)"
echo "Sync map applications, A-1001:    $(item A-1001)"
echo "Sync map applications, A-1002:    $(item A-1002)"
echo "worker agent-7 ($worker7): $(worker "$worker7")"
echo "worker agent-8 ($worker8): $(worker "$worker8")"

say "the CRM renames an account manager (and announces it), then a rebuild"
sqlite3 "$work/crm.db" "UPDATE account_managers SET name = 'Grace Brewster Hopper' WHERE id = 'AM-1'"
# The announcement invalidates the cached row; the next A-1001 event picks up the new name.
publish Crm.Events:AccountManagerUpdated '{"accountManagerId":"AM-2"}'
sqlite3 "$work/crm.db" "UPDATE account_managers SET phone = '+15550100099' WHERE id = 'AM-2'"
rebuild=$(sb -X POST "$api/v1/rebuild" -H 'Content-Type: application/json' -d '{"kind":"application"}')
echo "POST /v1/rebuild -> $rebuild"
status_url=$(jq -r .status_url <<<"$rebuild")
rebuild_done() { sb "$api$status_url" | jq -e '.state == "done"'; }
wait_for 30 "the rebuild" rebuild_done
echo "GET $status_url -> $(sb "$api$status_url")"
expect "rebuilt application-A-1001" '.accountManager == "Grace Brewster Hopper"' doc application-A-1001
expect "rebuilt application-A-1002" '.accountManagerPhone == "+15550100099"' doc application-A-1002
echo "Sync document application-A-1001: $(doc application-A-1001)"
echo "Sync document application-A-1002: $(doc application-A-1002)"

say "propagation figures"
sb "$api/v1/propagation" | jq -c '.targets[] | {name, written, pending, dead, writes}' || true
echo
echo "crm-state-sync: all expectations held"
