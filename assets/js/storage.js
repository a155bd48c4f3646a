// storage.js: what the browser remembers. In localStorage, between visits:
// the display name, the rooms the reader keeps open, the browser's
// identity (the secret the server issued and its member id: the same
// member on every connection, reload and server restart, protocol rule 49;
// it is never put in a URL), the session ids this browser had before it
// had an identity (so its own messages stay marked after a reload), and
// whether the reader turned desktop notifications on. In sessionStorage,
// for this tab only: the messages, edits and deletes not yet confirmed by
// the server, so a reload cannot lose them (they are resent with their
// original refs, which the server recognises). Storage may be unavailable (private
// modes, quotas): every call degrades to "nothing remembered" instead of
// throwing.

const NAME_KEY = 'charla.name';
const ROOMS_KEY = 'charla.rooms';
const SESSIONS_KEY = 'charla.sessions';
const PENDING_KEY = 'charla.pending';
const IDENTITY_KEY = 'charla.identity';
const NOTIFY_KEY = 'charla.notify';
/** What the notification setting can be (notify.js). */
const NOTIFY_MODES = ['off', 'mentions', 'all'];
/** An issued secret: 64 lowercase hex digits (protocol "Names and limits"). */
const SECRET = /^[0-9a-f]{64}$/;
/** A member id: 16 lowercase hex digits. */
const MEMBER_ID = /^[0-9a-f]{16}$/;
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

  /** This browser's identity, `{id, secret}`, or null before it has one. */
  loadIdentity() {
    try {
      const stored = JSON.parse(read(IDENTITY_KEY) ?? 'null');
      return SECRET.test(stored?.secret) && MEMBER_ID.test(stored?.id)
        ? { id: stored.id, secret: stored.secret }
        : null;
    } catch {
      return null;
    }
  }

  saveIdentity({ id, secret }) {
    write(IDENTITY_KEY, JSON.stringify({ id, secret }));
  }

  /** The desktop notification setting: 'off', 'mentions' or 'all'. */
  loadNotify() {
    const stored = read(NOTIFY_KEY);
    return NOTIFY_MODES.includes(stored) ? stored : 'off';
  }

  saveNotify(mode) {
    write(NOTIFY_KEY, mode);
  }

  /**
   * This tab's unconfirmed changes: [{ref, room, kind, text, target}]
   * (`kind`: 'say', 'edit' or 'delete'; `target`: the message an edit or
   * delete changes).
   */
  loadPending() {
    return readJson(PENDING_KEY, 'sessionStorage')
      .map((item) => ({ kind: 'say', target: null, ...item }))
      .filter((item) => typeof item?.ref === 'string'
        && typeof item.text === 'string' && this.rules.roomName(item.room) === item.room
        && (item.kind === 'say' || (['edit', 'delete'].includes(item.kind) && Number.isSafeInteger(item.target))));
  }

  savePending(items) {
    const kept = items.map(({
      ref, room, kind, text, target,
    }) => ({
      ref, room, kind, text, target,
    }));
    write(PENDING_KEY, JSON.stringify(kept), 'sessionStorage');
  }
}
