// chat.test.mjs: two people in real Chromium, against the real release
// server. They enter a room from the lobby, see each other in the member
// list, see each other typing, exchange messages; an HTML-looking message
// stays text and runs nothing (live and server-rendered); a reload resumes
// without duplicates; the room is readable with JavaScript off; the lobby's directory follows joins live; no page
// ever reports a CSP violation. Screenshots of the lobby and of the room
// are saved (see SCREENSHOT_DIR in helpers.mjs).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CharlaServer, WAIT_MS, activeView, enterRoom, launchBrowser, messageTexts, openPerson, say,
  screenshot, waitConnected, waitForMembers, waitForMessages,
} from './helpers.mjs';

const XSS = '<img src=x onerror=alert(1)>';

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

async function person(options) {
  const opened = await openPerson(browser, options);
  people.push(opened);
  return opened;
}

test('two people talk: members, typing hint, messages both ways', { timeout: 90_000 }, async () => {
  const ana = await person();
  const bruno = await person();
  await enterRoom(ana.page, server.url, 'ana', 'general');
  await enterRoom(bruno.page, server.url, 'bruno', 'general');

  await waitForMembers(ana.page, ['ana', 'bruno']);
  await waitForMembers(bruno.page, ['ana', 'bruno']);
  assert.equal(await ana.page.locator('#room-count').textContent(), '2');

  // Bruno types: Ana sees the hint, then the message replaces it.
  await activeView(bruno.page).locator('.composer-input').pressSequentially('Hola');
  await ana.page.waitForFunction(
    // The name is isolated (FSI … PDI) so right-to-left text in it cannot
    // reorder the sentence.
    () => document.querySelector('.room-view:not([hidden]) .typing')?.textContent === '\u2068bruno\u2069 is typing…',
    null,
    { timeout: WAIT_MS },
  );
  await activeView(bruno.page).locator('.composer-input').press('Enter');

  const conversation = [
    'Hola',
    'Hi Bruno! Is the release still on for Friday?',
    'Yes: the reconnect fix landed this morning, and the browser tests are green.',
    'Great. I will write the release notes tonight: https://example.com/charla/releases',
    'Perfect, @ana. Ping me here if anything looks odd.\nI will keep this room open.',
  ];
  await waitForMessages(ana.page, conversation.slice(0, 1));
  await say(ana.page, conversation[1]);
  await waitForMessages(bruno.page, conversation.slice(0, 2));
  await say(bruno.page, conversation[2]);
  await waitForMessages(ana.page, conversation.slice(0, 3));
  await say(ana.page, conversation[3]);
  await waitForMessages(bruno.page, conversation.slice(0, 4));
  await say(bruno.page, conversation[4]);
  await waitForMessages(ana.page, conversation);
  await waitForMessages(bruno.page, conversation);
  await ana.page.waitForFunction(
    () => document.querySelector('.room-view:not([hidden]) .typing')?.textContent === '',
    null,
    { timeout: WAIT_MS },
  );

  // Own messages are marked; nothing is left pending.
  assert.equal(await activeView(ana.page).locator('.message.own').count(), 2);
  assert.equal(await activeView(ana.page).locator('.pending-message').count(), 0);
  await activeView(ana.page).locator('.composer-input').fill('');
  await screenshot(ana.page, 'room.png');

  // The same room in dark mode and at phone width, for the eye.
  const dark = await person({ colorScheme: 'dark' });
  await enterRoom(dark.page, server.url, 'carla', 'general');
  await waitForMessages(dark.page, conversation);
  await screenshot(dark.page, 'room-dark.png');
  const phone = await person({ viewport: { width: 390, height: 760 }, isMobile: true, hasTouch: true });
  await enterRoom(phone.page, server.url, 'diego', 'general');
  await waitForMessages(phone.page, conversation);
  await screenshot(phone.page, 'room-phone.png');
  for (const p of [dark, phone]) {
    p.assertClean();
    await p.context.close();
  }

  ana.assertClean();
  bruno.assertClean();
});

test('the room page is readable with JavaScript off', { timeout: 30_000 }, async () => {
  const reader = await person({ javaScriptEnabled: false });
  await reader.page.goto(`${server.url}/rooms/general`);
  const texts = await reader.page.locator('.messages .message .message-text').allTextContents();
  assert.equal(texts.length, 5, 'the conversation above, rendered by the server');
  assert.equal(texts[0], 'Hola');
  const members = await reader.page.locator('#member-list .member-name').allTextContents();
  assert.ok(members.includes('ana') && members.includes('bruno'), JSON.stringify(members));
  assert.match(await reader.page.locator('.messages time').first().textContent(), /^\d\d:\d\d UTC$/);
  assert.ok(await reader.page.locator('.noscript').isVisible());
  assert.ok(await reader.page.locator('#connection').isHidden(), 'no "Connecting…" that never ends');
  reader.assertClean();
  await reader.context.close();
});

