// room.js: the room page (GET /rooms/{room}). It takes over the
// server-rendered room (its history, members and `data-last-id`), opens the
// other rooms the reader keeps open (remembered in localStorage), and
// draws everything ChatClient reports: messages, members and presence,
// typing hints, unread counts, pending messages and errors, the connection
// state.
//
// User text only ever reaches the page through `textContent`. Each room has
// its own view (a clone of the page's <template>), so drafts, scroll
// positions and "load older" state stay with their room.

import { ChatClient, fingerprint } from './chat.js';
import {
  GROUP_WINDOW_MS, displayName, errorWords, fullTime, hueOf, roomName, shortTime, textLength,
  typingSentence, MAX_TEXT_CHARS,
} from './format.js';
import { StatusIndicator } from './status.js';
import {
  MAX_OPEN_ROOMS, loadName, loadPending, loadRooms, loadSessions, saveName, savePending, saveRooms,
  saveSessions,
} from './storage.js';

/** Messages per "load older messages" page. */
const OLDER_PAGE = 50;
/** How long a typing hint stays after the last `typing` event. */
const TYPING_SHOW_MS = 3_000;
/** Within this distance of the bottom, the reader is "at the latest". */
const NEAR_BOTTOM_PX = 48;

const API_SENDER_ID = 'api';

const main = document.getElementById('content');
const roomTemplate = document.getElementById('room-view-template');
const tabList = document.getElementById('room-tabs');
const memberList = document.getElementById('member-list');
const memberCount = document.getElementById('members-count');
const roomCount = document.getElementById('room-count');
const roomTitle = document.getElementById('room-title');
const openRoomForm = document.getElementById('open-room');
const nameForm = document.getElementById('name-form');
const nameInput = document.getElementById('name-input');
const roomsToggle = document.getElementById('rooms-toggle');
const membersToggle = document.getElementById('members-toggle');
const unreadTotal = roomsToggle.querySelector('.unread-total');

/** room -> RoomView */
const views = new Map();
let active = null;

// --- small DOM helpers ---------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function nearBottom(scroller) {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= NEAR_BOTTOM_PX;
}

function localiseTime(time) {
  const ms = Date.parse(time.dateTime);
  if (Number.isNaN(ms)) return;
  time.textContent = shortTime(ms);
  time.title = fullTime(ms);
}

/** The `<li>` of one message: author, time, text; all text via textContent. */
function messageElement(message, own) {
  const item = element('li', `message hue-${hueOf(message.from.id)}`);
  if (own) item.classList.add('own');
  item.dataset.id = String(message.id);
  item.dataset.at = String(message.at);
  item.dataset.fromId = message.from.id;
  const meta = element('div', 'message-meta');
  meta.append(element('span', 'author', message.from.name));
  if (message.from.id === API_SENDER_ID) {
    const badge = element('span', 'badge', 'api');
    badge.title = 'Posted through the HTTP API';
    meta.append(badge);
  }
  const time = element('time');
  time.dateTime = new Date(message.at).toISOString();
  localiseTime(time);
  meta.append(time);
  item.append(meta, element('p', 'message-text', message.text));
  return item;
}

/** Marks a message that continues its sender's previous one (no header). */
function regroup(item) {
  if (!item?.classList.contains('message')) return;
  const previous = item.previousElementSibling;
  const continues = previous?.classList.contains('message')
    && previous.dataset.fromId === item.dataset.fromId
    && Number(item.dataset.at) - Number(previous.dataset.at) < GROUP_WINDOW_MS;
  item.classList.toggle('continued', Boolean(continues));
}

// --- one room's view ------------------------------------------------------

class RoomView {
  constructor(room, section, tab) {
    this.room = room;
    this.section = section;
    this.tab = tab;
    this.scroller = section.querySelector('.scroller');
    this.list = section.querySelector('.messages');
    this.pendingList = section.querySelector('.pending');
    this.typingLine = section.querySelector('.typing');
    this.composer = section.querySelector('.composer');
    this.input = section.querySelector('.composer-input');
    this.sendButton = section.querySelector('.send');
    this.errorLine = section.querySelector('.composer-error');
    this.olderButton = section.querySelector('.load-older');
    this.roomStart = section.querySelector('.room-start');
    this.jumpButton = section.querySelector('.jump-latest');
    this.unreadBadge = tab.querySelector('.unread');
    this.unread = 0;
    this.hiddenUnread = 0;
    /** Whether the reader is at the latest message (kept while hidden). */
    this.stuck = true;
    /** Set after a server restart: older pages would come from the new ids. */
    this.sequenceBroken = false;
    this.typers = new Map();
    this.pendingItems = new Map();
    this.wire();
  }

