// storage.js: what the browser remembers between visits, in localStorage:
// the display name and the rooms the reader keeps open. Storage may be
// unavailable (private modes, quotas): every call degrades to "nothing
// remembered" instead of throwing.

import { displayName, roomName } from './format.js';

const NAME_KEY = 'charla.name';
const ROOMS_KEY = 'charla.rooms';
/** Rooms remembered at most (the server's default per-session cap). */
export const MAX_OPEN_ROOMS = 16;

function read(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // Not remembered; the page still works for this visit.
  }
}

/** The remembered display name, if it is still valid. */
export function loadName() {
  const stored = read(NAME_KEY);
  return stored === null ? null : displayName(stored);
}

export function saveName(name) {
  write(NAME_KEY, name);
}

/** The rooms kept open, valid names only, in the reader's order. */
export function loadRooms() {
  try {
    const parsed = JSON.parse(read(ROOMS_KEY) ?? '[]');
    if (!Array.isArray(parsed)) return [];
    const rooms = parsed.map(roomName).filter(Boolean);
    return [...new Set(rooms)].slice(0, MAX_OPEN_ROOMS);
  } catch {
    return [];
  }
}

export function saveRooms(rooms) {
  write(ROOMS_KEY, JSON.stringify(rooms.slice(0, MAX_OPEN_ROOMS)));
}
