#!/usr/bin/env python3
"""The daemon's HTTP server under hostile clients: memory and answering, measured from outside.

Starts `switchboard run` (embedded defaults, a fresh data dir, 127.0.0.1:0), reads its resident
memory from /proc/PID/status, and runs, in order:

  gzip_bomb_no_token   5 x ~520 KB gzip (512 MiB inflated) without a token
  gzip_bomb_token      5 x the same with the token
  chunked_no_token     4 x 64 MiB chunked bodies without a token
  chunked_token        4 x 64 MiB chunked bodies with the token (http.max_body_bytes is 4 MiB)
  huge_headers         2 x 68 MB of headers on GET /health
  slow_clients         10 clients sending a header byte a second; 8 good requests meanwhile
  idle_keepalive       8 idle kept-alive connections; then a fresh client
  many_keepalive       500 kept-alive connections; then 20 fresh requests
  pipelined            5 pipelined POSTs in one write

One JSON object per line on stdout (figures, never pass/fail), a summary on stderr. The memory
figures are deltas against the idle daemon measured first in the same run: `rss_after_kb` is
resident memory after the attack, `peak_kb` the high-water mark (VmHWM) so far. Bounded: every
phase has its own deadline; the daemon is stopped (SIGTERM, by PID) at the end.

  python3 bench/http_hostile.py --bin build/release/switchboard
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

TOKEN = "hostile-bench-token"


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_answer(s, timeout=5.0):
    """Reads until the end of one answer's header block (or close/timeout); returns the status."""
    s.settimeout(timeout)
    got = b""
    try:
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except (socket.timeout, ConnectionError):
        pass
    if got.startswith(b"HTTP/1.1 "):
        return int(got[9:12])
    return 0


def request(port, method, path, body=b"", headers=None, timeout=5.0):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    try:
        s = connect(port, timeout)
        s.sendall(head.encode() + body)
        st = read_answer(s, timeout)
        s.close()
        return st
    except OSError:
        return 0


def send_stream(port, head, pieces, timeout=10.0):
    """Sends a header, then pieces until the server answers or closes; returns (status, bytes sent)."""
    sent = 0
    s = connect(port, timeout)
    try:
        s.sendall(head)
        for p in pieces:
            s.sendall(p)
            sent += len(p)
    except OSError:
        pass
    st = read_answer(s, timeout)
    s.close()
    return st, sent


