#!/usr/bin/env bash
# crash_recovery: acknowledged means durable, even across SIGKILL.
#
# Starts the daemon on a fresh data directory, sends 100,000 events over HTTP in batches of 500
# from four producer threads, and kills the daemon with SIGKILL at random points (5 times),
# restarting it on the same data directory each time. Producers send again every batch that was
# not fully acknowledged. At the end the whole journal is read back through GET /v1/events and
# checked: every acknowledged id is there exactly once (lost = 0, duplicated = 0) and the
# sequences are contiguous from 1. Then SIGTERM must stop the daemon cleanly (exit 0).
#
# Usage: crash_test.sh BIN            (SEED=n, EVENTS=n, KILLS=n override the defaults)
# Bounded: every wait has a deadline; only the daemons started here are signalled, by PID.
set -uo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BIN" >&2
  exit 2
fi
bin=$(realpath "$1")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
config=$repo/config/switchboard.json

tmp=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-crash.XXXXXX")
driver_pid=""
cleanup() {
  # The driver kills its own daemon when it ends, also on SIGTERM.
  [[ -n $driver_pid ]] && kill -TERM "$driver_pid" 2>/dev/null && wait "$driver_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export SWITCHBOARD_API_TOKEN="crash-test-$RANDOM$RANDOM"

python3 - "$bin" "$config" "$tmp" <<'PY' &
import http.client, json, os, random, signal, subprocess, sys, threading, time

bin_path, config, tmp = sys.argv[1:4]
token = os.environ["SWITCHBOARD_API_TOKEN"]
events = int(os.environ.get("EVENTS", "100000"))
kills = int(os.environ.get("KILLS", "5"))
seed = int(os.environ.get("SEED", str(random.randrange(1 << 30))))
batch_size, producers = 500, 4
deadline = time.monotonic() + 480  # ctest gives 600 s
rng = random.Random(seed)
data_dir = os.path.join(tmp, "data")
started = time.monotonic()


class Daemon:
    """The daemon this script runs; at most one at a time."""
    def __init__(self):
        self.proc = None
        self.address = None
        self.starts = 0
        self.lock = threading.Condition()

    def start(self):
        self.starts += 1
        out = os.path.join(tmp, f"daemon-{self.starts}.out")
        err = open(os.path.join(tmp, f"daemon-{self.starts}.err"), "w")
        proc = subprocess.Popen(
            [bin_path, "run", "--config", config, "--data-dir", data_dir,
             "--listen", "127.0.0.1:0"],
            stdout=open(out, "w"), stderr=err, stdin=subprocess.DEVNULL)
        limit = time.monotonic() + 30
        address = None
        while address is None:
            if proc.poll() is not None:
                sys.exit(f"FAIL: the daemon exited with {proc.returncode} before listening; "
                         f"see {err.name}:\n" + open(err.name).read())
            if time.monotonic() > limit:
                proc.kill()
                sys.exit("FAIL: no 'switchboard listening on' line within 30 s")
            for line in open(out):
                if line.startswith("switchboard listening on "):
                    address = line.split()[-1]
            time.sleep(0.01)
        with self.lock:
            self.proc, self.address = proc, address
            self.lock.notify_all()

    def kill(self):
        with self.lock:
            proc, self.address = self.proc, None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def current(self, timeout):
        """The running daemon's address, waiting (bounded) while it is down."""
        with self.lock:
            self.lock.wait_for(lambda: self.address is not None, timeout)
            return self.address


daemon = Daemon()


def stop_daemon(*_):
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.proc.kill()
        daemon.proc.wait()
    sys.exit(1)


signal.signal(signal.SIGTERM, stop_daemon)

# Batches of deterministic events; a batch is pending until every item in it is acknowledged.
def event(i):
    return {"specversion": "1.0", "id": f"ev-{i:06d}", "source": "tests/crash",
            "type": "crash.item_recorded", "entitykind": "item", "entityid": f"E-{i % 97}",
            "data": {"n": i}}

pending = list(range((events + batch_size - 1) // batch_size))
rng.shuffle(pending)
acked = set()
stats = {"posts": 0, "resent": 0, "failed_posts": 0, "status": {}, "duplicates": 0}
state = threading.Lock()
failures = []


def post(conn, body):
    conn.request("POST", "/v1/events", body=body, headers={
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/cloudevents-batch+json"})
    res = conn.getresponse()
    return res.status, res.read()


def producer():
    conn = None
    while time.monotonic() < deadline:
        with state:
            if not pending:
                return
            b = pending.pop()
        lo, hi = b * batch_size, min(events, (b + 1) * batch_size)
        body = json.dumps([event(i) for i in range(lo, hi)]).encode()
        tries = 0
        while time.monotonic() < deadline:
            if conn is None:
                # While a daemon is down this waits for its successor.
                address = daemon.current(30)
                if address is None:
                    continue
                host, port = address.rsplit(":", 1)
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
            tries += 1
            try:
                status, raw = post(conn, body)
            except (OSError, http.client.HTTPException):
                # Killed mid-request: the answer is lost, so nothing of it counts as
                # acknowledged. Wait for the next daemon and send the batch again.
                conn.close()
                conn = None
                with state:
                    stats["failed_posts"] += 1
                continue
            with state:
                stats["posts"] += 1
                stats["status"][status] = stats["status"].get(status, 0) + 1
                if tries > 1:
                    stats["resent"] += 1
            if status in (200, 207):
                results = json.loads(raw)["results"]
                if len(results) != hi - lo:
                    failures.append(f"batch {b}: {len(results)} results for {hi - lo} events")
                ok = [r["id"] for r in results if r["status"] in ("accepted", "duplicate")]
                with state:
                    acked.update(ok)
                    # Stored before a kill, but its answer was lost: now a duplicate.
                    stats["duplicates"] += sum(1 for r in results if r["status"] == "duplicate")
                if len(ok) == hi - lo:
                    break
                failures.append(f"batch {b}: some items rejected: {raw[:300]!r}")
                break
            if status == 503:
                time.sleep(0.2)
                continue
            failures.append(f"batch {b}: HTTP {status}: {raw[:300]!r}")
            break
    if conn is not None:
        conn.close()


try:
    daemon.start()
    threads = [threading.Thread(target=producer, daemon=True) for _ in range(producers)]
    for t in threads:
        t.start()
    # Kill at random points of the run, whatever its speed: once a random share (5..90 %) of
    # the events is acknowledged, after a further random 0..50 ms (mostly mid-request).
    done_kills = 0
    for share in sorted(rng.uniform(0.05, 0.9) for _ in range(kills)):
        while time.monotonic() < deadline:
            with state:
                if len(acked) >= share * events:
                    break
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.05))
        if not any(t.is_alive() for t in threads):
            break
        daemon.kill()
        done_kills += 1
        with state:
            print(f"kill {done_kills}: SIGKILL at {time.monotonic() - started:.1f} s, "
                  f"{len(acked)} ids acknowledged so far", flush=True)
        daemon.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads) or pending:
        failures.append(f"not finished within the deadline; {len(pending)} batches unsent")

    # Read the whole journal back.
    address = daemon.current(30)
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    after, ids, sequences = 0, [], []
    while time.monotonic() < deadline + 60:
        conn.request("GET", f"/v1/events?after={after}&limit=1000",
                     headers={"Authorization": f"Bearer {token}"})
        res = conn.getresponse()
        page = json.loads(res.read())
        if res.status != 200:
            failures.append(f"GET /v1/events: HTTP {res.status}: {page}")
            break
        if not page["events"]:
            break
        for ev in page["events"]:
            ids.append(ev["id"])
            sequences.append(ev["journalsequence"])
        after = sequences[-1]
    conn.close()

    counts = {}
    for i in ids:
        counts[i] = counts.get(i, 0) + 1
    lost = sorted(i for i in acked if i not in counts)
    duplicated = sorted(i for i, n in counts.items() if n > 1)
    gaps = sum(1 for k, s in enumerate(sequences) if s != k + 1)
    elapsed = time.monotonic() - started
    print(f"seed {seed}: {events} events in batches of {batch_size} from {producers} producers, "
          f"{done_kills} SIGKILLs, {daemon.starts} daemon starts, {elapsed:.1f} s")
    print(f"posts answered: {stats['posts']} (by status: {stats['status']}), "
          f"posts cut by a kill: {stats['failed_posts']}, batches sent again: {stats['resent']}, "
          f"ids answered 'duplicate' on resend: {stats['duplicates']}")
    print(f"acknowledged ids: {len(acked)}; journal: {len(ids)} events, "
          f"{len(counts)} distinct ids, last sequence {sequences[-1] if sequences else 0}")
    print(f"lost = {len(lost)}, duplicated = {len(duplicated)}, sequence gaps = {gaps}")
    if lost:
        failures.append(f"{len(lost)} acknowledged ids are not in the journal, e.g. {lost[:5]}")
    if duplicated:
        failures.append(f"{len(duplicated)} ids are stored more than once, e.g. {duplicated[:5]}")
    if gaps:
        failures.append(f"journal sequences are not contiguous from 1 ({gaps} out of place)")
    if len(acked) != events:
        failures.append(f"only {len(acked)} of {events} events were acknowledged")
    if done_kills < kills:
        failures.append(f"only {done_kills} of {kills} kills happened while sending "
                        "(the run finished early)")

    # A clean stop at the end: SIGTERM drains and exits 0.
    daemon.proc.send_signal(signal.SIGTERM)
    try:
        code = daemon.proc.wait(timeout=60)
        if code != 0:
            failures.append(f"SIGTERM: the daemon exited with {code}, expected 0")
    except subprocess.TimeoutExpired:
        failures.append("SIGTERM: the daemon did not stop within 60 s")
finally:
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.proc.kill()
        daemon.proc.wait()

for f in failures:
    print("FAIL:", f, file=sys.stderr)
print("crash_recovery:", "FAILED" if failures else "passed")
sys.exit(1 if failures else 0)
PY
driver_pid=$!
wait "$driver_pid"
rc=$?
driver_pid=""
if [[ $rc -ne 0 ]]; then
  for f in "$tmp"/daemon-*.err; do
    [[ -s $f ]] || continue
    echo "--- last lines of $(basename "$f")" >&2
    tail -n 15 "$f" >&2
  done
fi
exit "$rc"
