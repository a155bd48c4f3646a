// a11y.test.mjs: every page passes axe-core's WCAG 2.0 and 2.1 A and AA
// rules (helpers.mjs, `axeCheck`), live and not only at first paint, and a
// room can be used from the keyboard alone with a visible focus ring.
//
// - Pages and states, in light and dark colour schemes, at desktop and
//   phone widths: the lobby (nobody chatting, then a live directory); a
//   room (members, messages, "load older", own messages, a typing hint, an
//   unread badge on another room's tab, the connection lost with a message
//   pending, and the "server restarted" divider once it is back); the 404
//   page; and the 5xx page, reached for real: a room page of a node whose
//   Redis is gone cannot read the room's history. At phone width the rooms
//   and members drawers are opened and checked too. With a mention in
//   view, every name is recoloured to each of the NAME_HUES colours in turn
//   and axe's colour-contrast rule run again: a name's colour is a hash of
//   a random id, so a run would otherwise see only some of them.
// - The keyboard walk: the skip link, sending, opening another room,
//   switching rooms, renaming, the member list, leaving a room; with real
//   key presses only, and every element Tab lands on must show a focus ring
//   that stands out (3:1) from what is behind it. WALK is a list of steps:
//   add new ones (editing a message, say) at the end.
//
// axe-core is the npm devDependency, evaluated in the page by the test;
// the page's CSP is unchanged, and `openPerson` still fails the test on any
// CSP violation (axe running included).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CharlaServer, RedisServer, WAIT_MS, activeView, axeViolations, describeViolations, enterRoom,
  launchBrowser, openPerson, say, waitConnected, waitForMembers, waitForMessages,
} from './helpers.mjs';
import { NAME_HUES } from '../../assets/js/format.js';

const API_TOKEN = 'a11y-test-token';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const VARIANTS = [
  { name: 'light, desktop', colorScheme: 'light', viewport: DESKTOP },
  { name: 'dark, desktop', colorScheme: 'dark', viewport: DESKTOP },
  { name: 'light, phone', colorScheme: 'light', viewport: PHONE },
  { name: 'dark, phone', colorScheme: 'dark', viewport: PHONE },
];

let browser;
const people = [];

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await closePeople();
  await browser?.close();
});

/** Closes everyone's browser context: each test ends with its people gone. */
async function closePeople() {
  for (const opened of people.splice(0)) await opened.context.close().catch(() => {});
}

async function person(options = {}) {
  const opened = await openPerson(browser, options);
  people.push(opened);
  return opened;
}

/**
 * Collects axe-core's findings over the states of one variant, so that one
 * run reports every page and state that fails, not only the first.
 */
class Audit {
  constructor(variant) {
    this.variant = variant;
    this.checked = [];
    this.found = [];
  }

  async check(page, state, rules = null) {
    const violations = await axeViolations(page, rules);
    this.checked.push(state);
    if (violations.length > 0) {
      this.found.push(describeViolations(`[${this.variant.name}] ${state}`, violations));
    }
  }

  /**
   * Checks a room page; where the rooms and members panels are drawers
   * (their toggles are shown), opens each, checks it, and closes it again.
   */
  async checkRoom(page, state, rules = null) {
    await this.check(page, state, rules);
    for (const drawer of ['rooms', 'members']) {
      if (!await isDrawer(page, drawer)) continue;
      await page.click(`#${drawer}-toggle`);
      await drawerPanel(page, drawer).waitFor({ state: 'visible', timeout: WAIT_MS });
      await this.check(page, `${state}, ${drawer} drawer open`, rules);
      await closeDrawer(page, drawer);
    }
  }

  /**
   * Checks the room's names in each of the NAME_HUES name colours. A member's
   * colour is a hash of their random id, so a run sees only some of them
   * by chance: here every element's `hue-N` class is set to each N in turn,
   * axe's colour-contrast rule runs (drawers too), and the classes go back.
   */
  async checkNameColours(page, state) {
    const count = await page.evaluate(() => {
      const named = [...document.querySelectorAll('[class*="hue-"]')];
      for (const element of named) element.dataset.a11yHue = element.className;
      return named.length;
    });
    assert.ok(count > 0, 'there are names to colour');
    try {
      for (let hue = 0; hue < NAME_HUES; hue += 1) {
        await page.evaluate((hue) => {
          for (const element of document.querySelectorAll('[data-a11y-hue]')) {
            element.className = element.dataset.a11yHue.replace(/\bhue-\d+\b/, `hue-${hue}`);
          }
        }, hue);
        await this.checkRoom(page, `${state}, every name in colour hue-${hue}`, ['color-contrast']);
      }
    } finally {
      await page.evaluate(() => {
        for (const element of document.querySelectorAll('[data-a11y-hue]')) {
          element.className = element.dataset.a11yHue;
          delete element.dataset.a11yHue;
        }
      });
    }
  }

