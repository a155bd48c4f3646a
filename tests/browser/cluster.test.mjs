// cluster.test.mjs: two Charla nodes on one Redis (the Redis engine,
// docs/protocol.md, "Many nodes (Redis)"), a person on each, in real
// Chromium. Ana's page talks to node A and Bruno's to node B; they are in
// the same room: each sees the other in the member list and each sees the
// other's messages, with the same ids on both pages. No page reports a CSP
// violation or an error.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CharlaServer, RedisServer, enterRoom, launchBrowser, messageIds, openPerson, say,
  waitForMembers, waitForMessages,
} from './helpers.mjs';

let redis;
let nodeA;
let nodeB;
let browser;
const people = [];

before(async () => {
  redis = await RedisServer.start();
  const env = { CHARLA_REDIS_URL: redis.url };
  nodeA = await CharlaServer.start({ env });
  nodeB = await CharlaServer.start({ env });
  browser = await launchBrowser();
});

after(async () => {
  for (const person of people) await person.context.close().catch(() => {});
  await browser?.close();
  await nodeA?.stop();
  await nodeB?.stop();
  await redis?.stop();
});

async function person(options) {
  const opened = await openPerson(browser, options);
  people.push(opened);
  return opened;
}

test('two people on two nodes talk both ways', { timeout: 60_000 }, async () => {
  assert.notEqual(nodeA.port, nodeB.port);
  const ana = await person();
  const bruno = await person();
  await enterRoom(ana.page, nodeA.url, 'ana', 'general');
  await enterRoom(bruno.page, nodeB.url, 'bruno', 'general');

  await waitForMembers(ana.page, ['ana', 'bruno']);
  await waitForMembers(bruno.page, ['ana', 'bruno']);
  assert.equal(await ana.page.locator('#room-count').textContent(), '2');
  assert.equal(await bruno.page.locator('#room-count').textContent(), '2');

  const conversation = [
    'Hola Bruno, I am on node A',
    'Hi Ana! Node B here, and I can read you.',
    'Then the Redis engine works both ways.',
  ];
  await say(ana.page, conversation[0]);
  await waitForMessages(bruno.page, conversation.slice(0, 1));
  await say(bruno.page, conversation[1]);
  await waitForMessages(ana.page, conversation.slice(0, 2));
  await say(ana.page, conversation[2]);
  await waitForMessages(bruno.page, conversation);
  await waitForMessages(ana.page, conversation);

  // One sequence of ids for the room, whichever node the message went through.
  assert.deepEqual(await messageIds(ana.page), [1, 2, 3]);
  assert.deepEqual(await messageIds(bruno.page), [1, 2, 3]);

  ana.assertClean();
  bruno.assertClean();
});
