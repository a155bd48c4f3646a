// lobby.js: the lobby page (GET /). Remembers the display name, checks the
// form before leaving the page (the same rules the server applies), lists
// the rooms the reader keeps open, and keeps the room directory live: it
// subscribes with `watch_rooms` and redraws the list on every `rooms`
// event, without a reload.

import { Connection, socketUrl } from './connection.js';
import { displayName, errorWords, roomName } from './format.js';
import { StatusIndicator } from './status.js';
import { loadName, loadRooms, saveName } from './storage.js';

const form = document.getElementById('join-form');
const nameInput = document.getElementById('join-name');
const roomInput = document.getElementById('join-room');
const formError = document.getElementById('join-error');
const directory = document.getElementById('room-directory');
const empty = document.getElementById('directory-empty');
const liveBadge = document.getElementById('directory-live');

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- the form ---------------------------------------------------------------

const storedName = loadName();
if (storedName && !nameInput.value) nameInput.value = storedName;
if (storedName) roomInput.focus();

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = displayName(nameInput.value);
  if (!name) {
    formError.textContent = errorWords('invalid_name');
    nameInput.focus();
    return;
  }
  const room = roomName(roomInput.value);
  if (!room) {
    formError.textContent = errorWords('invalid_room');
    roomInput.focus();
    return;
  }
  formError.textContent = '';
  saveName(name);
  window.location.assign(`/rooms/${room}`);
});

// The rooms this browser keeps open: one click back into them.
const remembered = loadRooms();
if (remembered.length > 0) {
  const line = element('p', 'your-rooms');
  line.append('Your rooms: ');
  for (const room of remembered) {
    const link = element('a', 'chip', `#${room}`);
    link.href = `/rooms/${room}`;
    line.append(link, ' ');
  }
  form.after(line);
}

// --- the live directory ----------------------------------------------------

/** Redraws the directory, marking rooms whose count changed. */
function renderRooms(rooms) {
  const before = new Map(
    [...directory.children].map((item) => [item.dataset.room, item.dataset.members]),
  );
  const items = rooms.map((room) => {
    const item = element('li');
    item.dataset.room = room.name;
    item.dataset.members = String(room.members);
    const link = element('a');
    link.href = `/rooms/${room.name}`;
    link.append(
      element('span', 'room-name', `#${room.name}`),
      element('span', 'room-count', `${room.members} online`),
    );
    item.append(link);
    if (before.has(room.name) && before.get(room.name) !== String(room.members)) {
      item.classList.add('changed');
    } else if (!before.has(room.name)) {
      item.classList.add('appeared');
    }
    return item;
  });
  directory.replaceChildren(...items);
  empty.hidden = rooms.length > 0;
}

// Server-rendered items carry their count as text only; record it so the
// first live update can tell what changed.
for (const item of directory.children) {
  const count = item.querySelector('.room-count')?.textContent ?? '';
  item.dataset.members = count.split(' ')[0];
}

const status = new StatusIndicator(document.getElementById('connection'), {
  connectedLabel: 'Live',
});

const connection = new Connection({
  url: () => socketUrl(null), // a viewer: it joins no room, so it is in no list
  onWelcome: () => connection.send({ type: 'watch_rooms' }),
  onMessage: (message) => {
    if (message.type === 'rooms') renderRooms(message.rooms);
  },
  onState: (state) => {
    status.show(state);
    liveBadge.hidden = state.state !== 'connected';
  },
});
connection.start();
