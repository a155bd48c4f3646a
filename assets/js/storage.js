// storage.js: what the browser remembers. In localStorage, between visits:
// the display name, the rooms the reader keeps open, and the session ids
// this browser had (so its own messages stay marked after a reload). In
// sessionStorage, for this tab only: the messages not yet confirmed by the
// server, so a reload cannot lose them (they are resent with their original
// refs, which the server recognises). Storage may be unavailable (private
// modes, quotas): every call degrades to "nothing remembered" instead of
// throwing.

const NAME_KEY = 'charla.name';
const ROOMS_KEY = 'charla.rooms';
const SESSIONS_KEY = 'charla.sessions';
const PENDING_KEY = 'charla.pending';
/** Own session ids remembered, newest last. */
const MAX_SESSIONS = 20;

function read(key, store = 'localStorage') {
  try {
    return window[store].getItem(key);
  } catch {
    return null;
  }
}

function write(key, value, store = 'localStorage') {
  try {
    window[store].setItem(key, value);
  } catch {
    // Not remembered; the page still works for this visit.
  }
}

function readJson(key, store) {
  try {
    const parsed = JSON.parse(read(key, store) ?? '[]');
    return Array.isArray(parsed) ? parsed : [];
  } catch {
    return [];
  }
}

/**
 * What this browser remembers, checked against the server's rules: what
 * no longer passes them reads as not remembered.
 */
export class Memory {
  /**
   * @param {object} options
   * @param {import('./format.js').Rules} options.rules  name rules (format.js)
   * @param {number} options.maxOpenRooms  rooms remembered at most: the
   *   server's per-session cap (facts.js), since one connection joins them all
   */
  constructor({ rules, maxOpenRooms }) {
    this.rules = rules;
    this.maxOpenRooms = maxOpenRooms;
  }

  /** The remembered display name, if it is still valid. */
  loadName() {
    const stored = read(NAME_KEY);
    return stored === null ? null : this.rules.displayName(stored);
  }

  saveName(name) {
    write(NAME_KEY, name);
  }

  /** The rooms kept open, valid names only, in the reader's order. */
  loadRooms() {
    const rooms = readJson(ROOMS_KEY).map((room) => this.rules.roomName(room)).filter(Boolean);
    return [...new Set(rooms)].slice(0, this.maxOpenRooms);
  }

  saveRooms(rooms) {
    write(ROOMS_KEY, JSON.stringify(rooms.slice(0, this.maxOpenRooms)));
  }

  /** Session ids this browser had, to recognise its own messages. */
  loadSessions() {
    return readJson(SESSIONS_KEY).filter((id) => typeof id === 'string');
  }

  saveSessions(ids) {
    write(SESSIONS_KEY, JSON.stringify([...ids].slice(-MAX_SESSIONS)));
  }

  /** This tab's unconfirmed messages: [{ref, room, text}]. */
  loadPending() {
    return readJson(PENDING_KEY, 'sessionStorage').filter((item) => typeof item?.ref === 'string'
      && typeof item.text === 'string' && this.rules.roomName(item.room) === item.room);
  }

  savePending(items) {
    const kept = items.map(({ ref, room, text }) => ({ ref, room, text }));
    write(PENDING_KEY, JSON.stringify(kept), 'sessionStorage');
  }
}
