// helpers.mjs: what every browser test shares. It starts the real release
// server (target/release/charla, or $CHARLA_BIN) on 127.0.0.1 and a free
// port, each with its own SQLite database in a fresh temporary directory
// (never `charla.db` in the repository), waits for /healthz, and stops it by
// PID; it starts redis-servers of the tests' own the same way, for the
// Redis engine (many Charla nodes on one Redis); it launches Debian's
// Chromium (/usr/bin/chromium, never a downloaded browser) through
// playwright-core; it watches every page for Content-Security-Policy
// violations and uncaught errors, which fail the test; and it runs axe-core
// on a page (`axeCheck`), which fails the test on any WCAG 2.1 A or AA
// violation.
//
// Nothing here builds anything: build the release binary first
// (`cargo build --release -p charla-server`).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHARLA_BIN = process.env.CHARLA_BIN ?? path.join(ROOT, 'target', 'release', 'charla');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Screenshots go to tests/artifacts/screenshots (ignored by git), so a test
// run leaves the tree clean; UPDATE_SCREENSHOTS=1 writes the README's copies
// in docs/screenshots instead.
export const SCREENSHOT_DIR = process.env.UPDATE_SCREENSHOTS
  ? path.join(ROOT, 'docs', 'screenshots')
  : path.join(ROOT, 'tests', 'artifacts', 'screenshots');

/** Longest wait for the server to answer /healthz after it was started. */
const STARTUP_TIMEOUT_MS = 15_000;
/** Pause between two /healthz probes while the server starts. */
const HEALTH_PROBE_INTERVAL_MS = 50;
/** Longest wait for redis-server to answer PING after it was started. */
const REDIS_STARTUP_TIMEOUT_MS = 10_000;
/** Longest wait for the server to exit after SIGTERM (it drains in ≤ 7 s). */
const STOP_TIMEOUT_MS = 15_000;
/** Default wait for a DOM condition. */
export const WAIT_MS = 15_000;

/** A free TCP port on 127.0.0.1: bind port 0, read it, release it. */
export async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** Every server started by this test process, so none outlives it. */
const running = new Set();
/** Every temporary directory (a database's, a Redis's) not yet removed, likewise. */
const databaseDirs = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of databaseDirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => process.exit(1)); // runs the 'exit' cleanup above
}

/**
 * A SQLite database for the server (`CHARLA_DATABASE`) in a fresh temporary
 * directory of its own, so tests never share history and nothing is
 * written into the repository. `CharlaServer.start()` makes one per server
 * and removes it with that server; a test that restarts the server on the
 * same history creates one itself, passes it to each start, and removes it
 * when it ends.
 */
export class TestDatabase {
  constructor(dir) {
    this.dir = dir;
    this.path = path.join(dir, 'charla.db');
  }

  static async create() {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'charla-test-'));
    databaseDirs.add(dir);
    return new TestDatabase(dir);
  }

  /** Deletes the directory with the database and its WAL files. */
  async remove() {
    await rm(this.dir, { recursive: true, force: true });
    databaseDirs.delete(this.dir);
  }
}

/** One running `charla` process. */
export class CharlaServer {
  constructor(process, { port, env, database, ownsDatabase }) {
    this.process = process;
    this.port = port;
    this.env = env;
    /** The TestDatabase it runs on; null when `env` names the database. */
    this.database = database;
    this.ownsDatabase = ownsDatabase;
    this.url = `http://127.0.0.1:${port}`;
    this.log = '';
    this.exited = once(process, 'exit');
    running.add(process);
    this.exited.then(() => running.delete(process));
    process.stdout.on('data', (chunk) => { this.log += chunk; });
    process.stderr.on('data', (chunk) => { this.log += chunk; });
  }

