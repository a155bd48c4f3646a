// people.test.mjs: people, not sockets (issue 12), in real Chromium
// against the real release server. A browser keeps its identity across a
// reload (its earlier messages stay "(you)" and its tag stays the same)
// and never puts the secret in a URL; two people with the same name are
// told apart by their tags; the reader edits and deletes their own
// messages from the page (with the keyboard), everyone sees it, and a
// reload shows it server-rendered; links open with the right `rel` while a
// `javascript:` "link" stays text; a mention is highlighted and, with the
// permission granted here, raises a desktop notification while the tab
// title counts the unread; a kick is shown and the room can be joined
// again. No page reports a CSP violation.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CharlaServer, WAIT_MS, activeView, enterRoom, launchBrowser, openPerson, say, waitConnected,
  waitForMembers, waitForMessages,
} from './helpers.mjs';

const TOKEN = 'people-test-token';

let server;
let browser;
const people = [];

before(async () => {
  server = await CharlaServer.start({ env: { CHARLA_API_TOKEN: TOKEN } });
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

/** The tags shown next to `name` in the member list, sorted. */
async function memberTags(page, name) {
  return page.locator('#member-list .member').evaluateAll((items, wanted) => items
    .filter((item) => item.querySelector('.member-name').textContent === wanted)
    .map((item) => item.querySelector('.tag').textContent)
    .sort(), name);
}

/** The `<li>` of the message with text `text` in the active room. */
function messageWithText(page, text) {
  return activeView(page).locator('.messages .message', {
    has: page.locator('.message-text', { hasText: text }),
  });
}

test('a reload keeps the identity: "(you)" on earlier messages, the same tag, no secret in any URL', { timeout: 90_000 }, async () => {
  const ana = await person();
  const urls = [];
  ana.page.on('websocket', (socket) => urls.push(socket.url()));
  await enterRoom(ana.page, server.url, 'ana', 'reload');
  await say(ana.page, 'before the reload');
  await waitForMessages(ana.page, ['before the reload']);
  await ana.page.waitForSelector('#identity-line:not([hidden])', { timeout: WAIT_MS });
  const identity = await ana.page.evaluate(() => JSON.parse(localStorage.getItem('charla.identity')));
  assert.match(identity.secret, /^[0-9a-f]{64}$/);
  assert.equal(await ana.page.locator('#own-tag').textContent(), `#${identity.id.slice(0, 4)}`);
  const first = messageWithText(ana.page, 'before the reload');
  assert.equal(await first.getAttribute('data-from-id'), identity.id);

  await ana.page.reload();
  await waitConnected(ana.page);
  await waitForMessages(ana.page, ['before the reload']);
  await say(ana.page, 'after the reload');
  await waitForMessages(ana.page, ['before the reload', 'after the reload']);
  // The server-rendered message is marked as the reader's, and the new
  // one comes from the same member id.
  const marks = await activeView(ana.page).locator('.messages .message').evaluateAll(
    (items) => items.map((item) => [item.classList.contains('own'), item.dataset.fromId]),
  );
  assert.deepEqual(marks, [[true, identity.id], [true, identity.id]]);
  assert.equal(
    await activeView(ana.page).locator('.message.own .author').first()
      .evaluate((node) => getComputedStyle(node, '::after').content),
    '" (you)"',
  );
  assert.deepEqual(await memberTags(ana.page, 'ana'), [`#${identity.id.slice(0, 4)}`]);
  assert.ok(await ana.page.locator('#member-list .member .you').count() === 1);
  assert.ok(urls.length >= 2, urls.join('\n'));
  for (const url of urls) assert.ok(!url.includes(identity.secret), `secret in ${url}`);
  assert.ok(!server.log.includes(identity.secret), 'the secret is in the server log');
  ana.assertClean();
});

test('two people named alike are told apart by their tags, live, in history and in the member list', { timeout: 90_000 }, async () => {
  const first = await person();
  const second = await person();
  await enterRoom(first.page, server.url, 'ana', 'namesakes');
  await say(first.page, 'I am the real ana');
  await waitForMessages(first.page, ['I am the real ana']);
  await enterRoom(second.page, server.url, 'ana', 'namesakes');
  await say(second.page, 'no, I am');
  await waitForMessages(first.page, ['I am the real ana', 'no, I am']);
  await waitForMessages(second.page, ['I am the real ana', 'no, I am']);

  for (const { page } of [first, second]) {
    await waitForMembers(page, ['ana', 'ana']);
    const tags = await memberTags(page, 'ana');
    assert.equal(tags.length, 2);
    assert.notEqual(tags[0], tags[1], 'namesakes share a tag');
    const shown = await activeView(page).locator('.messages .message').evaluateAll((items) => items
      .map((item) => [item.querySelector('.author').textContent, item.querySelector('.tag').textContent]));
    assert.equal(shown[0][0], shown[1][0]);
    assert.notEqual(shown[0][1], shown[1][1], 'the messages of namesakes share a tag');
    assert.deepEqual(shown.map(([, tag]) => tag).sort(), tags);
  }
  // Each sees only their own message as theirs.
  assert.deepEqual(
    await activeView(first.page).locator('.messages .message').evaluateAll((items) => items.map((i) => i.classList.contains('own'))),
    [true, false],
  );
  // The server-rendered history tells them apart too.
  const third = await person();
  await third.page.goto(`${server.url}/rooms/namesakes`);
  const rendered = await third.page.locator('.messages .message .tag').allTextContents();
  assert.equal(rendered.length, 2);
  assert.notEqual(rendered[0], rendered[1]);
  first.assertClean();
  second.assertClean();
});

test('edit and delete your own messages from the page, with the keyboard; everyone sees it, also after a reload', { timeout: 120_000 }, async () => {
  const ana = await person();
  const bruno = await person();
  await enterRoom(ana.page, server.url, 'ana', 'changes');
  await enterRoom(bruno.page, server.url, 'bruno', 'changes');
  await say(ana.page, 'helo everyone');
  await say(ana.page, 'a message to take back');
  await waitForMessages(bruno.page, ['helo everyone', 'a message to take back']);
  await say(bruno.page, 'hi ana');
  await waitForMessages(ana.page, ['helo everyone', 'a message to take back', 'hi ana']);

  // Only the author is offered the actions.
  assert.equal(await messageWithText(ana.page, 'hi ana').locator('.message-action').count(), 0);
  assert.equal(await messageWithText(bruno.page, 'helo everyone').locator('.message-action').count(), 0);

  // Edit: Tab from the composer's neighbourhood is long; focus the
  // message's Edit button the way Shift+Tab from the composer reaches it,
  // then drive it with keys only.
  const typo = messageWithText(ana.page, 'helo everyone');
  await typo.locator('.message-action', { hasText: 'Edit' }).focus();
  assert.equal(await typo.locator('.message-actions').evaluate((box) => getComputedStyle(box).opacity), '1');
  await ana.page.keyboard.press('Enter');
  const editor = typo.locator('.editor-input');
  await editor.waitFor({ timeout: WAIT_MS });
  assert.ok(await editor.evaluate((node) => node === document.activeElement), 'the editor has the focus');
  await ana.page.keyboard.press('Control+A');
  await ana.page.keyboard.type('hello everyone');
  await ana.page.keyboard.press('Enter');
  const expected = ['hello everyone', 'a message to take back', 'hi ana'];
  await waitForMessages(ana.page, expected);
  await waitForMessages(bruno.page, expected);
  for (const { page } of [ana, bruno]) {
    await messageWithText(page, 'hello everyone').locator('.edited').waitFor({ timeout: WAIT_MS });
  }

  // Delete: the button asks first; the answer is given with the keyboard.
  const doomed = messageWithText(ana.page, 'a message to take back');
  await doomed.locator('.message-action', { hasText: 'Delete' }).focus();
  await ana.page.keyboard.press('Enter');
  // The focus is on "Cancel": Escape keeps the message...
  await ana.page.keyboard.press('Escape');
  await doomed.locator('.message-action', { hasText: 'Delete' }).waitFor({ timeout: WAIT_MS });
  // ...and Delete, then Shift+Tab to "yes" and Enter, removes it.
  await ana.page.keyboard.press('Enter');
  await ana.page.keyboard.press('Shift+Tab');
  assert.equal(await ana.page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Yes, delete your message');
  await ana.page.keyboard.press('Enter');
  const tombstoned = ['hello everyone', 'This message was deleted.', 'hi ana'];
  await waitForMessages(ana.page, tombstoned);
  await waitForMessages(bruno.page, tombstoned);
  assert.equal(await activeView(bruno.page).locator('.message.deleted .message-action').count(), 0);

  // Ids are unaffected: the entries took the next ids, and the next
  // message follows them.
  await say(bruno.page, 'after the changes');
  await waitForMessages(ana.page, [...tombstoned, 'after the changes']);
  const ids = await activeView(ana.page).locator('.messages .message')
    .evaluateAll((items) => items.map((item) => Number(item.dataset.id)));
  assert.deepEqual(ids, [1, 2, 3, 6]);

  // The room page renders the messages as they are now, and the client
  // takes over from the last entry without a gap or a "restarted".
  await bruno.page.reload();
  await waitConnected(bruno.page);
  await waitForMessages(bruno.page, [...tombstoned, 'after the changes']);
  assert.equal(await messageWithText(bruno.page, 'hello everyone').locator('.edited').count(), 1);
  assert.equal(await activeView(bruno.page).locator('.divider').count(), 0);
  await say(ana.page, 'still one conversation');
  await waitForMessages(bruno.page, [...tombstoned, 'after the changes', 'still one conversation']);
  // The HTTP API agrees.
  const response = await fetch(`${server.url}/api/rooms/changes/messages`);
  const { messages } = await response.json();
  assert.equal(messages.find((m) => m.id === 1).text, 'hello everyone');
  assert.ok(messages.find((m) => m.id === 1).edited > 0);
  assert.equal(messages.find((m) => m.id === 2).deleted, true);
  ana.assertClean();
  bruno.assertClean();
});

test('links open with the right rel, a javascript: "link" stays text, no HTML ever', { timeout: 90_000 }, async () => {
  const ana = await person();
  const bruno = await person();
  await enterRoom(ana.page, server.url, 'ana', 'links');
  await enterRoom(bruno.page, server.url, 'bruno', 'links');
  const target = `${server.url}/rooms/elsewhere?from=link`;
  const text = `read ${target}, then javascript:alert(document.cookie) and <a href="javascript:alert(1)">x</a>`;
  await say(bruno.page, text);
  await waitForMessages(ana.page, [text]);
  const message = messageWithText(ana.page, 'read ');
  const links = await message.locator('a').evaluateAll((nodes) => nodes.map((a) => ({
    href: a.getAttribute('href'), rel: a.rel, target: a.target, text: a.textContent,
  })));
  assert.deepEqual(links, [{
    href: target, rel: 'noopener noreferrer nofollow ugc', target: '_blank', text: target,
  }]);
  assert.equal(await activeView(ana.page).locator('a[href^="javascript:"]').count(), 0);
  // The link opens in a new tab that cannot reach back to the chat.
  const [popup] = await Promise.all([
    ana.context.waitForEvent('page'),
    message.locator('a').click(),
  ]);
  await popup.waitForLoadState('domcontentloaded');
  assert.equal(popup.url(), target);
  assert.deepEqual(await popup.evaluate(() => [window.opener, document.referrer]), [null, '']);
  await popup.close();
  // The server-rendered page makes the same link.
  await ana.page.reload();
  await waitConnected(ana.page);
  assert.deepEqual(
    await messageWithText(ana.page, 'read ').locator('a').evaluateAll((nodes) => nodes.map((a) => [a.getAttribute('href'), a.rel])),
    [[target, 'noopener noreferrer nofollow ugc']],
  );
  ana.assertClean();
  bruno.assertClean();
});

test('a mention is highlighted and, once notifications are turned on, raises one; the title counts the unread', { timeout: 90_000 }, async () => {
  const ana = await person();
  await ana.context.grantPermissions(['notifications'], { origin: server.url });
  // Records each notification the page raises, then raises it for real.
  await ana.page.addInitScript(() => {
    const Native = window.Notification;
    window.__notifications = [];
    window.Notification = class extends Native {
      constructor(title, options) {
        super(title, options);
        window.__notifications.push({ title, body: options?.body });
      }
    };
  });
  const bruno = await person();
  await enterRoom(ana.page, server.url, 'ana', 'mentions');
  await enterRoom(bruno.page, server.url, 'bruno', 'mentions');

  // Nothing asks on load; the reader turns them on with the button.
  assert.equal(await ana.page.evaluate(() => window.__notifications.length), 0);
  await ana.page.click('#notify-on');
  await ana.page.waitForSelector('#notify-off:not([hidden])', { timeout: WAIT_MS });
  assert.equal(await ana.page.evaluate(() => localStorage.getItem('charla.notify')), 'mentions');

  // In view, a mention is highlighted but raises nothing.
  await say(bruno.page, 'hey @ana, welcome');
  await waitForMessages(ana.page, ['hey @ana, welcome']);
  const mention = messageWithText(ana.page, 'hey @ana');
  assert.equal(await mention.locator('mark.mention').textContent(), '@ana');
  assert.ok(await mention.evaluate((node) => node.classList.contains('mentions-me')));
  assert.equal(await messageWithText(bruno.page, 'hey @ana').locator('mark').count(), 0);

  // Ana looks at another room: a plain message only counts as unread; a
  // mention raises a notification.
  await ana.page.fill('#open-room-name', 'elsewhere');
  await ana.page.press('#open-room-name', 'Enter');
  await ana.page.waitForURL(`${server.url}/rooms/elsewhere`);
  await say(bruno.page, 'anyone around?');
  await say(bruno.page, '@Ana can you check the release?');
  await ana.page.waitForFunction(() => window.__notifications.length >= 1, null, { timeout: WAIT_MS });
  await ana.page.waitForFunction(() => document.title.startsWith('(2) '), null, { timeout: WAIT_MS });
  assert.deepEqual(await ana.page.evaluate(() => window.__notifications), [{
    title: 'bruno mentioned you in #mentions', body: '@Ana can you check the release?',
  }]);
  assert.equal(
    await ana.page.locator('#room-tabs li[data-room="mentions"] .unread').textContent(),
    '2',
  );
  // "Every message" notifies for the plain ones too.
  await ana.page.check('#notify-all');
  await say(bruno.page, 'plain news');
  await ana.page.waitForFunction(() => window.__notifications.length === 2, null, { timeout: WAIT_MS });
  assert.equal(await ana.page.evaluate(() => window.__notifications[1].title), 'bruno in #mentions');
  ana.assertClean();
  bruno.assertClean();
});

test('a kicked reader is told, is not rejoined by itself, and can join again', { timeout: 90_000 }, async () => {
  const ana = await person();
  const bruno = await person();
  await enterRoom(ana.page, server.url, 'ana', 'kicks');
  await enterRoom(bruno.page, server.url, 'bruno', 'kicks');
  await waitForMembers(bruno.page, ['ana', 'bruno']);
  const id = await ana.page.evaluate(() => JSON.parse(localStorage.getItem('charla.identity')).id);
  const response = await fetch(`${server.url}/api/rooms/kicks/kick`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ member: id, reason: 'cool off' }),
  });
  assert.deepEqual(await response.json(), { kicked: 1 });
  const notice = activeView(ana.page).locator('.divider.kicked');
  await notice.waitFor({ timeout: WAIT_MS });
  assert.match(await notice.textContent(), /A moderator removed you from this room\. Reason: cool off/);
  await waitForMembers(bruno.page, ['bruno']);
  await waitForMembers(ana.page, []);
  await notice.locator('button', { hasText: 'Join again' }).click();
  await waitForMembers(bruno.page, ['ana', 'bruno']);
  await say(ana.page, 'back, and calm');
  await waitForMessages(bruno.page, ['back, and calm']);
  ana.assertClean();
  bruno.assertClean();
});