  assertClean() {
    assert.ok(this.checked.length > 0, 'something was checked');
    if (this.found.length > 0) {
      throw new Error(`axe-core found violations:\n${this.found.join('\n')}`);
    }
  }
}

async function post(server, room, from, text) {
  const response = await fetch(`${server.url}/api/rooms/${room}/messages`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ from, text }),
  });
  assert.equal(response.status, 201);
}

function drawerPanel(page, drawer) {
  return page.locator(drawer === 'rooms' ? '#rooms-panel' : '#members-panel');
}

/**
 * Whether the rooms or members panel is a drawer at this width (it is
 * fixed to the side, shown by its toggle) rather than a column.
 */
function isDrawer(page, drawer) {
  return drawerPanel(page, drawer).evaluate((panel) => getComputedStyle(panel).position === 'fixed');
}

/** Whether `drawer` is the open one (it may still be sliding in). */
function isOpen(page, drawer) {
  return page.evaluate((which) => document.body.dataset.drawer === which, drawer);
}

/**
 * Closes the open drawer with Escape and waits until it has slid out: while
 * it slides, what is in it can still take the focus.
 */
async function closeDrawer(page, drawer) {
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.body.dataset.drawer, null, { timeout: WAIT_MS });
  await drawerPanel(page, drawer).waitFor({ state: 'hidden', timeout: WAIT_MS });
}

/** Opens the rooms drawer when the rooms panel is one (phone width). */
async function showRoomsPanel(page) {
  if (!await isDrawer(page, 'rooms') || await isOpen(page, 'rooms')) return;
  await page.click('#rooms-toggle');
  await drawerPanel(page, 'rooms').waitFor({ state: 'visible', timeout: WAIT_MS });
}

/** Opens `room` from the sidebar's "Open another room" form (the mouse way). */
async function openRoom(page, room) {
  await showRoomsPanel(page);
  await page.fill('#open-room-name', room);
  await page.click('#open-room button[type="submit"]');
  await page.waitForSelector(`.room-view[data-room="${room}"]:not([hidden])`, { timeout: WAIT_MS });
}

/**
 * Someone typing until `stop()`: keys go in a few at a time, so the page
 * keeps sending `typing` and the others keep showing the hint.
 */
function keepTyping(page) {
  let typing = true;
  const input = activeView(page).locator('.composer-input');
  const done = (async () => {
    while (typing) await input.pressSequentially('abc ', { delay: 100 });
    await input.fill('');
  })();
  return { async stop() { typing = false; await done; } };
}

/**
 * Once the server is back, presses "Retry now" whenever it shows (the
 * pause before the next try grows while the server is away) until the
 * page is connected.
 */
async function reconnectNow(page) {
  await page.waitForFunction(() => {
    const status = document.getElementById('connection');
    if (status.dataset.state === 'connected') return true;
    const retry = status.querySelector('.reconnect-now');
    if (!retry.hidden) retry.click();
    return false;
  }, null, { timeout: WAIT_MS, polling: 200 });
}

