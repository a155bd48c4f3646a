// unavailable.test.mjs: a `say` the server could not store (a failing disk)
// is refused with `unavailable` (docs/protocol.md, rule 40): no ack, no
// broadcast. The page keeps the message pending, says why in plain words,
// sends it again by itself with the same ref, offers "Retry now", keeps
// newer messages behind it, and in the end the room has each message
// exactly once, in order. A `join` refused the same way (the room's
// history could not be read) is tried again by itself.
//
// A disk that fails on demand is not something a browser test can set up
// portably, so Ana's socket runs through playwright's routeWebSocket: the
// server is the real one, and the route answers her requests with the
// error the server sends for a failed read or write while the test wants it
// to. (tests/deploy/test_durability.py fails a real disk under the server.)

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CharlaServer, WAIT_MS, activeView, enterRoom, launchBrowser, messageIds, messageTexts,
  openPerson, say, waitForMessages,
} from './helpers.mjs';

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
  await server?.stop();
});

async function person() {
  const opened = await openPerson(browser);
  people.push(opened);
  return opened;
}

/**
 * Routes the page's socket to the real server, except that requests of the
 * types in `failing.refuse` are answered as the server answers a failed
 * write or read. `failing.sent` records every request, and whether it was
 * refused.
 */
async function routeThroughFailingDisk(page, refuse) {
  const failing = { refuse: new Set(refuse), sent: [] };
  await page.routeWebSocket(/\/ws/, (socket) => {
    const upstream = socket.connectToServer();
    socket.onMessage((message) => {
      const request = JSON.parse(message);
      const refused = failing.refuse.has(request.type);
      failing.sent.push({ ...request, refused });
      if (refused) {
        socket.send(JSON.stringify({
          type: 'error',
          code: 'unavailable',
          message: 'the message could not be stored and was not sent: try again',
          ref: request.ref,
        }));
        return;
      }
      upstream.send(message);
    });
  });
  return failing;
}

/** Every `say` of `text` the page sent. */
function saysOf(failing, text) {
  return failing.sent.filter((request) => request.type === 'say' && request.text === text);
}

/** Polls `condition` from the test's side until it holds. */
async function waitUntil(condition, what, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => { setTimeout(resolve, 20); });
  }
}

test('a message the server could not store stays pending, goes out again with its ref, and lands once', { timeout: 90_000 }, async () => {
  const ana = await person();
  const bruno = await person();
  const failing = await routeThroughFailingDisk(ana.page, ['say']);
  // Ana's timers are fake, so that the test can stop her clock before it
  // clicks "Retry now": no automatic retry can come first.
  await ana.page.clock.install();
  await enterRoom(ana.page, server.url, 'ana', 'disk');
  await enterRoom(bruno.page, server.url, 'bruno', 'disk');

  await say(ana.page, 'kept 1');
  await say(ana.page, 'kept 2');
  const view = activeView(ana.page);
  const held = view.locator('.pending-message[data-status="held"]', { hasText: 'kept 1' });
  await held.waitFor({ timeout: WAIT_MS });
  assert.match(await held.locator('.pending-status').textContent(), /cannot store messages right now/);
  await view.locator('.composer-error', { hasText: 'cannot store or load messages' }).waitFor({ timeout: WAIT_MS });
  assert.equal(await view.locator('.pending-message').count(), 2, 'both wait, in order');
  assert.deepEqual(await messageTexts(ana.page), []);

  // It is tried again by itself, with the same ref, while the disk fails.
  const tries = saysOf(failing, 'kept 1').length;
  await waitUntil(() => saysOf(failing, 'kept 1').length > tries, 'an automatic retry');
  assert.deepEqual(await messageTexts(bruno.page), [], 'nothing was broadcast');

  // The disk is back: "Retry now" does not wait for the pause to end. (Her
  // page stands still from here, so this waits on the test's side.)
  await ana.page.clock.pauseAt(Date.now() + 500);
  await waitUntil(async () => await held.count() === 1, 'the retry to be refused again');
  failing.refuse.clear();
  await held.getByRole('button', { name: 'Retry now' }).dispatchEvent('click');
  await waitUntil(
    () => failing.sent.some((request) => request.type === 'say' && !request.refused),
    'a send to the server',
  );
  await ana.page.clock.resume();
  await waitForMessages(bruno.page, ['kept 1', 'kept 2']);
  await waitForMessages(ana.page, ['kept 1', 'kept 2']);
  assert.equal(await view.locator('.pending-message').count(), 0);
  await view.locator('.composer-error').waitFor({ state: 'hidden', timeout: WAIT_MS });
  for (const text of ['kept 1', 'kept 2']) {
    const refs = new Set(saysOf(failing, text).map((request) => request.ref));
    assert.equal(refs.size, 1, `every send of ${text} carried one ref`);
  }

  // Barrier: anything stored twice would show before this.
  await say(bruno.page, 'barrier');
  await waitForMessages(ana.page, ['kept 1', 'kept 2', 'barrier']);
  await waitForMessages(bruno.page, ['kept 1', 'kept 2', 'barrier']);
  assert.deepEqual(await messageIds(bruno.page), [1, 2, 3]);
  ana.assertClean();
  bruno.assertClean();
});

test('a join the server could not serve is tried again by itself', { timeout: 60_000 }, async () => {
  const bruno = await person();
  await enterRoom(bruno.page, server.url, 'bruno', 'unreadable');
  await say(bruno.page, 'written before');
  await waitForMessages(bruno.page, ['written before']);

  const ana = await person();
  const failing = await routeThroughFailingDisk(ana.page, ['join']);
  await enterRoom(ana.page, server.url, 'ana', 'unreadable');
  const view = activeView(ana.page);
  await view.locator('.composer-error', { hasText: 'cannot store or load messages' }).waitFor({ timeout: WAIT_MS });

  // The history can be read again: the next try (after 1 s) gets it.
  failing.refuse.clear();
  await waitForMessages(ana.page, ['written before']);
  await view.locator('.composer-error').waitFor({ state: 'hidden', timeout: WAIT_MS });
  // Refused (once, or again if a try came before the test's change), then
  // served; nothing else joined.
  const refusals = failing.sent.filter((request) => request.type === 'join').map((request) => request.refused);
  assert.ok(refusals.length >= 2, JSON.stringify(refusals));
  assert.deepEqual(refusals, [...refusals.slice(0, -1).map(() => true), false]);

  await say(ana.page, 'joined after all');
  await waitForMessages(bruno.page, ['written before', 'joined after all']);
  await waitForMessages(ana.page, ['written before', 'joined after all']);
  ana.assertClean();
  bruno.assertClean();
});
