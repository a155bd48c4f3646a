// lobby.js: the lobby page (GET /). Remembers the display name, checks the
// form before leaving the page (the same rules the server applies), lists
// the rooms the reader keeps open, and keeps the room directory live: it
// subscribes with `watch_rooms` and redraws the list on every `rooms`
// event, without a reload. The server's limits come from <body> (facts.js).

import { Connection, socketUrl } from './connection.js';
import { element } from './dom.js';
import { readServerFacts } from './facts.js';
import { Rules } from './format.js';
import { StatusIndicator } from './status.js';
import { Memory } from './storage.js';

const facts = readServerFacts(document.body);
const rules = new Rules(facts);
const memory = new Memory({ rules, maxOpenRooms: facts.maxRoomsPerSession });

const form = document.getElementById('join-form');
const nameInput = document.getElementById('join-name');
const roomInput = document.getElementById('join-room');
const formError = document.getElementById('join-error');
const directory = document.getElementById('room-directory');
const empty = document.getElementById('directory-empty');
const liveBadge = document.getElementById('directory-live');

// --- the form ---------------------------------------------------------------

const storedName = memory.loadName();
if (storedName && !nameInput.value) nameInput.value = storedName;
if (storedName) roomInput.focus();

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = rules.displayName(nameInput.value);
  if (!name) {
    formError.textContent = rules.errorWords('invalid_name');
    nameInput.focus();
    return;
  }
  const room = rules.roomName(roomInput.value);
  if (!room) {
    formError.textContent = rules.errorWords('invalid_room');
    roomInput.focus();
    return;
  }
  formError.textContent = '';
  memory.saveName(name);
  window.location.assign(`/rooms/${room}`);
});

// The rooms this browser keeps open: one click back into them.
const remembered = memory.loadRooms();
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
