// reconnect.test.mjs: the server is restarted (SIGTERM, then a new process
// on the same port) while Ana keeps sending. Both pages notice, show that
// they are reconnecting, and reconnect by themselves (no reload, no click).
// Ana's messages written while the server was down wait as pending and go
// out with their original refs on reconnect; a final message sent
// afterwards is the barrier that proves nothing else arrives.
//
// With the durable default (a SQLite file, the same one across the
// restart) nothing is missing: the new process renders the old history in
// the room page, the pages resume with the room's epoch and ids continue,
// with no divider. With `CHARLA_DATABASE=:memory:` the ids begin again: the
// page resumes with the epoch it saw, the server answers with another one
// and `complete: false`, and the page shows a "server restarted" divider
// before the new sequence, each message still exactly once. A page that
// knows no epoch (a server without them) still catches the restart by its
// one message of overlap. The last two tests cut the link without a
// restart.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CharlaServer, TestDatabase, WAIT_MS, activeView, enterRoom, installSocketControls,
  launchBrowser, messageIds, messageTexts, openPerson, recordFrames, say, waitConnected,
  waitForMessages,
} from './helpers.mjs';

/** Reconnects back off up to 30 s; after a quick restart a few tries suffice. */
const RECONNECT_WAIT_MS = 45_000;
/** The settings of a server whose ids begin again after a restart. */
const IN_MEMORY = { CHARLA_DATABASE: ':memory:' };

let server;
let browser;
const people = [];

before(async () => {
  server = await CharlaServer.start();
  browser = await launchBrowser();
});

after(async () => {
  for (const person of people) await person.context.close().catch(() => {});
  await browser?.close();
  await server?.kill();
});

async function person(options) {
  const opened = await openPerson(browser, options);
  people.push(opened);
  return opened;
}

/**
 * Runs `body(start)` against servers of its own: `start()` gives the first
 * one, on a database the test owns (or in memory with `env`), and
 * `server.startAgain()` restarts on the same one. Whatever runs at the end
 * is killed and the database removed, even when the test fails.
 */
async function withRestartableServer({ env } = {}, body) {
  const database = env ? undefined : await TestDatabase.create();
  let latest = null;
  const track = async (starting) => {
    latest = await starting;
    return latest;
  };
  try {
    await body({
      start: () => track(CharlaServer.start({ env, database })),
      restart: async (stopped) => track(stopped.startAgain()),
    });
  } finally {
    await latest?.kill();
    await database?.remove();
  }
}

async function waitDisconnected(page) {
  await page.waitForSelector(
    '#connection[data-state="waiting"], #connection[data-state="connecting"]',
    { timeout: WAIT_MS },
  );
}

/** The `join` requests the page sent for `room`, and the `joined` answers. */
function joinsOf(frames, room) {
  return {
    joins: frames.sent.filter((f) => f?.type === 'join' && f.room === room),
    answers: frames.received.filter((f) => f?.type === 'joined' && f.room === room),
  };
}

/** Texts the server renders in the room page (read with JavaScript off). */
async function renderedTexts(url, room) {
  const reader = await person({ javaScriptEnabled: false });
  await reader.page.goto(`${url}/rooms/${room}`);
  const texts = await reader.page.locator('.messages .message .message-text').allTextContents();
  const ids = await reader.page.locator('.messages .message')
    .evaluateAll((items) => items.map((item) => Number(item.dataset.id)));
  reader.assertClean();
  await reader.context.close();
  return { texts, ids };
}

function oneTo(count) {
  return Array.from({ length: count }, (_, i) => i + 1);
}

/**
 * Ana and Bruno talk, the server restarts, Ana writes while it is down and
 * once it is back. Returns what the test checks per mode.
 */
