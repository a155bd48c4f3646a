// rooms.test.mjs: the room page's own features in real Chromium: several
// rooms open at once with unread counts, restored from localStorage after a
// reload; a rename reaching the other member's list; "load older messages"
// through the history API below a server-rendered page; a message refused
// by flood control that is held, shown with a plain-words reason, kept
// across a reload, sent again, and never lost or doubled.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CharlaServer, WAIT_MS, activeView, enterRoom, launchBrowser, openPerson, say, waitConnected,
  waitForMembers, waitForMessages,
} from './helpers.mjs';

const API_TOKEN = 'browser-test-token';

let server;
let browser;
const people = [];

before(async () => {
  server = await CharlaServer.start({
    env: {
      CHARLA_API_TOKEN: API_TOKEN,
      // A small page history (so "load older" has work) and a tight flood
      // bucket (so a burst of six is refused in part).
      CHARLA_JOIN_HISTORY: '5',
      CHARLA_MSG_BURST: '3',
      CHARLA_MSG_RATE: '0.5',
    },
  });
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

async function post(room, from, text) {
  const response = await fetch(`${server.url}/api/rooms/${room}/messages`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ from, text }),
  });
  assert.equal(response.status, 201);
}

function tab(page, room) {
  return page.locator(`#room-tabs li[data-room="${room}"]`);
}

test('several rooms at once, with unread counts, kept across a reload', { timeout: 60_000 }, async () => {
  const ana = await person();
  const bruno = await person();
  await enterRoom(ana.page, server.url, 'ana', 'alpha');
  await ana.page.fill('#open-room-name', 'Beta');
  await ana.page.press('#open-room-name', 'Enter');
  await ana.page.waitForURL(`${server.url}/rooms/beta`);
  assert.equal(await ana.page.locator('#room-title').textContent(), '#beta');

  await enterRoom(bruno.page, server.url, 'bruno', 'alpha');
  await say(bruno.page, 'first in alpha');
  await say(bruno.page, 'second in alpha');
  await tab(ana.page, 'alpha').locator('.unread:not([hidden])').waitFor({ timeout: WAIT_MS });
  await ana.page.waitForFunction(
    () => document.querySelector('#room-tabs li[data-room="alpha"] .unread')?.textContent === '2',
    null,
    { timeout: WAIT_MS },
  );
  assert.match(await ana.page.title(), /^\(2\) #beta/);

  await tab(ana.page, 'alpha').locator('.room-tab').click();
  await ana.page.waitForURL(`${server.url}/rooms/alpha`);
  await waitForMessages(ana.page, ['first in alpha', 'second in alpha']);
  assert.equal(await tab(ana.page, 'alpha').locator('.unread').isHidden(), true);
  assert.equal(await ana.page.title(), '#alpha · Charla');

  // Both rooms come back after a reload, from localStorage.
  await ana.page.reload();
  await waitConnected(ana.page);
  assert.deepEqual(
    await ana.page.locator('#room-tabs li').evaluateAll((items) => items.map((i) => i.dataset.room)),
    ['alpha', 'beta'],
  );
  await waitForMessages(ana.page, ['first in alpha', 'second in alpha']);

  // A rename reaches the other member's list; closing a room forgets it.
  await ana.page.fill('#name-input', 'ana maría');
  await ana.page.press('#name-input', 'Enter');
  await waitForMembers(bruno.page, ['ana maría', 'bruno']);
  await tab(ana.page, 'beta').locator('.tab-close').click();
  assert.equal(await tab(ana.page, 'beta').count(), 0);
  assert.deepEqual(await ana.page.evaluate(() => JSON.parse(localStorage.getItem('charla.rooms'))), ['alpha']);
  assert.equal(await ana.page.evaluate(() => localStorage.getItem('charla.name')), 'ana maría');

  ana.assertClean();
  bruno.assertClean();
});

test('load older messages pages back through the history API', { timeout: 60_000 }, async () => {
  const texts = Array.from({ length: 12 }, (_, i) => `archived ${i + 1}`);
  for (const text of texts) await post('archive', 'archivist', text);
  const reader = await person();
  await reader.page.goto(`${server.url}/rooms/archive`);
  // Server-rendered: the newest five, readable before any script runs.
  await waitForMessages(reader.page, texts.slice(-5));
  await waitConnected(reader.page);
  const older = activeView(reader.page).locator('.load-older');
  await older.waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.equal(await activeView(reader.page).locator('.badge').first().textContent(), 'api');
  await older.click();
  await waitForMessages(reader.page, texts);
  await older.waitFor({ state: 'hidden', timeout: WAIT_MS });
  await activeView(reader.page).locator('.room-start').waitFor({ state: 'visible', timeout: WAIT_MS });
  reader.assertClean();
});

test('a message refused by flood control is held, explained and sent once', { timeout: 90_000 }, async () => {
  const ana = await person();
  const bruno = await person();
  await enterRoom(ana.page, server.url, 'ana', 'flood');
  await enterRoom(bruno.page, server.url, 'bruno', 'flood');
  const burst = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];
  for (const text of burst) await say(ana.page, text);
  await activeView(ana.page).locator('.composer-error', { hasText: 'faster than this server allows' })
    .waitFor({ timeout: WAIT_MS });
  assert.ok(await activeView(ana.page).locator('.pending-message[data-status="held"]').count() > 0);

  // A reload now keeps the held messages (and asks first); they go out
  // again with their refs, so none is stored twice.
  await ana.page.reload();
  assert.equal(ana.leaveWarnings.count, 1, 'the page asked before leaving');
  await waitConnected(ana.page);
  await waitForMessages(bruno.page, burst, 60_000);
  await waitForMessages(ana.page, burst, WAIT_MS);
  assert.equal(await activeView(ana.page).locator('.pending-message').count(), 0);
  await activeView(ana.page).locator('.composer-error').waitFor({ state: 'hidden', timeout: WAIT_MS });
  ana.assertClean();
  bruno.assertClean();
});