  /**
   * Starts the server on 127.0.0.1:`port` (a fresh free port by default)
   * with extra environment `env` (short flood-control settings, ...), and
   * resolves once /healthz answers 200.
   *
   * The history lives in `database` (a TestDatabase) when given: the caller
   * owns it, so it outlives this process and a later start can reuse it.
   * Otherwise the server gets a fresh database of its own, removed once it
   * has stopped; and `env.CHARLA_DATABASE` (`:memory:`, say) wins over both.
   * The process runs in a temporary directory, never in the repository.
   */
  static async start({ port, env = {}, database } = {}) {
    const chosen = port ?? await freePort();
    const named = env.CHARLA_DATABASE !== undefined;
    const own = !named && database === undefined;
    const used = named ? null : database ?? await TestDatabase.create();
    const child = spawn(CHARLA_BIN, [], {
      cwd: used?.dir ?? os.tmpdir(),
      env: {
        PATH: process.env.PATH,
        PORT: String(chosen),
        CHARLA_HOST: '127.0.0.1',
        RUST_LOG: 'warn',
        ...(used ? { CHARLA_DATABASE: used.path } : {}),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new CharlaServer(child, {
      port: chosen, env, database: used, ownsDatabase: own,
    });
    await server.waitHealthy();
    return server;
  }

  /**
   * A new process on the same port, settings and database, once this one
   * has stopped: a restart. Only for a database the test owns (pass a
   * TestDatabase to `start`), since a server's own one goes with it.
   */
  async startAgain() {
    if (this.ownsDatabase) {
      throw new Error('startAgain needs a TestDatabase owned by the test: pass `database` to start()');
    }
    return CharlaServer.start({ port: this.port, env: this.env, database: this.database ?? undefined });
  }

  async waitHealthy() {
    const attempts = Math.ceil(STARTUP_TIMEOUT_MS / HEALTH_PROBE_INTERVAL_MS);
    let exited = false;
    this.exited.then(() => { exited = true; });
    for (let attempt = 0; attempt < attempts && !exited; attempt += 1) {
      try {
        const response = await fetch(`${this.url}/healthz`);
        if (response.ok) return;
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => { setTimeout(resolve, HEALTH_PROBE_INTERVAL_MS); });
    }
    const log = this.log;
    await this.kill();
    throw new Error(`charla did not become healthy on port ${this.port}:\n${log}`);
  }

  get alive() {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /**
   * SIGTERM (graceful: sessions get 1001), then wait for the exit; removes
   * the server's own database.
   */
  async stop() {
    if (this.alive) {
      this.process.kill('SIGTERM');
      const timeout = new Promise((resolve) => { setTimeout(resolve, STOP_TIMEOUT_MS, 'timeout'); });
      const outcome = await Promise.race([this.exited, timeout]);
      if (outcome === 'timeout') {
        await this.kill();
        throw new Error(`charla did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`);
      }
    }
    await this.forgetDatabase();
  }

  /** SIGKILL, for cleanup after a failure; removes the server's own database. */
  async kill() {
    if (this.alive) {
      this.process.kill('SIGKILL');
      await this.exited;
    }
    await this.forgetDatabase();
  }

  async forgetDatabase() {
    if (this.ownsDatabase) await this.database.remove();
  }
}

/**
 * A `redis-server` of the test's own on 127.0.0.1 and a free port, its data
 * in a fresh temporary directory, for `CharlaServer.start({ env:
 * { CHARLA_REDIS_URL: redis.url } })`: every Charla started on it is one node
 * of the same chat server. `stop()` ends it by its PID and removes the
 * directory.
 */
export class RedisServer {
  constructor(child, { port, dir }) {
    this.process = child;
    this.port = port;
    this.dir = dir;
    this.url = `redis://127.0.0.1:${port}`;
    this.log = '';
    this.failure = null;
    this.exited = once(child, 'exit');
    running.add(child);
    this.exited.then(() => running.delete(child));
    child.once('error', (error) => { this.failure = error; });
    child.stdout.on('data', (chunk) => { this.log += chunk; });
    child.stderr.on('data', (chunk) => { this.log += chunk; });
  }

  /** Starts one and resolves once it answers PING. */
  static async start() {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'charla-redis-'));
    databaseDirs.add(dir);
    const port = await freePort();
    const child = spawn('redis-server', [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'yes',
      '--appendfsync', 'always',
      '--dir', dir,
      '--daemonize', 'no',
    ], { cwd: dir, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    const redis = new RedisServer(child, { port, dir });
    await redis.waitReady();
    return redis;
  }

  get alive() {
    return this.failure === null && this.process.exitCode === null && this.process.signalCode === null;
  }

  /** True when it answers PING with PONG (not while it loads its data). */
  ping() {
    return new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: this.port });
      const done = (answer) => { socket.destroy(); resolve(answer); };
      socket.setTimeout(1_000, () => done(false));
      socket.once('error', () => done(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
    });
  }

  async waitReady() {
    const attempts = Math.ceil(REDIS_STARTUP_TIMEOUT_MS / HEALTH_PROBE_INTERVAL_MS);
    for (let attempt = 0; attempt < attempts && this.alive; attempt += 1) {
      if (await this.ping()) return;
      await new Promise((resolve) => { setTimeout(resolve, HEALTH_PROBE_INTERVAL_MS); });
    }
    const why = this.failure ? `${this.failure.message} (is Debian's redis-server installed?)` : this.log;
    await this.stop();
    throw new Error(`redis-server did not answer PING on port ${this.port}: ${why}`);
  }

  /** SIGTERM, then wait for the exit (SIGKILL if it lingers); removes its data. */
  async stop() {
    if (this.alive) {
      this.process.kill('SIGTERM');
      const timeout = new Promise((resolve) => { setTimeout(resolve, STOP_TIMEOUT_MS, 'timeout'); });
      if (await Promise.race([this.exited, timeout]) === 'timeout') {
        this.process.kill('SIGKILL');
        await this.exited;
      }
    }
    await rm(this.dir, { recursive: true, force: true });
    databaseDirs.delete(this.dir);
  }
}

/** Debian's Chromium, headless, with no background traffic. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/**
 * A fresh browser context (its own localStorage: one person) and a page
 * in it, watched for CSP violations and page errors. `problems` collects
 * them; `assertClean()` fails the test if there are any.
 */
export async function openPerson(browser, options = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    locale: 'en-GB',
    timezoneId: 'Europe/Madrid',
    ...options,
  });
  const page = await context.newPage();
  const { problems, leaveWarnings } = await watch(page);
  return {
    context,
    page,
    problems,
    leaveWarnings,
    assertClean() {
      if (problems.length > 0) throw new Error(`page problems:\n${problems.join('\n')}`);
    },
  };
}