async function restartWhileTalking({ start, restart }, room) {
  let current = await start();
  const ana = await person();
  const bruno = await person();
  const brunoFrames = recordFrames(bruno.page);
  await enterRoom(ana.page, current.url, 'ana', room);
  await enterRoom(bruno.page, current.url, 'bruno', room);

  const before = ['one', 'two', 'three'];
  for (const text of before) await say(ana.page, text);
  await waitForMessages(bruno.page, before);

  await current.stop();
  await waitDisconnected(ana.page);
  await waitDisconnected(bruno.page);
  await bruno.page.waitForFunction(
    () => /Reconnecting/.test(document.querySelector('#connection .connection-text')?.textContent ?? ''),
    null,
    { timeout: WAIT_MS },
  );

  // Written while the server is down: shown as pending, not lost.
  const during = ['four (while down)', 'five (while down)'];
  for (const text of during) await say(ana.page, text);
  assert.equal(await activeView(ana.page).locator('.pending-message').count(), 2);

  current = await restart(current);
  const renderedAtRestart = await renderedTexts(current.url, room);
  await waitConnected(ana.page, RECONNECT_WAIT_MS);
  await waitConnected(bruno.page, RECONNECT_WAIT_MS);

  const afterwards = ['six (after)'];
  await say(ana.page, afterwards[0]);
  const everything = [...before, ...during, ...afterwards];
  await waitForMessages(bruno.page, everything, RECONNECT_WAIT_MS);
  await waitForMessages(ana.page, everything, RECONNECT_WAIT_MS);
  assert.equal(await activeView(ana.page).locator('.pending-message').count(), 0);

  // Barrier: anything duplicated would have arrived before this.
  await say(bruno.page, 'barrier');
  const all = [...everything, 'barrier'];
  await waitForMessages(ana.page, all);
  await waitForMessages(bruno.page, all);
  assert.deepEqual(await messageTexts(bruno.page), all);
  ana.assertClean();
  bruno.assertClean();
  return {
    current, ana, bruno, all, renderedAtRestart, joins: joinsOf(brunoFrames, room),
  };
}

test('a restart on the same database keeps the history: nothing lost, nothing doubled', { timeout: 120_000 }, async () => {
  await withRestartableServer({}, async (servers) => {
    const {
      current, ana, bruno, all, renderedAtRestart, joins,
    } = await restartWhileTalking(servers, 'ops');

    // The new process renders the history from before the restart.
    assert.deepEqual(renderedAtRestart.texts.slice(0, 3), ['one', 'two', 'three']);
    assert.deepEqual(renderedAtRestart.ids, oneTo(renderedAtRestart.ids.length));

    // Ids continue across the restart, and nothing says anything is missing.
    assert.deepEqual(await messageIds(bruno.page), oneTo(all.length));
    assert.deepEqual(await messageIds(ana.page), oneTo(all.length));
    assert.equal(await activeView(bruno.page).locator('.messages .divider').count(), 0);
    assert.equal(await activeView(ana.page).locator('.messages .divider').count(), 0);

    // Bruno resumed with the epoch the first `joined` named, one message
    // below his last id; the file keeps the epoch, so the answer is whole.
    const [first, resumed] = joins.answers;
    assert.equal(typeof first.epoch, 'string');
    assert.ok(first.epoch.length > 0);
    assert.equal(joins.joins.length, 2, JSON.stringify(joins.joins));
    assert.deepEqual(
      { after: joins.joins[1].after, epoch: joins.joins[1].epoch },
      { after: 2, epoch: first.epoch },
    );
    assert.equal(resumed.epoch, first.epoch);
    assert.equal(resumed.complete, true);

    // A reload after the restart: the page shows the whole conversation
    // rendered by the new process, and the live stream continues with the
    // next id, once.
    await bruno.page.reload();
    await waitForMessages(bruno.page, all);
    await waitConnected(bruno.page);
    await say(ana.page, 'after the reload');
    await waitForMessages(bruno.page, [...all, 'after the reload']);
    assert.deepEqual(await messageIds(bruno.page), oneTo(all.length + 1));
    const rendered = await renderedTexts(current.url, 'ops');
    assert.deepEqual(rendered.texts, [...all, 'after the reload']);
    bruno.assertClean();
  });
});

test('in memory, a restart is told by the epoch: a divider, nothing lost, nothing doubled', { timeout: 120_000 }, async () => {
  await withRestartableServer({ env: IN_MEMORY }, async (servers) => {
    const { bruno, all, joins } = await restartWhileTalking(servers, 'ops');
    const dividers = activeView(bruno.page).locator('.messages .divider');
    assert.equal(await dividers.count(), 1);
    assert.match(await dividers.first().textContent(), /server restarted/);
    // The new sequence begins again at 1, after the divider.
    assert.deepEqual(await messageIds(bruno.page), [1, 2, 3, ...oneTo(all.length - 3)]);

    // Bruno resumed with the old epoch; the new process named another one
    // and said the history is not complete. One join was enough.
    const [first, resumed] = joins.answers;
    assert.deepEqual(
      { after: joins.joins[1].after, epoch: joins.joins[1].epoch },
      { after: 2, epoch: first.epoch },
    );
    assert.notEqual(resumed.epoch, first.epoch);
    assert.equal(resumed.complete, false);
    assert.equal(joins.joins.length, 2, JSON.stringify(joins.joins));
  });
});

/**
 * Routes the page's socket through the test, which takes `epoch` out of
 * every `joined`; returns the frames as `recordFrames` does (a routed
 * socket is not reported to it).
 */
