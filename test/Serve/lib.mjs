// Helpers for the ds-serve tests: start a server on a free loopback port,
// load the openai and Anthropic SDKs from third_party/npm, a tiny
// sequential test runner.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');

// An SDK's client class from third_party/npm (installed by `make deps`).
function loadSdk(pkg, what) {
  const req = createRequire(path.join(ROOT, 'third_party', 'npm', 'package.json'));
  try {
    return req(pkg).default ?? req(pkg);
  } catch (e) {
    throw new Error(`the ${what} SDK is missing from third_party/npm: run \`make deps\` (${e.message})`);
  }
}

export const loadOpenAI = () => loadSdk('openai', 'openai');
export const loadAnthropic = () => loadSdk('@anthropic-ai/sdk', 'Anthropic');

const servers = new Set();
process.on('exit', () => { for (const s of servers) try { s.kill('SIGKILL'); } catch {} });

// Starts `bin args...` with --port 0; resolves once it listens (port file).
export async function startServer(bin, args, { timeoutMs = 60000 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-serve-'));
  const portFile = path.join(dir, 'port');
  const proc = spawn(bin, [...args, '--host', '127.0.0.1', '--port', '0', '--port-file', portFile],
                     { stdio: ['ignore', 'inherit', 'pipe'] });
  servers.add(proc);
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    servers.delete(proc);
    resolve({ code, signal });
  }));
  const end = Date.now() + timeoutMs;
  while (!fs.existsSync(portFile)) {
    if (proc.exitCode !== null) throw new Error(`${bin} exited ${proc.exitCode}: ${stderr}`);
    if (Date.now() > end) { proc.kill('SIGKILL'); throw new Error(`${bin} did not start: ${stderr}`); }
    await sleep(50);
  }
  const port = parseInt(fs.readFileSync(portFile, 'utf8'), 10);
  return { proc, port, base: `http://127.0.0.1:${port}`, exited, stderr: () => stderr };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Bounded wait for a condition (async function returning truthy).
export async function until(what, fn, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export async function metrics(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

export async function postRaw(base, route, body, headers = {}) {
  const r = await fetch(`${base}${route}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body,
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: r.status, headers: r.headers, text, json };
}

export async function run(tests) {
  const overall = setTimeout(() => { console.error('FAIL: the suite ran past 240 s'); process.exit(2); }, 240000);
  let failed = 0;
  for (const [name, fn] of tests) {
    const t0 = Date.now();
    try {
      await fn();
      console.log(`PASS ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e && e.stack || e}`);
    }
  }
  clearTimeout(overall);
  console.log(`${tests.length - failed} of ${tests.length} passed`);
  process.exit(failed ? 1 : 0);
}
