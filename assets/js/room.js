// room.js: the room page (GET /rooms/{room}), its entry module: it boots the
// page and routes what ChatClient reports to the views. It reads the
// server's facts from <body> once (facts.js), takes over the
// server-rendered room (its history, members and `data-last-id`), opens the
// other rooms the reader keeps open (remembered in localStorage), wires the
// sidebar forms, and then goes live.
//
// The page's parts each live in a module of their own and get what they
// use from here: room-view.js (one room: messages, typing, pending,
// composer), tabs.js (the open rooms and the one in view), members.js,
// drawers.js, status.js (the connection indicator), notify.js (desktop
// notifications, on the reader's request), storage.js (what the browser
// remembers: the identity among it) and dom.js (the shared DOM helpers).

import { ChatClient, fingerprint } from './chat.js';
import { showFormError } from './dom.js';
import { Drawers } from './drawers.js';
import { readServerFacts } from './facts.js';
import { Rules, tagOf } from './format.js';
import { MemberList } from './members.js';
import { Notifier } from './notify.js';
import { StatusIndicator } from './status.js';
import { Memory } from './storage.js';
import { RoomTabs } from './tabs.js';

const facts = readServerFacts(document.body);
const rules = new Rules(facts);
const memory = new Memory({ rules, maxOpenRooms: facts.maxRoomsPerSession });

const main = document.getElementById('content');
const tabList = document.getElementById('room-tabs');
const openRoomForm = document.getElementById('open-room');
const nameForm = document.getElementById('name-form');
const nameInput = document.getElementById('name-input');
const roomsToggle = document.getElementById('rooms-toggle');

const drawers = new Drawers(document.body, roomsToggle, document.getElementById('members-toggle'));
const status = new StatusIndicator(document.getElementById('connection'), {
  onRetry: () => client.reconnectNow(),
});

// --- what the client reports ------------------------------------------------

function onEvent(type, detail) {
  const view = detail.room ? tabs.get(detail.room) : detail.item ? tabs.get(detail.item.room) : null;
  switch (type) {
    case 'state':
      status.show(detail);
      for (const v of tabs.views.values()) {
        for (const item of client.pending) if (item.room === v.room) v.renderPending(item);
      }
      break;
    case 'welcome':
      memory.saveSessions(client.ownSessions);
      if (document.activeElement !== nameInput) nameInput.value = detail.name;
      tabs.renderMembers();
      break;
    case 'identity':
      if (detail.issued) memory.saveIdentity(detail.identity);
      showIdentity(detail.identity.id);
      tabs.renderMembers();
      break;
    case 'kicked':
      view?.showKicked(detail);
      if (detail.room === tabs.active) tabs.renderMembers();
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
      if (detail.room === tabs.active) tabs.renderMembers();
      break;
    case 'message': {
      if (!view) break;
      const mentioned = view.appendMessage(detail.message, detail.own);
      const change = detail.message.edits !== undefined || detail.message.deletes !== undefined;
      if (detail.live && !detail.own && !change) {
        notifier.message({
          room: detail.room,
          message: detail.message,
          mentioned,
          looking: detail.room === tabs.active && document.visibilityState === 'visible',
        });
      }
      break;
    }
    case 'presence':
      if (detail.room === tabs.active) tabs.renderMembers();
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
      view?.showError(rules.errorWords(detail.code, detail.message, detail.until), 'room');
      break;
    case 'name':
      if (document.activeElement !== nameInput) nameInput.value = detail.name;
      break;
    case 'name-error':
      showFormError(nameForm, rules.errorWords(detail.code, detail.message));
      break;
    case 'notice':
      tabs.get(tabs.active)?.showError(rules.errorWords(detail.code, detail.message));
      break;
    default:
      break;
  }
  // A `joined` ends with its messages delivered: members and "older" state
  // are final once the event has been handled, so finish after the switch.
  if (type === 'joined' && view) queueMicrotask(() => finishJoin(view));
  if (type === 'pending' || type === 'confirmed' || type === 'discarded') memory.savePending(client.pending);
}

/** "Others see your tag #9c41": the reader's own tag, under the name form. */
function showIdentity(id) {
  const line = document.getElementById('identity-line');
  const tag = document.getElementById('own-tag');
  tag.textContent = tagOf(id, facts.apiSenderId);
  tag.title = `Member id ${id}`;
  line.hidden = false;
}

function finishJoin(view) {
  view.list.removeAttribute('aria-busy');
  view.updateOlder();
  if (view.room === tabs.active) tabs.renderMembers();
}