async function hideEpochsFrom(page) {
  const frames = { sent: [], received: [] };
  await page.routeWebSocket(/\/ws/, (socket) => {
    const upstream = socket.connectToServer();
    socket.onMessage((message) => {
      frames.sent.push(JSON.parse(message));
      upstream.send(message);
    });
    upstream.onMessage((message) => {
      const parsed = JSON.parse(message);
      if (parsed.type === 'joined') delete parsed.epoch;
      frames.received.push(parsed);
      socket.send(JSON.stringify(parsed));
    });
  });
  return frames;
}

/**
 * Bruno's clock stands still while the server restarts and the room gets
 * new messages past his last id; then he comes back. With `hideEpochs`,
 * his page never sees an epoch (as with a server that sends none), so only
 * the overlap can tell a restarted sequence from a continued one.
 */
async function overtaken({ start, restart }, { room, hideEpochs = false }) {
  let current = await start();
  const ana = await person();
  const bruno = await person();
  const brunoFrames = hideEpochs ? await hideEpochsFrom(bruno.page) : recordFrames(bruno.page);
  // Bruno's timers are fake, so his reconnect can wait until the test says.
  await bruno.page.clock.install();
  await enterRoom(ana.page, current.url, 'ana', room);
  await enterRoom(bruno.page, current.url, 'bruno', room);
  const old = ['old 1', 'old 2', 'old 3'];
  for (const text of old) await say(ana.page, text);
  await waitForMessages(bruno.page, old);

  // From here Bruno's time stands still: no timer of his fires (so no
  // reconnect attempt) until the test moves his clock on.
  await bruno.page.clock.pauseAt(Date.now() + 2_000);
  await current.stop();
  await waitDisconnected(bruno.page);
  current = await restart(current);
  await waitConnected(ana.page, RECONNECT_WAIT_MS);
  // The room's ids run past 3 before Bruno is back: in memory, joining with
  // `after` = 3 alone would silently skip new messages 1 to 3.
  const fresh = ['new 1', 'new 2', 'new 3', 'new 4', 'new 5'];
  for (const text of fresh) await say(ana.page, text);
  await waitForMessages(ana.page, [...old, ...fresh]);

  await bruno.page.clock.fastForward(31_000); // past any backoff step
  await waitConnected(bruno.page, WAIT_MS);
  await waitForMessages(bruno.page, [...old, ...fresh]);
  ana.assertClean();
  bruno.assertClean();
  return { bruno, count: old.length + fresh.length, joins: joinsOf(brunoFrames, room) };
}

test('in memory, a sequence that already passed our last id is caught by the epoch', { timeout: 120_000 }, async () => {
  await withRestartableServer({ env: IN_MEMORY }, async (servers) => {
    const { bruno, joins } = await overtaken(servers, { room: 'overtaken' });
    assert.match(
      await activeView(bruno.page).locator('.messages .divider').first().textContent(),
      /server restarted/,
    );
    assert.deepEqual(await messageIds(bruno.page), [1, 2, 3, 1, 2, 3, 4, 5]);
    // The answer to the resuming join was the new sequence: no second join.
    assert.equal(joins.joins.length, 2, JSON.stringify(joins.joins));
    assert.equal(joins.joins[1].epoch, joins.answers[0].epoch);
    assert.equal(joins.answers[1].complete, false);
  });
});

test('without an epoch, the overlap still catches a sequence that passed our last id', { timeout: 120_000 }, async () => {
  await withRestartableServer({ env: IN_MEMORY }, async (servers) => {
    const { bruno, joins } = await overtaken(servers, { room: 'overlap', hideEpochs: true });
    assert.match(
      await activeView(bruno.page).locator('.messages .divider').first().textContent(),
      /server restarted/,
    );
    assert.deepEqual(await messageIds(bruno.page), [1, 2, 3, 1, 2, 3, 4, 5]);
    // Resumed without an epoch (none was seen), then joined again without
    // `after` for the new sequence.
    assert.equal(joins.joins.length, 3, JSON.stringify(joins.joins));
    assert.equal(joins.joins[1].epoch, undefined);
    assert.equal(joins.joins[2].after, undefined);
  });
});

test('on the same database, a room that grew while we were away continues without a gap', { timeout: 120_000 }, async () => {
  await withRestartableServer({}, async (servers) => {
    const { bruno, count, joins } = await overtaken(servers, { room: 'continued' });
    assert.equal(await activeView(bruno.page).locator('.messages .divider').count(), 0);
    assert.deepEqual(await messageIds(bruno.page), oneTo(count));
    assert.equal(joins.joins[1].epoch, joins.answers[0].epoch);
    assert.deepEqual(
      { epoch: joins.answers[1].epoch, complete: joins.answers[1].complete },
      { epoch: joins.answers[0].epoch, complete: true },
    );
  });
});