  wire() {
    this.composer.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener('keydown', (event) => {
      // Enter sends, Shift+Enter makes a new line; never mid-composition
      // (IME input for Japanese, Chinese, ...).
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener('input', () => {
      if (this.input.value.trim()) client.typing(this.room);
      if (this.errorLine.dataset.kind === 'local') this.showError('');
    });
    this.scroller.addEventListener('scroll', () => {
      this.stuck = nearBottom(this.scroller);
      if (this.stuck) this.jumpButton.hidden = true;
    }, { passive: true });
    this.jumpButton.addEventListener('click', () => this.scrollToLatest());
    this.olderButton.addEventListener('click', () => this.loadOlder());
  }

  get visible() {
    return active === this.room;
  }

  send() {
    const text = this.input.value;
    if (!text.trim()) return;
    const length = textLength(text);
    if (length > MAX_TEXT_CHARS) {
      this.showError(`Messages are at most ${MAX_TEXT_CHARS} characters; this one has ${length}.`, 'local');
      return;
    }
    client.say(this.room, text);
    this.input.value = '';
    this.input.focus();
  }

  showError(text, kind = 'server') {
    this.errorLine.textContent = text;
    this.errorLine.dataset.kind = kind;
  }

  scrollToLatest() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.stuck = true;
    this.jumpButton.hidden = true;
  }

  /** Runs `change` (which adds to the list) and keeps the reader's place. */
  adding(change, { forceScroll = false } = {}) {
    const stick = this.visible ? nearBottom(this.scroller) : this.stuck;
    change();
    if (stick || forceScroll) {
      if (this.visible) this.scrollToLatest();
      else this.stuck = true;
    } else if (this.visible) {
      this.jumpButton.hidden = false;
    }
  }

  appendMessage(message, own) {
    this.clearTyper(message.from.id);
    this.adding(() => {
      const item = messageElement(message, own);
      this.list.append(item);
      regroup(item);
    }, { forceScroll: own });
    if (!this.visible) {
      this.unread += 1;
      updateUnread(this);
    } else if (document.visibilityState === 'hidden') {
      this.hiddenUnread += 1;
      updateTitle();
    }
  }

  appendDivider(text) {
    this.adding(() => {
      const divider = element('li', 'divider', text);
      divider.setAttribute('role', 'separator');
      this.list.append(divider);
    });
  }

  /** Shows "load older messages" when the first message shown is not #1. */
  updateOlder() {
    const first = this.list.querySelector('.message');
    const older = !this.sequenceBroken && first !== null && Number(first.dataset.id) > 1;
    this.olderButton.hidden = !older;
    this.roomStart.hidden = older || this.sequenceBroken;
  }

  async loadOlder() {
    const first = this.list.querySelector('.message');
    if (!first || this.sequenceBroken) return;
    const before = Number(first.dataset.id);
    this.olderButton.disabled = true;
    this.olderButton.textContent = 'Loading…';
    try {
      const url = `/api/rooms/${encodeURIComponent(this.room)}/messages?before=${before}&limit=${OLDER_PAGE}`;
      const response = await fetch(url, { headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const page = await response.json();
      // Keep what the reader is looking at in place while the list grows
      // above it.
      const height = this.scroller.scrollHeight;
      const top = this.scroller.scrollTop;
      const fragment = document.createDocumentFragment();
      for (const message of page.messages) {
        if (message.id < before) fragment.append(messageElement(message, client.isOwn(message.from)));
      }
      const added = [...fragment.children];
      this.list.insertBefore(fragment, first);
      for (const item of added) regroup(item);
      regroup(first);
      this.scroller.scrollTop = top + (this.scroller.scrollHeight - height);
      if (page.messages.length < OLDER_PAGE) {
        this.olderButton.hidden = true;
        this.roomStart.hidden = false;
      } else {
        this.updateOlder();
      }
    } catch {
      this.showError('Older messages could not be loaded. Try again in a moment.', 'local');
    } finally {
      this.olderButton.disabled = false;
      this.olderButton.textContent = 'Load older messages';
    }
  }

  // Typing hints: one entry per member, each expiring on its own.
  showTyper(member) {
    const previous = this.typers.get(member.id);
    if (previous) window.clearTimeout(previous.timer);
    const timer = window.setTimeout(() => this.clearTyper(member.id), TYPING_SHOW_MS);
    this.typers.set(member.id, { name: member.name, timer });
    this.renderTypers();
  }

  clearTyper(id) {
    const typer = this.typers.get(id);
    if (!typer) return;
    window.clearTimeout(typer.timer);
    this.typers.delete(id);
    this.renderTypers();
  }

  renderTypers() {
    this.typingLine.textContent = typingSentence([...this.typers.values()].map((t) => t.name));
  }

  // Pending messages: shown under the list until the room has them.
  renderPending(item) {
    let entry = this.pendingItems.get(item.ref);
    if (!entry) {
      const node = element('li', 'pending-message');
      const text = element('p', 'message-text', item.text);
      const status = element('p', 'pending-status');
      const actions = element('div', 'pending-actions');
      node.append(text, status, actions);
      entry = { node, status, actions };
      this.pendingItems.set(item.ref, entry);
      this.adding(() => this.pendingList.append(node), { forceScroll: true });
    }
    entry.node.dataset.status = item.status;
    entry.status.textContent = pendingWords(item);
    entry.actions.replaceChildren();
    if (item.status === 'failed') {
      entry.actions.append(
        actionButton('Retry', () => client.retry(item.ref)),
        actionButton('Edit', () => {
          this.input.value = item.text;
          this.input.focus();
          client.discard(item.ref);
        }),
        actionButton('Discard', () => client.discard(item.ref)),
      );
    }
    if (item.error) this.showError(errorWords(item.error.code, item.error.message));
  }

  removePending(item) {
    const entry = this.pendingItems.get(item.ref);
    if (!entry) return;
    entry.node.remove();
    this.pendingItems.delete(item.ref);
  }
}

function actionButton(label, onClick) {
  const button = element('button', 'link-button', label);
  button.type = 'button';
  button.addEventListener('click', onClick);
  return button;
}

function pendingWords(item) {
  switch (item.status) {
    case 'queued': return client.connected ? 'Sending…' : 'Not sent yet: will be sent when the connection is back.';
    case 'sent': return 'Sending…';
    case 'acked': return 'Sent.';
    case 'held': return 'Waiting a moment: you are sending faster than the server allows.';
    case 'failed': return `Not sent: ${errorWords(item.error?.code, item.error?.message)}`;
    default: return '';
  }
}

// --- tabs, activation, members --------------------------------------------

function tabElement(room) {
  const item = element('li');
  item.dataset.room = room;
  const link = element('a', 'room-tab');
  link.href = `/rooms/${room}`;
  link.append(element('span', 'room-tab-name', `#${room}`));
  item.append(link);
  return item;
}

/** Adds the unread badge and the close button to a tab. */
function completeTab(item, room) {
  const link = item.querySelector('.room-tab');
  if (!link.querySelector('.unread')) {
    const badge = element('span', 'unread');
    badge.hidden = true;
    link.append(badge);
  }
  const close = element('button', 'tab-close', '×');
  close.type = 'button';
  close.setAttribute('aria-label', `Leave #${room}`);
  close.title = `Leave #${room}`;
  close.addEventListener('click', () => closeRoom(room));
  item.append(close);
  link.addEventListener('click', (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    activate(room, { push: true });
    setDrawer(null);
  });
}

function updateUnread(view) {
  view.unreadBadge.hidden = view.unread === 0;
  view.unreadBadge.textContent = view.unread > 99 ? '99+' : String(view.unread);
  view.unreadBadge.setAttribute('aria-label', `${view.unread} unread`);
  updateTitle();
}

function updateTitle() {
  let total = 0;
  for (const view of views.values()) total += view.unread + view.hiddenUnread;
  document.title = `${total ? `(${total}) ` : ''}#${active} · Charla`;
  let others = 0;
  for (const view of views.values()) others += view.unread;
  unreadTotal.hidden = others === 0;
  unreadTotal.textContent = String(others);
}

function activate(room, { push = false } = {}) {
  const view = views.get(room);
  if (!view) return;
  active = room;
  for (const other of views.values()) {
    other.section.hidden = other !== view;
    const link = other.tab.querySelector('.room-tab');
    if (other === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  view.unread = 0;
  view.hiddenUnread = 0;
  updateUnread(view);
  roomTitle.textContent = `#${room}`;
  main.dataset.room = room;
  if (view.stuck) view.scrollToLatest();
  renderMembers();
  const path = `/rooms/${room}`;
  if (push && window.location.pathname !== path) window.history.pushState({ room }, '', path);
  view.input.focus({ preventScroll: true });
}

function renderMembers() {
  const state = client.rooms.get(active);
  const members = state ? [...state.members] : [];
  members.sort(([idA, a], [idB, b]) => a.localeCompare(b) || idA.localeCompare(idB));
  const items = members.map(([id, name]) => {
    const item = element('li', `member hue-${hueOf(id)}`);
    item.dataset.id = id;
    const presence = element('span', 'presence');
    presence.setAttribute('aria-hidden', 'true');
    item.append(presence, element('span', 'member-name', name));
    if (client.ownSessions.has(id)) item.append(element('span', 'you', '(you)'));
    return item;
  });
  memberList.replaceChildren(...items);
  memberCount.textContent = String(members.length);
  roomCount.textContent = String(members.length);
}

function openRoom(room, { activateIt = true } = {}) {
  if (!views.has(room)) {
    if (views.size >= MAX_OPEN_ROOMS) {
      showFormError(openRoomForm, `You can keep at most ${MAX_OPEN_ROOMS} rooms open. Close one first.`);
      return;
    }
    createView(room);
    client.open(room);
    rememberRooms();
  }
  if (activateIt) activate(room, { push: true });
}

function closeRoom(room) {
  const view = views.get(room);
  if (!view) return;
  client.close(room);
  view.section.remove();
  view.tab.remove();
  views.delete(room);
  rememberRooms();
  if (active === room) {
    const next = views.keys().next();
    if (next.done) {
      window.location.assign('/');
      return;
    }
    activate(next.value, { push: true });
  }
  updateTitle();
}

function rememberRooms() {
  saveRooms([...views.keys()]);
}

function createView(room) {
  const section = roomTemplate.content.firstElementChild.cloneNode(true);
  section.dataset.room = room;
  section.setAttribute('aria-label', `#${room}`);
  section.hidden = true;
  const id = `composer-${room}`;
  section.querySelector('.composer-input').id = id;
  section.querySelector('.composer-input').placeholder = `Message #${room}`;
  const label = section.querySelector('.composer label');
  label.htmlFor = id;
  label.textContent = `Message #${room}`;
  section.querySelector('.messages').setAttribute('aria-label', `Messages in #${room}`);
  section.querySelector('.room-start-name').textContent = `#${room}`;
  main.append(section);
  const tab = tabElement(room);
  tabList.append(tab);
  completeTab(tab, room);
  const view = new RoomView(room, section, tab);
  views.set(room, view);
  return view;
}

function showFormError(form, text) {
  form.querySelector('.form-error').textContent = text;
}

// --- drawers (phone width) ---------------------------------------------------

function setDrawer(which) {
  document.body.dataset.drawer = which ?? '';
  roomsToggle.setAttribute('aria-expanded', String(which === 'rooms'));
  membersToggle.setAttribute('aria-expanded', String(which === 'members'));
}

roomsToggle.addEventListener('click', () => {
  setDrawer(document.body.dataset.drawer === 'rooms' ? null : 'rooms');
});
membersToggle.addEventListener('click', () => {
  setDrawer(document.body.dataset.drawer === 'members' ? null : 'members');
});
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && document.body.dataset.drawer) setDrawer(null);
});
document.addEventListener('click', (event) => {
  // A tap outside an open drawer closes it, like on any phone app.
  if (!document.body.dataset.drawer) return;
  if (event.target.closest('.sidebar, .members, .drawer-toggle')) return;
  setDrawer(null);
});

// --- what the client reports ------------------------------------------------

const status = new StatusIndicator(document.getElementById('connection'), {
  onRetry: () => client.reconnectNow(),
});

function onEvent(type, detail) {
  const view = detail.room ? views.get(detail.room) : detail.item ? views.get(detail.item.room) : null;
  switch (type) {
    case 'state':
      status.show(detail);
      for (const v of views.values()) {
        for (const item of client.pending) if (item.room === v.room) v.renderPending(item);
      }
      break;
    case 'welcome':
      saveSessions(client.ownSessions);
      if (document.activeElement !== nameInput) nameInput.value = detail.name;
      renderMembers();
      break;
    case 'joined':
      if (!view) break;
      view.list.setAttribute('aria-busy', 'true');
      if (detail.gap) view.appendDivider('Some messages are missing here: the server no longer has them.');
      if (view.errorLine.dataset.kind === 'room') view.showError('');
      break;
    case 'restarted':
      if (!view) break;
      view.sequenceBroken = true;
      view.appendDivider('The server restarted: some messages may be missing.');
      view.updateOlder();
      if (detail.room === active) renderMembers();
      break;
    case 'message':
      view?.appendMessage(detail.message, detail.own);
      break;
    case 'presence':
      if (detail.room === active) renderMembers();
      if (detail.event === 'leave') view?.clearTyper(detail.member.id);
      break;
    case 'typing':
      view?.showTyper(detail.member);
      break;
    case 'pending':
      view?.renderPending(detail.item);
      break;
    case 'confirmed':
      view?.removePending(detail.item);
      if (view?.errorLine.dataset.kind === 'server') view.showError('');
      break;
    case 'discarded':
      view?.removePending(detail.item);
      break;
    case 'room-error':
      view?.showError(errorWords(detail.code, detail.message), 'room');
      break;
    case 'name':
      if (document.activeElement !== nameInput) nameInput.value = detail.name;
      break;
    case 'name-error':
      showFormError(nameForm, errorWords(detail.code, detail.message));
      break;
    case 'notice':
      views.get(active)?.showError(errorWords(detail.code, detail.message));
      break;
    default:
      break;
  }
  // A `joined` ends with its messages delivered: members and "older" state
  // are final once the event has been handled, so finish after the switch.
  if (type === 'joined' && view) queueMicrotask(() => finishJoin(view));
  if (type === 'pending' || type === 'confirmed' || type === 'discarded') savePending(client.pending);
}

function finishJoin(view) {
  view.list.removeAttribute('aria-busy');
  view.updateOlder();
  if (view.room === active) renderMembers();
}

// --- boot -------------------------------------------------------------------

const initialRoom = main.dataset.room;
const initialLastId = Number(main.dataset.lastId);
const storedName = loadName();

const client = new ChatClient({
  name: storedName,
  onEvent,
  ownSessions: loadSessions(),
  pending: loadPending(),
});

// The server-rendered room: adopt its markup, localise its times.
const initialSection = main.querySelector('.room-view');
const initialTab = tabList.querySelector('li');
completeTab(initialTab, initialRoom);
views.set(initialRoom, new RoomView(initialRoom, initialSection, initialTab));
for (const time of initialSection.querySelectorAll('time')) localiseTime(time);
for (const item of initialSection.querySelectorAll('.messages .message')) {
  item.classList.toggle('own', client.ownSessions.has(item.dataset.fromId));
  regroup(item);
}
const lastRendered = initialSection.querySelector('.messages .message:last-child');
const initialPrint = lastRendered
  ? fingerprint({
    id: Number(lastRendered.dataset.id),
    at: Number(lastRendered.dataset.at),
    from: { id: lastRendered.dataset.fromId },
  })
  : null;
client.open(initialRoom, { lastId: initialLastId, print: initialPrint });

// The other rooms the reader keeps open, in their order.
const remembered = loadRooms();
if (!remembered.includes(initialRoom)) remembered.push(initialRoom);
for (const room of remembered.slice(-MAX_OPEN_ROOMS)) {
  if (room === initialRoom) {
    tabList.append(initialTab); // keep the remembered order
  } else {
    createView(room);
    client.open(room);
  }
}
rememberRooms();
views.get(initialRoom).updateOlder();

// Messages a reload interrupted: shown again, sent again once connected
// (same refs, so the server never stores one twice). Rooms closed since
// then take theirs with them.
for (const item of [...client.pending]) {
  if (views.has(item.room)) views.get(item.room).renderPending(item);
  else client.discard(item.ref);
}
window.addEventListener('beforeunload', (event) => {
  // Reloads keep pending messages (sessionStorage); closing the tab would
  // not, so ask first.
  if (client.pending.some((item) => item.status !== 'acked')) event.preventDefault();
});

for (const view of views.values()) {
  view.input.disabled = false;
  view.sendButton.disabled = false;
}

// Forms in the sidebar: open another room, change the display name.
openRoomForm.hidden = false;
openRoomForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const input = openRoomForm.querySelector('input');
  const room = roomName(input.value);
  if (!room) {
    showFormError(openRoomForm, errorWords('invalid_room'));
    return;
  }
  showFormError(openRoomForm, '');
  input.value = '';
  openRoom(room);
  setDrawer(null);
});

nameForm.hidden = false;
nameInput.value = storedName ?? '';
const nameHint = document.getElementById('name-hint');
nameHint.hidden = Boolean(storedName);
nameForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = displayName(nameInput.value);
  if (!name) {
    showFormError(nameForm, errorWords('invalid_name'));
    return;
  }
  showFormError(nameForm, '');
  nameHint.hidden = true;
  saveName(name);
  client.rename(name);
});

roomsToggle.hidden = false;
window.addEventListener('popstate', () => {
  const room = roomName(window.location.pathname.replace(/^\/rooms\//, ''));
  if (room && views.has(room)) activate(room);
  else window.location.reload();
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState !== 'visible') return;
  const view = views.get(active);
  if (view) view.hiddenUnread = 0;
  updateTitle();
});

activate(initialRoom);
client.start();
