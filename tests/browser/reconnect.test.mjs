// reconnect.test.mjs: the server is restarted (SIGTERM, then a new process
// on the same port) while Ana keeps sending. Both pages notice, show that
// they are reconnecting, and reconnect by themselves (no reload, no click).
// Ana's messages written while the server was down wait as pending and go
// out with their original refs on reconnect. Bruno ends with every message
// exactly once, in order, after a "server restarted" divider; a final
// message sent afterwards is the barrier that proves nothing else arrives.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CharlaServer, WAIT_MS, activeView, enterRoom, installSocketControls, launchBrowser,
  messageTexts, openPerson, say, waitConnected, waitForMessages,
} from './helpers.mjs';

/** Reconnects back off up to 30 s; after a quick restart a few tries suffice. */
const RECONNECT_WAIT_MS = 45_000;

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

async function waitDisconnected(page) {
  await page.waitForSelector(
    '#connection[data-state="waiting"], #connection[data-state="connecting"]',
    { timeout: WAIT_MS },
  );
}

test('a server restart loses nothing and doubles nothing', { timeout: 120_000 }, async () => {
  const ana = await openPerson(browser);
  const bruno = await openPerson(browser);
  people.push(ana, bruno);
  await enterRoom(ana.page, server.url, 'ana', 'ops');
  await enterRoom(bruno.page, server.url, 'bruno', 'ops');

  const before = ['one', 'two', 'three'];
  for (const text of before) await say(ana.page, text);
  await waitForMessages(bruno.page, before);

  const port = server.port;
  await server.stop();
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

  server = await CharlaServer.start({ port });
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
  await waitForMessages(ana.page, [...everything, 'barrier']);
  await waitForMessages(bruno.page, [...everything, 'barrier']);
  assert.deepEqual(await messageTexts(bruno.page), [...everything, 'barrier']);
  assert.match(
    await activeView(bruno.page).locator('.messages .divider').first().textContent(),
    /server restarted/,
  );

  ana.assertClean();
  bruno.assertClean();
});

test('after a restart, a sequence that already passed our last id is still caught', { timeout: 120_000 }, async () => {
  const ana = await openPerson(browser);
  const bruno = await openPerson(browser);
  people.push(ana, bruno);
  // Bruno's timers are fake, so his reconnect can wait until the test says.
  await bruno.page.clock.install();
  await enterRoom(ana.page, server.url, 'ana', 'overtaken');
  await enterRoom(bruno.page, server.url, 'bruno', 'overtaken');
  const old = ['old 1', 'old 2', 'old 3'];
  for (const text of old) await say(ana.page, text);
  await waitForMessages(bruno.page, old);

  // From here Bruno's time stands still: no timer of his fires (so no
  // reconnect attempt) until the test moves his clock on.
  await bruno.page.clock.pauseAt(Date.now() + 2_000);
  const port = server.port;
  await server.stop();
  await waitDisconnected(bruno.page);
  server = await CharlaServer.start({ port });
  await waitConnected(ana.page, RECONNECT_WAIT_MS);
  // The new server's ids run past 3 before Bruno is back: joining with
  // `after` = 3 alone would silently skip new messages 1 to 3.
  const fresh = ['new 1', 'new 2', 'new 3', 'new 4', 'new 5'];
  for (const text of fresh) await say(ana.page, text);
  await waitForMessages(ana.page, [...old, ...fresh]);

  await bruno.page.clock.fastForward(31_000); // past any backoff step
  await waitConnected(bruno.page, WAIT_MS);
  await waitForMessages(bruno.page, [...old, ...fresh]);
  assert.match(
    await activeView(bruno.page).locator('.messages .divider').first().textContent(),
    /server restarted/,
  );

  ana.assertClean();
  bruno.assertClean();
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