test('a message that looks like HTML is shown as text and runs nothing', { timeout: 60_000 }, async () => {
  const ana = await person();
  const bruno = await person();
  await enterRoom(ana.page, server.url, 'ana', 'xss');
  await enterRoom(bruno.page, server.url, 'bruno', 'xss');
  await say(ana.page, XSS);
  await say(ana.page, 'after');
  await waitForMessages(bruno.page, [XSS, 'after']);
  assert.equal(await bruno.page.locator('.messages img').count(), 0);

  // The server-rendered page escapes it too, and the live stream resumes
  // after it without repeating anything.
  await bruno.page.reload();
  await waitConnected(bruno.page);
  await say(ana.page, 'live after reload');
  await waitForMessages(bruno.page, [XSS, 'after', 'live after reload']);
  assert.equal(await bruno.page.locator('.messages img').count(), 0);
  assert.deepEqual(await messageTexts(bruno.page), [XSS, 'after', 'live after reload']);

  ana.assertClean();
  bruno.assertClean();
  // Leave, so the lobby screenshot below shows only the rooms people talk in.
  await ana.context.close();
  await bruno.context.close();
});

test('the lobby directory follows joins live, without a reload', { timeout: 60_000 }, async () => {
  const viewer = await person();
  await viewer.page.goto(`${server.url}/`);
  await waitConnected(viewer.page);
  await viewer.page.evaluate(() => { window.__sameDocument = true; });

  const carmen = await person();
  const dario = await person();
  await enterRoom(carmen.page, server.url, 'carmen', 'design');
  await viewer.page.waitForFunction(
    () => document.querySelector('#room-directory li[data-room="design"] .room-count')?.textContent === '1 online',
    null,
    { timeout: WAIT_MS },
  );
  await enterRoom(dario.page, server.url, 'dario', 'design');
  await viewer.page.waitForFunction(
    () => document.querySelector('#room-directory li[data-room="design"] .room-count')?.textContent === '2 online',
    null,
    { timeout: WAIT_MS },
  );
  assert.equal(await viewer.page.evaluate(() => window.__sameDocument), true, 'no reload happened');
  await viewer.page.fill('#join-name', 'eva');
  await screenshot(viewer.page, 'lobby.png');

  // Leaving is live too: Dario closes the page, the count drops.
  await dario.context.close();
  await viewer.page.waitForFunction(
    () => document.querySelector('#room-directory li[data-room="design"] .room-count')?.textContent === '1 online',
    null,
    { timeout: WAIT_MS },
  );
  viewer.assertClean();
  carmen.assertClean();
});

test('the CSP watcher does catch a violation (so silence means something)', { timeout: 30_000 }, async () => {
  const probe = await person();
  await probe.page.goto(`${server.url}/rooms/probe`);
  await waitConnected(probe.page);
  // The page's own listener resolves once the browser has reported the
  // violation; the watcher's listener (installed first) has run by then.
  const directive = await probe.page.evaluate(() => new Promise((resolve) => {
    document.addEventListener('securitypolicyviolation', (event) => resolve(event.effectiveDirective), { once: true });
    const script = document.createElement('script');
    script.textContent = 'window.__inline = true';
    document.body.append(script);
  }));
  assert.equal(directive, 'script-src-elem');
  assert.equal(await probe.page.evaluate(() => window.__inline), undefined, 'inline script blocked');
  assert.ok(
    probe.problems.some((p) => p.startsWith('CSP')),
    `expected a recorded violation, got ${JSON.stringify(probe.problems)}`,
  );
  probe.problems.length = 0;
});

test('names and messages are isolated: right-to-left text reorders nothing around it', { timeout: 60_000 }, async () => {
  const writer = await person();
  await enterRoom(writer.page, server.url, 'עדי', 'bidi');
  // A bidi override inside a message is text like any other; isolated, it
  // cannot flip the author or the time beside it.
  const text = 'שלום \u202Eevil\u202C end';
  await say(writer.page, text);
  await waitForMessages(writer.page, [text]);
  const isolatedLive = await writer.page.evaluate(() => {
    const nodes = [
      ...document.querySelectorAll('.room-view:not([hidden]) .message .author'),
      ...document.querySelectorAll('.room-view:not([hidden]) .message .message-text'),
      ...document.querySelectorAll('#member-list .member-name'),
    ];
    return nodes.map((n) => [n.className, n.dir, getComputedStyle(n).unicodeBidi]);
  });
  assert.ok(isolatedLive.length >= 3, JSON.stringify(isolatedLive));
  for (const [name, dir, bidi] of isolatedLive) {
    assert.equal(dir, 'auto', name);
    assert.equal(bidi, 'isolate', name);
  }
  // The same on the page the server renders.
  const reader = await person({ javaScriptEnabled: false });
  await reader.page.goto(`${server.url}/rooms/bidi`);
  const isolatedServed = await reader.page.evaluate(() =>
    [...document.querySelectorAll('.message .author, .message .message-text, .member-name')]
      .map((n) => [n.className, n.dir, getComputedStyle(n).unicodeBidi]));
  assert.ok(isolatedServed.length >= 3, JSON.stringify(isolatedServed));
  for (const [name, dir, bidi] of isolatedServed) {
    assert.equal(dir, 'auto', name);
    assert.equal(bidi, 'isolate', name);
  }
  writer.assertClean();
  reader.assertClean();
  await reader.context.close();
});