/**
 * Records CSP violations (console and DOM event), uncaught errors and
 * unexpected dialogs as `problems`. A "leave this page?" prompt is not a
 * problem: it is counted in `leaveWarnings` and accepted.
 */
export async function watch(page) {
  const problems = [];
  const leaveWarnings = { count: 0 };
  page.on('console', (message) => {
    const text = message.text();
    if (/Content Security Policy|Refused to (execute|load|apply|connect)/i.test(text)) {
      problems.push(`CSP (console): ${text}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('dialog', (dialog) => {
    if (dialog.type() === 'beforeunload') {
      leaveWarnings.count += 1;
      dialog.accept().catch(() => {});
      return;
    }
    problems.push(`dialog opened: ${dialog.type()} ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  // The DOM event catches violations even where the console line differs.
  await page.exposeBinding('__charlaViolation', (_source, text) => {
    problems.push(`CSP (event): ${text}`);
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      window.__charlaViolation?.(`${event.violatedDirective} blocked ${event.blockedURI}`);
    });
  });
  return { problems, leaveWarnings };
}

/** Enters `room` from the lobby as `name`, the way a person does. */
export async function enterRoom(page, baseUrl, name, room) {
  await page.goto(`${baseUrl}/`);
  await page.fill('#join-name', name);
  await page.fill('#join-room', room);
  await Promise.all([
    page.waitForURL(`${baseUrl}/rooms/${room}`),
    page.click('#join-form button[type="submit"]'),
  ]);
  await waitConnected(page);
}

/** Waits for the connection indicator to say "connected". */
export async function waitConnected(page, timeout = WAIT_MS) {
  await page.waitForSelector('#connection[data-state="connected"]', { timeout });
}

/** The active room view. */
export function activeView(page) {
  return page.locator('.room-view:not([hidden])');
}

/** Texts of the messages shown in the active room, in order. */
export function messageTexts(page) {
  return activeView(page).locator('.messages .message .message-text').allTextContents();
}

/** Waits until the active room shows exactly `expected`, in order. */
export async function waitForMessages(page, expected, timeout = WAIT_MS) {
  try {
    await page.waitForFunction((wanted) => {
      const view = document.querySelector('.room-view:not([hidden])');
      if (!view) return false;
      const texts = [...view.querySelectorAll('.messages .message .message-text')]
        .map((node) => node.textContent);
      return JSON.stringify(texts) === JSON.stringify(wanted);
    }, expected, { timeout });
  } catch (error) {
    const actual = await messageTexts(page).catch(() => []);
    throw new Error(`expected messages ${JSON.stringify(expected)}, saw ${JSON.stringify(actual)}`, { cause: error });
  }
}

/** Types `text` into the active room's composer and presses Enter. */
export async function say(page, text) {
  const input = activeView(page).locator('.composer-input');
  await input.fill(text);
  await input.press('Enter');
}

/** Waits until the active room lists exactly these member names (sorted). */
export async function waitForMembers(page, names, timeout = WAIT_MS) {
  await page.waitForFunction((wanted) => {
    const shown = [...document.querySelectorAll('#member-list .member-name')]
      .map((node) => node.textContent)
      .sort();
    return JSON.stringify(shown) === JSON.stringify([...wanted].sort());
  }, names, { timeout });
}

/** Saves a PNG under SCREENSHOT_DIR. */
export async function screenshot(page, name) {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, name) });
}