for (const variant of VARIANTS) {
  test(`every page and state passes axe-core (${variant.name})`, { timeout: 180_000 }, async () => {
    const audit = new Audit(variant);
    // In memory, so that a restart is one the page is told about.
    let server = await CharlaServer.start({
      env: {
        CHARLA_DATABASE: ':memory:',
        CHARLA_API_TOKEN: API_TOKEN,
        CHARLA_JOIN_HISTORY: '3',
        CHARLA_MSG_RATE: '0',
      },
    });
    try {
      const ana = await person({ colorScheme: variant.colorScheme, viewport: variant.viewport });
      const bruno = await person();
      const page = ana.page;

      // The lobby: first paint, then live with a room in the directory.
      await page.goto(`${server.url}/`);
      await waitConnected(page);
      await audit.check(page, 'lobby, nobody chatting');
      await enterRoom(bruno.page, server.url, 'bruno', 'general');
      for (const text of ['one', 'two', 'three']) await say(bruno.page, text);
      await post(server, 'general', 'deploy-bot', 'four, through the API');
      await page.waitForSelector('#room-directory li[data-room="general"]', { timeout: WAIT_MS });
      await page.waitForSelector('#directory-live:not([hidden])', { timeout: WAIT_MS });
      await audit.check(page, 'lobby, live directory');

      // A room, live: members, history with "load older", own messages.
      await enterRoom(page, server.url, 'ana', 'general');
      await waitForMembers(page, ['ana', 'bruno']);
      await activeView(page).locator('.load-older').waitFor({ timeout: WAIT_MS });
      await say(bruno.page, 'welcome, ana');
      await say(page, 'hello everyone');
      await waitForMessages(page, ['two', 'three', 'four, through the API', 'welcome, ana', 'hello everyone']);
      await audit.checkRoom(page, 'room, live');

      // People: a mention with a link, the reader's Edit and Delete shown,
      // the editor open, a delete being confirmed, an edited message and a
      // tombstone, notifications on, a kick's notice.
      await say(bruno.page, '@ana see https://example.com/notes');
      await activeView(page).locator('.message.mentions-me .message-link').waitFor({ timeout: WAIT_MS });
      const ownId = await activeView(page).locator('.message.own', { hasText: 'hello everyone' }).getAttribute('data-id');
      const own = activeView(page).locator(`.message[data-id="${ownId}"]`);
      await own.locator('.message-action', { hasText: 'Edit' }).focus();
      await audit.checkRoom(page, 'room, a mention, the actions of an own message');
      await audit.checkNameColours(page, 'room, a mention, the actions of an own message');
      // The audit may have opened and closed drawers: focus Edit again.
      await own.locator('.message-action', { hasText: 'Edit' }).press('Enter');
      await own.locator('.editor-input').waitFor({ timeout: WAIT_MS });
      await audit.checkRoom(page, 'room, editing a message');
      await own.locator('.editor-input').fill('hello, everyone');
      await own.locator('.editor-input').press('Enter');
      await own.locator('.edited').waitFor({ timeout: WAIT_MS });
      await own.locator('.message-action', { hasText: 'Delete' }).press('Enter');
      await own.locator('.message-actions.confirming').waitFor({ timeout: WAIT_MS });
      await audit.checkRoom(page, 'room, confirming a delete');
      await own.locator('.message-action[aria-label="Yes, delete your message"]').press('Enter');
      await activeView(page).locator('.message.deleted').waitFor({ timeout: WAIT_MS });
      await ana.context.grantPermissions(['notifications'], { origin: server.url });
      await showRoomsPanel(page);
      await page.click('#notify-on');
      await page.waitForSelector('#notify-off:not([hidden])', { timeout: WAIT_MS });
      if (await isOpen(page, 'rooms')) await closeDrawer(page, 'rooms');
      const id = await page.evaluate(() => JSON.parse(localStorage.getItem('charla.identity')).id);
      const kick = await fetch(`${server.url}/api/rooms/general/kick`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${API_TOKEN}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ member: id, reason: 'a test of the notice' }),
      });
      assert.equal(kick.status, 200);
      const notice = activeView(page).locator('.divider.kicked');
      await notice.waitFor({ timeout: WAIT_MS });
      await audit.checkRoom(page, 'room, edited, deleted, notifications on, kicked');
      await notice.locator('button').click();
      await waitForMembers(page, ['ana', 'bruno']);

      // Another room in view: an unread badge on the first, a typing hint.
      await openRoom(page, 'random');
      await say(page, 'anyone in random?');
      await waitForMessages(page, ['anyone in random?']);
      await say(bruno.page, 'are you there?');
      await page.locator('#room-tabs li[data-room="general"] .unread:not([hidden])').waitFor({ timeout: WAIT_MS });
      await openRoom(bruno.page, 'random');
      await waitForMembers(page, ['ana', 'bruno']);
      const typing = keepTyping(bruno.page);
      const hint = activeView(page).locator('.typing', { hasText: /is typing/ });
      try {
        await hint.waitFor({ timeout: WAIT_MS });
        await audit.checkRoom(page, 'room, unread badge and typing hint');
        assert.ok(await hint.isVisible(), 'the typing hint stayed while axe ran');
      } finally {
        await typing.stop();
      }

      // The connection lost, with a message waiting to go out.
      await server.stop();
      await page.waitForSelector('#connection[data-state="waiting"]', { timeout: WAIT_MS });
      await say(page, 'sent while offline');
      await activeView(page).locator('.pending-message', { hasText: 'sent while offline' }).waitFor({ timeout: WAIT_MS });
      await page.waitForSelector('#connection[data-state="waiting"] .reconnect-now:not([hidden])', { timeout: WAIT_MS });
      await audit.checkRoom(page, 'room, connection lost, a message pending');

      // Back, after a restart: the divider says so.
      server = await server.startAgain();
      await reconnectNow(page);
      await activeView(page).locator('.divider', { hasText: 'server restarted' }).waitFor({ timeout: WAIT_MS });
      await activeView(page).locator('.pending-message').waitFor({ state: 'detached', timeout: WAIT_MS });
      await audit.checkRoom(page, 'room, reconnected after a restart');

      // The 404 page.
      const missing = await page.goto(`${server.url}/no/such/page`);
      assert.equal(missing.status(), 404);
      await audit.check(page, '404 page');

      ana.assertClean();
      bruno.assertClean();
    } finally {
      await closePeople();
      await server.stop();
    }
    audit.assertClean();
  });
}