// --- boot -------------------------------------------------------------------

const initialRoom = main.dataset.room;
const initialLastId = Number(main.dataset.lastId);
const storedName = memory.loadName();
const storedIdentity = memory.loadIdentity();

const client = new ChatClient({
  name: storedName,
  onEvent,
  ownSessions: memory.loadSessions(),
  identity: storedIdentity,
  pending: memory.loadPending(),
});
if (storedIdentity) showIdentity(storedIdentity.id);

const tabs = new RoomTabs({
  main,
  template: document.getElementById('room-view-template'),
  tabList,
  title: document.getElementById('room-title'),
  unreadTotal: roomsToggle.querySelector('.unread-total'),
}, {
  client,
  rules,
  memory,
  members: new MemberList({
    list: document.getElementById('member-list'),
    count: document.getElementById('members-count'),
    roomCount: document.getElementById('room-count'),
  }),
  drawers,
  facts,
});

const notifier = new Notifier({
  root: document.getElementById('notify-settings'),
  state: document.getElementById('notify-state'),
  on: document.getElementById('notify-on'),
  off: document.getElementById('notify-off'),
  all: document.getElementById('notify-all'),
}, { memory, show: (room) => tabs.activate(room, { push: true }) });

// The server-rendered room: adopt its markup, localise its times. The
// page names the room's last entry it knows (a message, or an edit or
// delete already applied): the resume checks its first entry against it.
const initialSection = main.querySelector('.room-view');
const initialTab = tabList.querySelector('li');
tabs.adopt(initialRoom, initialSection, initialTab).adoptRendered();
const initialPrint = initialLastId > 0
  ? fingerprint({
    id: initialLastId,
    at: Number(main.dataset.lastAt),
    from: { id: main.dataset.lastFromId },
  })
  : null;
client.open(initialRoom, { lastId: initialLastId, print: initialPrint });

// The other rooms the reader keeps open, in their order.
const remembered = memory.loadRooms();
if (!remembered.includes(initialRoom)) remembered.push(initialRoom);
for (const room of remembered.slice(-facts.maxRoomsPerSession)) {
  if (room === initialRoom) {
    tabList.append(initialTab); // keep the remembered order
  } else {
    tabs.create(room);
    client.open(room);
  }
}
tabs.remember();
tabs.get(initialRoom).updateOlder();

// Messages a reload interrupted: shown again, sent again once connected
// (same refs, so the server never stores one twice). Rooms closed since
// then take theirs with them.
for (const item of [...client.pending]) {
  if (tabs.has(item.room)) tabs.get(item.room).renderPending(item);
  else client.discard(item.ref);
}
window.addEventListener('beforeunload', (event) => {
  // Reloads keep pending messages (sessionStorage); closing the tab would
  // not, so ask first.
  if (client.pending.some((item) => item.status !== 'acked')) event.preventDefault();
});

for (const view of tabs.views.values()) {
  view.input.disabled = false;
  view.sendButton.disabled = false;
}

// Forms in the sidebar: open another room, change the display name.
openRoomForm.hidden = false;
openRoomForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const input = openRoomForm.querySelector('input');
  const room = rules.roomName(input.value);
  if (!room) {
    showFormError(openRoomForm, rules.errorWords('invalid_room'));
    return;
  }
  showFormError(openRoomForm, '');
  input.value = '';
  if (!tabs.open(room)) {
    showFormError(openRoomForm, `You can keep at most ${facts.maxRoomsPerSession} rooms open. Close one first.`);
  }
  drawers.close();
});

nameForm.hidden = false;
nameInput.value = storedName ?? '';
const nameHint = document.getElementById('name-hint');
nameHint.hidden = Boolean(storedName);
nameForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = rules.displayName(nameInput.value);
  if (!name) {
    showFormError(nameForm, rules.errorWords('invalid_name'));
    return;
  }
  showFormError(nameForm, '');
  nameHint.hidden = true;
  memory.saveName(name);
  client.rename(name);
});

roomsToggle.hidden = false;
window.addEventListener('popstate', () => {
  const room = rules.roomName(window.location.pathname.replace(/^\/rooms\//, ''));
  if (room && tabs.has(room)) tabs.activate(room);
  else window.location.reload();
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState !== 'visible') return;
  const view = tabs.get(tabs.active);
  if (view) view.hiddenUnread = 0;
  tabs.updateTitle();
});

notifier.start();
tabs.activate(initialRoom);
client.start();