/**
 * Test-only control over the page's WebSockets, installed before the page's
 * own scripts: `window.__sockets` lists every socket the page opened;
 * `window.__silence(socket)` makes one drop everything both ways without
 * closing, like a link that died without the browser noticing.
 */
export async function installSocketControls(page) {
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    const sockets = [];
    window.__sockets = sockets;
    window.__silence = (socket) => { socket.__silent = true; };
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        sockets.push(this);
      }

      send(data) {
        if (!this.__silent) super.send(data);
      }

      addEventListener(type, listener, options) {
        const guarded = type === 'message'
          ? (event) => { if (!this.__silent) listener.call(this, event); }
          : listener;
        super.addEventListener(type, guarded, options);
      }
    };
  });
}

/**
 * Records every JSON frame the page's WebSockets send and receive, parsed,
 * in `sent` and `received` (in order, all sockets together). Install it
 * before the page opens its socket.
 */
export function recordFrames(page) {
  const frames = { sent: [], received: [] };
  const parse = (payload) => {
    try {
      return JSON.parse(String(payload));
    } catch {
      return null;
    }
  };
  page.on('websocket', (socket) => {
    socket.on('framesent', ({ payload }) => frames.sent.push(parse(payload)));
    socket.on('framereceived', ({ payload }) => frames.received.push(parse(payload)));
  });
  return frames;
}

/** The ids of the messages shown in the active room, in order. */
export function messageIds(page) {
  return activeView(page).locator('.messages .message')
    .evaluateAll((items) => items.map((item) => Number(item.dataset.id)));
}

/** The axe-core rule tags checked: WCAG 2.0 and 2.1, levels A and AA. */
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
/**
 * axe-core's source (the npm devDependency), evaluated in the page by the
 * test: Charla never serves it. Evaluated through the DevTools protocol
 * (page.evaluate), it runs whatever the page's CSP says, and that CSP stays
 * as it is.
 */
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * The axe-core violations of `page` as it is now, for AXE_TAGS (or only the
 * axe rules named in `rules`): an array of
 * `{ id, impact, help, helpUrl, nodes: [{ target, html, summary }] }`.
 * Finite CSS animations and transitions (a drawer sliding in, a flash) end
 * first, so colours are measured as they settle, not halfway.
 */
export async function axeViolations(page, rules = null) {
  await page.evaluate(() => Promise.all(document.getAnimations()
    .filter((animation) => Number.isFinite(animation.effect?.getComputedTiming().endTime))
    .map((animation) => animation.finished.catch(() => {}))));
  if (!await page.evaluate(() => typeof window.axe === 'object')) {
    await page.evaluate(`${AXE_SOURCE}\n;undefined`);
  }
  const runOnly = rules ? { type: 'rule', values: rules } : { type: 'tag', values: AXE_TAGS };
  return page.evaluate(async (runOnly) => {
    const results = await window.axe.run(document, {
      runOnly,
      resultTypes: ['violations'],
    });
    return results.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      helpUrl: violation.helpUrl,
      nodes: violation.nodes.map((node) => ({
        target: node.target.join(' '),
        html: node.html,
        summary: node.failureSummary,
      })),
    }));
  }, runOnly);
}

/** Violations as lines a person can act on: rule, help, and each element. */
export function describeViolations(label, violations) {
  const lines = [];
  for (const violation of violations) {
    lines.push(`${label}: ${violation.id} (${violation.impact}): ${violation.help} <${violation.helpUrl}>`);
    for (const node of violation.nodes) {
      lines.push(`  ${node.target}  ${node.html}`);
      if (node.summary) lines.push(`    ${node.summary.replace(/\n/g, '\n    ')}`);
    }
  }
  return lines.join('\n');
}

/**
 * Runs axe-core on `page` and fails, naming `label` (the page and its
 * state), each rule broken, its help text and every element, if anything
 * is found. For any new UI: show it, then `await axeCheck(page, 'what')`.
 */
export async function axeCheck(page, label) {
  const violations = await axeViolations(page);
  if (violations.length > 0) {
    throw new Error(`axe-core found violations\n${describeViolations(label, violations)}`);
  }
}