test('the 5xx page passes axe-core, in every variant', { timeout: 90_000 }, async () => {
  // A node whose Redis is gone cannot read a room's history: its room page
  // is the friendly 5xx page.
  const redis = await RedisServer.start();
  const server = await CharlaServer.start({ env: { CHARLA_REDIS_URL: redis.url } });
  try {
    await redis.stop();
    for (const variant of VARIANTS) {
      const audit = new Audit(variant);
      const reader = await person({ colorScheme: variant.colorScheme, viewport: variant.viewport });
      const response = await reader.page.goto(`${server.url}/rooms/general`);
      assert.equal(response.status(), 500);
      await reader.page.getByRole('heading', { name: 'Something went wrong' }).waitFor({ timeout: WAIT_MS });
      await audit.check(reader.page, '5xx page');
      reader.assertClean();
      audit.assertClean();
    }
  } finally {
    await closePeople();
    await server.stop();
    await redis.stop();
  }
});

// --- the keyboard walk ------------------------------------------------------

/**
 * What the focused element shows as its focus ring: its outline (or, when
 * it has none, its box-shadow), and how the ring's colour contrasts with
 * the first opaque background behind the element.
 */
function focusRing(page) {
  return page.evaluate(() => {
    const focused = document.activeElement;
    if (!focused || focused === document.body) return null;
    const parse = (color) => {
      const numbers = color.match(/[\d.]+/g)?.map(Number) ?? [];
      if (color.startsWith('color(srgb')) {
        const [r, g, b, a = 1] = numbers;
        return [r * 255, g * 255, b * 255, a];
      }
      const [r = 0, g = 0, b = 0, a = 1] = numbers;
      return [r, g, b, a];
    };
    const luminance = ([r, g, b]) => {
      const channel = (value) => {
        const c = value / 255;
        return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    let behind = [255, 255, 255, 1];
    for (let node = focused.parentElement; node; node = node.parentElement) {
      const color = parse(getComputedStyle(node).backgroundColor);
      if (color[3] === 1) { behind = color; break; }
    }
    const style = getComputedStyle(focused);
    const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 1;
    const ringColor = outline ? style.outlineColor : style.boxShadow.match(/(rgba?|color)\([^)]*\)/)?.[0];
    const ring = ringColor ? parse(ringColor) : null;
    const [light, dark] = ring
      ? [luminance(ring), luminance(behind)].sort((a, b) => b - a)
      : [0, 0];
    return {
      element: focused.outerHTML.slice(0, 120),
      focusVisible: focused.matches(':focus-visible'),
      outline: outline ? `${style.outlineWidth} ${style.outlineStyle} ${style.outlineColor}` : 'none',
      boxShadow: style.boxShadow,
      opaque: ring !== null && ring[3] === 1,
      contrast: ring ? (light + 0.05) / (dark + 0.05) : 0,
    };
  });
}

/** Fails unless the focused element shows a focus ring that stands out. */
async function assertFocusRing(page, where) {
  const ring = await focusRing(page);
  assert.ok(ring, `${where}: something has the focus`);
  assert.ok(ring.focusVisible, `${where}: ${ring.element} matches :focus-visible`);
  assert.ok(
    ring.outline !== 'none' || ring.boxShadow !== 'none',
    `${where}: ${ring.element} shows a focus ring`,
  );
  assert.ok(
    ring.opaque && ring.contrast >= 3,
    `${where}: the focus ring of ${ring.element} (${ring.outline}) contrasts 3:1 with its background (${ring.contrast.toFixed(2)})`,
  );
}

/** Most Tab presses to reach an element: every stop of the page and then some. */
const MAX_TABS = 60;

/**
 * Presses Tab (Shift+Tab when `backwards`) until the focused element
 * matches `selector`, checking the focus ring at every stop on the way.
 */
async function tabTo(page, selector, { backwards = false } = {}) {
  for (let presses = 0; presses < MAX_TABS; presses += 1) {
    await page.keyboard.press(backwards ? 'Shift+Tab' : 'Tab');
    const landed = await page.evaluate((wanted) => {
      const focused = document.activeElement;
      if (!focused || focused === document.body) return 'nothing';
      return focused.matches(wanted) ? 'target' : 'other';
    }, selector);
    if (landed === 'nothing') continue; // out of the page and back
    await assertFocusRing(page, `Tab towards ${selector}`);
    if (landed === 'target') return;
  }
  throw new Error(`${MAX_TABS} presses of Tab never reached ${selector}`);
}

/**
 * Opens a drawer from the keyboard when the panel is one (phone width):
 * Tab to its toggle, Enter. False when the panel is a column.
 */
async function openDrawerByKeyboard(page, drawer) {
  if (!await isDrawer(page, drawer)) return false;
  if (await isOpen(page, drawer)) return true;
  // One that just closed may still be sliding out.
  await drawerPanel(page, drawer).waitFor({ state: 'hidden', timeout: WAIT_MS });
  await tabTo(page, `#${drawer}-toggle`);
  await page.keyboard.press('Enter');
  await drawerPanel(page, drawer).waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.equal(await page.getAttribute(`#${drawer}-toggle`, 'aria-expanded'), 'true');
  return true;
}

function activeRoom(page) {
  return page.locator('#content').getAttribute('data-room');
}

/**
 * The walk: each step does with keys what a mouse can do in a room, and
 * checks the outcome. `walker` is { page, context, bruno, server, phone }. Steps
 * run in order, each from where the previous one left the focus.
 */
const WALK = [
  {
    name: 'the skip link leads to the room',
    async run({ page }) {
      // The page opens with the composer focused: back through every stop.
      await tabTo(page, '.skip-link', { backwards: true });
      assert.ok(await page.locator('.skip-link').isVisible(), 'the focused skip link shows');
      await page.keyboard.press('Enter');
      await tabTo(page, '#content *');
    },
  },
  {
    name: 'send a message',
    async run({ page }) {
      await tabTo(page, '.room-view:not([hidden]) .composer-input');
      await page.keyboard.type('typed, not clicked');
      await page.keyboard.press('Enter');
      await waitForMessages(page, ['from bruno', 'typed, not clicked']);
    },
  },
  {
    name: 'send with the Send button',
    async run({ page }) {
      await page.keyboard.type('sent with the button');
      await tabTo(page, '.room-view:not([hidden]) .send');
      await page.keyboard.press('Enter');
      await waitForMessages(page, ['from bruno', 'typed, not clicked', 'sent with the button']);
    },
  },
  {
    name: 'open another room',
    async run({ page }) {
      await openDrawerByKeyboard(page, 'rooms');
      await tabTo(page, '#open-room-name');
      await page.keyboard.type('random');
      await page.keyboard.press('Enter');
      await page.waitForSelector('.room-view[data-room="random"]:not([hidden])', { timeout: WAIT_MS });
      assert.equal(await activeRoom(page), 'random');
      assert.ok(
        await page.evaluate(() => document.activeElement.matches('.room-view:not([hidden]) .composer-input')),
        'the new room\'s composer has the focus',
      );
    },
  },
  {
    name: 'switch rooms',
    async run({ page }) {
      await openDrawerByKeyboard(page, 'rooms');
      await tabTo(page, '#room-tabs li[data-room="general"] .room-tab');
      await page.keyboard.press('Enter');
      await page.waitForSelector('.room-view[data-room="general"]:not([hidden])', { timeout: WAIT_MS });
      assert.equal(await activeRoom(page), 'general');
      assert.equal(new URL(page.url()).pathname, '/rooms/general');
    },
  },
  {
    name: 'rename',
    async run({ page, bruno }) {
      await openDrawerByKeyboard(page, 'rooms');
      await tabTo(page, '#name-input');
      await page.keyboard.press('ControlOrMeta+A');
      await page.keyboard.type('ana by keys');
      await page.keyboard.press('Enter');
      await waitForMembers(bruno, ['ana by keys', 'bruno']);
      await waitForMembers(page, ['ana by keys', 'bruno']);
      if (await isOpen(page, 'rooms')) {
        // Escape from inside the drawer: the focus goes back to its toggle.
        await closeDrawer(page, 'rooms');
        assert.equal(await page.evaluate(() => document.activeElement.id), 'rooms-toggle');
        await assertFocusRing(page, 'the rooms toggle, after Escape');
      }
    },
  },
  {
    name: 'reach the member list',
    async run({ page }) {
      const opened = await openDrawerByKeyboard(page, 'members');
      const names = page.locator('#member-list .member-name');
      await names.first().waitFor({ state: 'visible', timeout: WAIT_MS });
      assert.deepEqual((await names.allTextContents()).sort(), ['ana by keys', 'bruno']);
      if (opened) await closeDrawer(page, 'members');
    },
  },
  {
    name: 'edit your message',
    async run({ page, bruno }) {
      await tabTo(page, '.room-view:not([hidden]) .composer-input');
      // Back from the composer to the last own message's Edit.
      await tabTo(page, '.room-view:not([hidden]) .message.own:last-child .message-action', { backwards: true });
      await tabTo(page, '.room-view:not([hidden]) .message.own:last-child .message-action[aria-label="Edit your message"]', { backwards: true });
      await page.keyboard.press('Enter');
      await page.keyboard.press('ControlOrMeta+A');
      await page.keyboard.type('sent with the button, then edited');
      await page.keyboard.press('Enter');
      await waitForMessages(bruno, ['from bruno', 'typed, not clicked', 'sent with the button, then edited']);
    },
  },
  {
    name: 'delete your message',
    async run({ page, bruno }) {
      await tabTo(page, '.room-view:not([hidden]) .message.own:last-child .message-action[aria-label="Delete your message"]');
      await page.keyboard.press('Enter');
      await tabTo(page, '.message-action[aria-label="Yes, delete your message"]', { backwards: true });
      await page.keyboard.press('Enter');
      await waitForMessages(bruno, ['from bruno', 'typed, not clicked', 'This message was deleted.']);
    },
  },
  {
    name: 'turn on desktop notifications',
    async run({ page, context, server }) {
      await context.grantPermissions(['notifications'], { origin: server.url });
      await openDrawerByKeyboard(page, 'rooms');
      await tabTo(page, '#notify-on');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#notify-off:not([hidden])', { timeout: WAIT_MS });
      assert.equal(await page.evaluate(() => document.activeElement.id), 'notify-all');
      await page.keyboard.press('Space');
      assert.equal(await page.evaluate(() => localStorage.getItem('charla.notify')), 'all');
      if (await isOpen(page, 'rooms')) await closeDrawer(page, 'rooms');
    },
  },
  {
    name: 'leave a room',
    async run({ page }) {
      await openDrawerByKeyboard(page, 'rooms');
      await tabTo(page, '#room-tabs li[data-room="random"] .tab-close');
      await page.keyboard.press('Enter');
      await page.locator('#room-tabs li[data-room="random"]').waitFor({ state: 'detached', timeout: WAIT_MS });
      assert.equal(await activeRoom(page), 'general');
    },
  },
];

for (const viewport of [DESKTOP, PHONE]) {
  const width = viewport === PHONE ? 'phone' : 'desktop';
  test(`a room works from the keyboard alone, with a visible focus ring (${width})`, { timeout: 120_000 }, async () => {
    const server = await CharlaServer.start({ env: { CHARLA_MSG_RATE: '0' } });
    try {
      const bruno = await person();
      await enterRoom(bruno.page, server.url, 'bruno', 'general');
      await say(bruno.page, 'from bruno');
      const ana = await person({ viewport });
      const page = ana.page;
      await enterRoom(page, server.url, 'ana', 'general');
      await waitForMessages(page, ['from bruno']);
      await waitForMembers(page, ['ana', 'bruno']);
      const walker = {
        page, context: ana.context, bruno: bruno.page, server, phone: viewport === PHONE,
      };
      for (const step of WALK) {
        try {
          await step.run(walker);
        } catch (error) {
          throw new Error(`keyboard walk (${width}), step "${step.name}": ${error.message}`, { cause: error });
        }
      }
      ana.assertClean();
      bruno.assertClean();
    } finally {
      await closePeople();
      await server.stop();
    }
  });
}
