// facts.test.mjs: the page learns the server's limits from the server. A
// server configured away from the default room cap
// (CHARLA_MAX_ROOMS_PER_SESSION=2) renders that cap, with the contract's
// limits and the API sender id, as data-* attributes on <body>; the room
// page then holds the reader to it: a third room is refused in plain words
// and never remembered.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CharlaServer, WAIT_MS, enterRoom, launchBrowser, openPerson, waitConnected,
} from './helpers.mjs';

const MAX_ROOMS = 2;

let server;
let browser;
const people = [];

before(async () => {
  server = await CharlaServer.start({
    env: { CHARLA_MAX_ROOMS_PER_SESSION: String(MAX_ROOMS) },
  });
  browser = await launchBrowser();
});

after(async () => {
  for (const person of people) await person.context.close().catch(() => {});
  await browser?.close();
  await server?.stop();
});

test('the lobby and the room page carry the server facts on <body>', async () => {
  for (const path of ['/', '/rooms/general']) {
    const body = await (await fetch(`${server.url}${path}`)).text();
    const tag = body.match(/<body[^>]*>/)?.[0] ?? '';
    assert.match(tag, new RegExp(`data-max-rooms-per-session="${MAX_ROOMS}"`), path);
    assert.match(tag, /data-max-name-chars="32"/, path);
    assert.match(tag, /data-max-text-chars="4000"/, path);
    assert.match(tag, /data-max-room-chars="64"/, path);
    assert.match(tag, /data-api-sender-id="api"/, path);
  }
});

test('the room page keeps at most the configured number of rooms open', { timeout: 60_000 }, async () => {
  const ana = await openPerson(browser);
  people.push(ana);
  await enterRoom(ana.page, server.url, 'ana', 'one');
  await ana.page.fill('#open-room-name', 'two');
  await ana.page.press('#open-room-name', 'Enter');
  await ana.page.waitForURL(`${server.url}/rooms/two`);

  await ana.page.fill('#open-room-name', 'three');
  await ana.page.press('#open-room-name', 'Enter');
  await ana.page.waitForFunction(
    () => document.querySelector('#open-room .form-error')?.textContent !== '',
    null,
    { timeout: WAIT_MS },
  );
  assert.equal(
    await ana.page.locator('#open-room .form-error').textContent(),
    `You can keep at most ${MAX_ROOMS} rooms open. Close one first.`,
  );
  assert.equal(await ana.page.locator('#room-tabs li').count(), MAX_ROOMS);
  assert.equal(ana.page.url(), `${server.url}/rooms/two`);

  // What is remembered stays within the cap, across a reload too.
  await ana.page.reload();
  await waitConnected(ana.page);
  const remembered = await ana.page.evaluate(() => JSON.parse(localStorage.getItem('charla.rooms')));
  assert.deepEqual(remembered.sort(), ['one', 'two']);
  assert.equal(await ana.page.locator('#room-tabs li').count(), MAX_ROOMS);
  ana.assertClean();
});