test('a closed socket resumes without gap or duplicate', { timeout: 90_000 }, async () => {
  const ana = await openPerson(browser);
  const bruno = await openPerson(browser);
  people.push(ana, bruno);
  await installSocketControls(bruno.page);
  await enterRoom(ana.page, server.url, 'ana', 'cut');
  await enterRoom(bruno.page, server.url, 'bruno', 'cut');
  await say(ana.page, 'a1');
  await waitForMessages(bruno.page, ['a1']);

  // Bruno's socket closes under him (the server is fine); Ana keeps talking.
  await bruno.page.evaluate(() => window.__sockets.at(-1).close());
  for (const text of ['a2', 'a3', 'a4']) await say(ana.page, text);
  await waitConnected(bruno.page, RECONNECT_WAIT_MS);
  await say(bruno.page, 'b1');
  const all = ['a1', 'a2', 'a3', 'a4', 'b1'];
  await waitForMessages(ana.page, all);
  await waitForMessages(bruno.page, all);
  assert.equal(await activeView(bruno.page).locator('.messages .divider').count(), 0, 'nothing was missed');

  ana.assertClean();
  bruno.assertClean();
});

test('a dead link the browser has not noticed is found by the ping', { timeout: 90_000 }, async () => {
  const ana = await openPerson(browser);
  const bruno = await openPerson(browser);
  people.push(ana, bruno);
  await installSocketControls(bruno.page);
  // Bruno's timers are fake: the test moves his time on instead of waiting
  // out the 20 s of silence and 10 s of ping timeout.
  await bruno.page.clock.install();
  await enterRoom(ana.page, server.url, 'ana', 'silent');
  await enterRoom(bruno.page, server.url, 'bruno', 'silent');

  // The link goes silent both ways; the socket still looks open.
  await bruno.page.evaluate(() => window.__silence(window.__sockets.at(-1)));
  await say(ana.page, 'lost in the void?');
  assert.equal(await bruno.page.evaluate(() => window.__sockets.length), 1);

  await bruno.page.clock.fastForward(21_000); // silence: the client pings
  await bruno.page.clock.fastForward(11_000); // no pong: the link is dead
  await bruno.page.waitForSelector('#connection:not([data-state="connected"])', { timeout: WAIT_MS });
  await bruno.page.clock.fastForward(1_000); // first backoff step is at most 0.5 s
  await waitConnected(bruno.page, WAIT_MS);
  await waitForMessages(bruno.page, ['lost in the void?']);
  assert.equal(await bruno.page.evaluate(() => window.__sockets.length), 2, 'a new socket');

  ana.assertClean();
  bruno.assertClean();
});

test('a long resume comes in pages: nothing lost, nothing doubled', { timeout: 120_000 }, async () => {
  // Pages of 16 KiB (an eighth of the smallest queue): 40 messages of
  // 1,000 characters take three pages or more.
  const paged = await CharlaServer.start({
    env: { CHARLA_OUTBOX_BYTES: '131072', CHARLA_MSG_RATE: '0' },
  });
  try {
    const ana = await openPerson(browser);
    const bruno = await openPerson(browser);
    people.push(ana, bruno);
    await installSocketControls(bruno.page);
    const frames = recordFrames(bruno.page);
    await enterRoom(ana.page, paged.url, 'ana', 'long');
    await enterRoom(bruno.page, paged.url, 'bruno', 'long');
    await say(ana.page, 'first');
    await waitForMessages(bruno.page, ['first']);

    // Bruno's link goes quiet while Ana writes a lot; then it closes.
    await bruno.page.evaluate(() => window.__silence(window.__sockets.at(-1)));
    const texts = ['first'];
    for (let n = 1; n <= 40; n += 1) {
      const text = `${n} ${'x'.repeat(1000)}`;
      texts.push(text);
      await say(ana.page, text);
    }
    await waitForMessages(ana.page, texts);
    await bruno.page.evaluate(() => window.__sockets.at(-1).close());
    await waitConnected(bruno.page, RECONNECT_WAIT_MS);
    await say(ana.page, 'last');
    texts.push('last');
    await waitForMessages(bruno.page, texts);
    assert.deepEqual(await messageIds(bruno.page), oneTo(texts.length));
    const pages = frames.received.filter((f) => f?.type === 'joined' && f.more === true);
    assert.ok(pages.length >= 2, `the resume came in pages: ${pages.length} with more`);
    ana.assertClean();
    bruno.assertClean();
  } finally {
    await paged.stop();
  }
});