def gzip_bomb(inflated_mib):
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + 15)
    zero = bytes(1024 * 1024)
    out = [c.compress(zero) for _ in range(inflated_mib)]
    out.append(c.flush())
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/release/switchboard")
    ap.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "..", "config",
                                                      "switchboard.json"))
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="switchboard-hostile-")
    env = dict(os.environ, SWITCHBOARD_API_TOKEN=TOKEN)
    daemon = subprocess.Popen(
        [args.bin, "run", "--config", args.config, "--data-dir", data, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    port = None
    deadline = time.time() + 20
    while time.time() < deadline and port is None:
        line = daemon.stdout.readline()
        if line.startswith("switchboard listening on "):
            port = int(line.strip().rsplit(":", 1)[1])
    if port is None:
        daemon.kill()
        sys.exit("http_hostile: the daemon did not start listening")
    pid = daemon.pid
    results = []

    def emit(name, **fig):
        rec = {"bench": "http_hostile", "case": name,
               "rss_after_kb": status_kb(pid, "VmRSS") - idle_rss,
               "peak_kb": status_kb(pid, "VmHWM") - idle_rss, **fig}
        results.append(rec)
        print(json.dumps(rec), flush=True)

    for _ in range(20):
        request(port, "GET", "/health")
    idle_rss = status_kb(pid, "VmRSS")
    print(json.dumps({"bench": "http_hostile", "case": "idle", "rss_kb": idle_rss,
                      "peak_kb": status_kb(pid, "VmHWM")}), flush=True)

    bomb = gzip_bomb(512)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    gz = {"Content-Encoding": "gzip", "Content-Type": "application/cloudevents+json"}
    st = [request(port, "POST", "/v1/events", bomb, gz) for _ in range(5)]
    emit("gzip_bomb_no_token", sent_bytes=len(bomb), statuses=st)
    st = [request(port, "POST", "/v1/events", bomb, {**gz, **auth}) for _ in range(5)]
    emit("gzip_bomb_token", sent_bytes=len(bomb), statuses=st)

    def chunked(n_mib):
        piece = b"%x\r\n" % (64 * 1024) + b"c" * (64 * 1024) + b"\r\n"
        return (piece for _ in range(n_mib * 16))

    head = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n")
    outs = [send_stream(port, head + b"\r\n", chunked(64)) for _ in range(4)]
    emit("chunked_no_token", statuses=[o[0] for o in outs], max_sent_bytes=max(o[1] for o in outs))
    tok = f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
    outs = [send_stream(port, head + tok, chunked(64)) for _ in range(4)]
    emit("chunked_token", statuses=[o[0] for o in outs], max_sent_bytes=max(o[1] for o in outs))

    def headers(total):
        line = b"X-Filler: " + b"h" * 1000 + b"\r\n"
        return (line for _ in range(total // len(line)))

    outs = [send_stream(port, b"GET /health HTTP/1.1\r\nHost: x\r\n", headers(68_000_000))
            for _ in range(2)]
    emit("huge_headers", statuses=[o[0] for o in outs], max_sent_bytes=max(o[1] for o in outs))

    # Ten clients trickling a header a byte a second, for the whole phase.
    stop = threading.Event()

    def slow_client():
        try:
            s = connect(port)
            for b in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100:
                if stop.is_set():
                    break
                s.send(bytes([b]))
                time.sleep(1.0)
            s.close()
        except OSError:
            pass

    slow = [threading.Thread(target=slow_client, daemon=True) for _ in range(10)]
    for t in slow:
        t.start()
    time.sleep(1.0)
    lat = []
    ok = 0
    t_end = time.time() + 30
    for _ in range(8):
        if time.time() > t_end:
            break
        t0 = time.time()
        if request(port, "GET", "/health", timeout=max(0.1, t_end - time.time())) == 200:
            ok += 1
            lat.append((time.time() - t0) * 1000)
    stop.set()
    emit("slow_clients", slow=10, good_sent=8, good_answered=ok,
         good_max_ms=round(max(lat), 1) if lat else None)
    for t in slow:
        t.join(timeout=3)

    def kept_alive(n):
        conns = []
        for _ in range(n):
            s = connect(port)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            read_answer(s)
            conns.append(s)
        return conns

    idle = kept_alive(8)
    t0 = time.time()
    st = request(port, "GET", "/health", timeout=10)
    emit("idle_keepalive", idle=8, fresh_status=st, fresh_ms=round((time.time() - t0) * 1000, 1))
    for s in idle:
        s.close()

    many = kept_alive(500)
    lat = []
    ok = 0
    for _ in range(20):
        t0 = time.time()
        if request(port, "GET", "/health", timeout=5) == 200:
            ok += 1
            lat.append((time.time() - t0) * 1000)
    emit("many_keepalive", kept=500, fresh_sent=20, fresh_answered=ok,
         fresh_max_ms=round(max(lat), 1) if lat else None)
    for s in many:
        s.close()

    s = connect(port)
    ev = b'{"specversion":"1.0","id":"p%d","source":"bench","type":"t","entitykind":"k","entityid":"1","data":{}}'
    reqs = b"".join(
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
        b"\r\nContent-Type: application/cloudevents+json\r\nContent-Length: %d\r\n\r\n" %
        len(ev % i) + ev % i for i in range(5))
    s.sendall(reqs)
    s.settimeout(5)
    got = b""
    try:
        while got.count(b"HTTP/1.1 ") < 5:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    s.close()
    emit("pipelined", sent=5, answered=got.count(b"HTTP/1.1 "))

    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(timeout=20)
    except subprocess.TimeoutExpired:
        daemon.kill()
    subprocess.run(["rm", "-rf", data])

    print(f"# idle daemon: {idle_rss} kB resident", file=sys.stderr)
    for r in results:
        extra = {k: v for k, v in r.items() if k not in ("bench", "case", "rss_after_kb", "peak_kb")}
        print(f"# {r['case']:<20} rss +{r['rss_after_kb']} kB, peak +{r['peak_kb']} kB  {extra}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
