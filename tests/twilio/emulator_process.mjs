// Starts `switchboard twilio-emulator` for the conformance scripts and stops it by its PID.
//
//   const emu = await startEmulator(bin, { accountSid, authToken });
//   ... emu.base ("http://127.0.0.1:PORT"), emu.pid ...
//   await emu.stop();
//
// The emulator listens on 127.0.0.1 port 0 (any free port); the port comes from the line
// "twilio emulator listening on HOST:PORT" it prints once ready. If this process exits
// without calling stop() (an exception, a deadline), the emulator is killed on the way out.

import { spawn } from 'node:child_process';
import http from 'node:http';

const READY = /twilio emulator listening on (\S+):(\d+)/;

export async function startEmulator(bin, { accountSid, authToken, readyTimeoutMs = 10000 }) {
  const child = spawn(bin, ['twilio-emulator', '--host', '127.0.0.1', '--port', '0'], {
    env: { ...process.env, TWILIO_ACCOUNT_SID: accountSid, TWILIO_AUTH_TOKEN: authToken },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-8000);
  });
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);

  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const address = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      reject(new Error(`emulator did not print its listening line within ${readyTimeoutMs} ms; stderr:\n${stderr}`));
    }, readyTimeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = READY.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ host: m[1], port: Number(m[2]) });
      }
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${err.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`emulator exited (code ${code}, signal ${signal}) before listening; stderr:\n${stderr}`));
    });
  });

  return {
    pid: child.pid,
    base: `http://${address.host}:${address.port}`,
    stderr: () => stderr,
    /** SIGTERM by PID, then SIGKILL after `graceMs`; resolves with how it exited. */
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
      }, graceMs);
      const how = await exited;
      clearTimeout(timer);
      process.off('exit', killOnExit);
      return how;
    },
  };
}

/**
 * A local HTTP server that records every request (for webhooks). `hits` holds
 * { method, url, headers, body } in arrival order; `waitFor(n, ms)` resolves once n arrived.
 */
export async function startSink() {
  const hits = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hits.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      for (const w of [...waiters]) if (hits.length >= w.n) w.resolve();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    base: `http://127.0.0.1:${port}`,
    hits,
    waitFor(n, ms) {
      if (hits.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const w = { n, resolve: () => { clearTimeout(t); resolve(); } };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`waited ${ms} ms for ${n} webhook request(s), got ${hits.length}`));
        }, ms);
        waiters.push(w);
      });
    },
    close: () => new Promise((resolve) => {
      server.close(resolve);
      server.closeAllConnections();
    }),
  };
}

/** Fails the process after `ms` (the scripts' overall bound); the exit hook kills the emulator. */
export function deadline(ms, name) {
  const t = setTimeout(() => {
    console.error(`${name}: FAILED: still running after ${ms / 1000} s`);
    process.exit(1);
  }, ms);
  t.unref();
  return t;
}
