// chat.js: ChatClient, the room protocol on top of a Connection, with no
// DOM in it. It keeps, per open room, the last message id seen and the
// room's epoch (the name of its id sequence, from `joined`), and, for
// every message the reader sent, its `ref` until the server has it. It
// gives these guarantees to the page, through `onEvent(type, detail)`:
//
// - Resume without gap or duplicate. A (re)join asks for `after` = one
//   before the last id seen, with the epoch of the sequence that id
//   belongs to. When the answer names another epoch, the room's ids began
//   again since (a restart without durable storage, an evicted room) and
//   the server says so: its answer is the new sequence's recent history,
//   which the room takes after a reset (the page shows a "server
//   restarted" divider). Otherwise the answer must begin with the message
//   we already have: if it does, the room resumes right after it; if it
//   does not (or the server says the history is incomplete and it reaches
//   back to or below that id), the ids began again all the same. The room
//   is then reset and joined once more without `after`, to get the new
//   sequence's recent history. This overlap of one message is what catches
//   a restart when the epoch is not known (the page's first join starts
//   from the server-rendered history, which carries no epoch).
// - Nothing lost, nothing doubled. Every `say` carries a fresh
//   `crypto.randomUUID()` ref and stays pending until its `ack`; after a
//   reconnect every pending message is sent again with its original ref
//   (the server answers a known ref with the original id instead of storing
//   it twice). A message refused for flood control (`rate_limited`) or
//   because the server could not store it (`unavailable`) is held and sent
//   again, with the same ref, after a pause; one refused for good is kept,
//   with the reason, for the reader to edit, retry or discard. A join the
//   server could not serve (`unavailable`) is tried again after a pause.
// - Long resumes in pages. When what the room missed does not fit one
//   `joined`, the server sends the oldest part with `more: true`; the room
//   then asks for the next page (a join with `after` = the last id it got)
//   and keeps live messages aside until a page comes without `more`, then
//   shows those the pages did not already hold (protocol rule 43).
// - Order. Requests go out in the order the reader made them: the
//   identity first on a new connection, then joins, then the pending
//   messages, oldest first; while a message is held (flood control,
//   storage), newer ones wait behind it.
// - One member across reloads and restarts. The browser's identity (the
//   secret the server issued, kept in localStorage by storage.js) is
//   presented with `identify` before any join, so the member id is the
//   same on every connection: the reader's earlier messages stay theirs,
//   to mark and to change (protocol rule 49). The first connection asks
//   for one.
// - Edits and deletes are pending changes like messages (same queue, same
//   refs, same resends); the room applies their entries to the messages
//   they change instead of showing them (rule 50).
// - A kick or ban (`kicked`) takes the room out of the rejoins until the
//   reader joins it again (rule 51).
//
// Events: state, welcome, identity, joined, restarted, message (with
// `live`: false for history and resumes), presence, typing, pending (a
// pending message or change was added or changed), confirmed (it reached
// the room), discarded, kicked, room-error, name, name-error, notice.

import { Connection, socketUrl } from './connection.js';

/** The least time between two `typing` requests for one room. */
export const TYPING_SEND_INTERVAL_MS = 2_000;
/** First pause after a `rate_limited`; doubles up to the cap while refused. */
export const HOLD_BASE_MS = 1_000;
export const HOLD_CAP_MS = 8_000;
/**
 * The longest pause while the server cannot store messages (`unavailable`):
 * a failing disk takes longer to recover than a flood-control bucket.
 */
export const STORAGE_HOLD_CAP_MS = 30_000;
/** First pause before a join refused as `unavailable` is tried again. */
export const JOIN_RETRY_BASE_MS = 1_000;
export const JOIN_RETRY_CAP_MS = 30_000;

/**
 * Refusals of a `say` that pass by themselves: the message is held and sent
 * again (same ref) after a pause, with the longest pause for each.
 */
const HOLD_CAPS = new Map([
  ['rate_limited', HOLD_CAP_MS],
  ['unavailable', STORAGE_HOLD_CAP_MS],
]);

/** The request that carries a pending message or change. */
function request({
  kind, room, text, target, ref,
}) {
  switch (kind) {
    case 'edit': return {
      type: 'edit', room, id: target, text, ref,
    };
    case 'delete': return {
      type: 'delete', room, id: target, ref,
    };
    default: return {
      type: 'say', room, text, ref,
    };
  }
}

/** Room members by id, counting each identity's connections. */
function memberMap(members) {
  const map = new Map();
  for (const { id, name } of members) {
    const known = map.get(id);
    map.set(id, { name, connections: (known?.connections ?? 0) + 1 });
  }
  return map;
}

/** A fresh, globally unique ref (the contract asks for UUIDs). */
function newRef() {
  return crypto.randomUUID();
}

/**
 * Enough of a message to recognise it again in a replay: its id, the
 * millisecond the server accepted it and its sender's session id (random
 * per server process). Not the text: HTML parsing normalises line breaks,
 * so text read back from a server-rendered page may differ by a `\r`.
 */
export function fingerprint(message) {
  return { id: message.id, at: message.at, fromId: message.from.id };
}

function sameMessage(message, print) {
  return message.id === print.id && message.at === print.at && message.from.id === print.fromId;
}

export class ChatClient {
  /**
   * @param {object} options
   * @param {string|null} options.name  display name for the next connection
   * @param {(type: string, detail: object) => void} options.onEvent
   * @param {string[]} [options.ownSessions]  earlier session ids of this browser
   * @param {{id, secret}|null} [options.identity]  this browser's identity
   * @param {{ref, room, kind, text, target}[]} [options.pending]
   *   unconfirmed messages and changes kept across a reload; they go out
   *   again with their original refs
   */
  constructor({
    name, onEvent, ownSessions = [], identity = null, pending = [],
  }) {
    this.name = name;
    this.emit = onEvent;
    this.session = null;
    this.identity = identity;
    /** Every member id this browser had: "own" survives reconnects. */
    this.ownSessions = new Set(ownSessions);
    if (identity) this.ownSessions.add(identity.id);
    /**
     * room -> {lastId, print, epoch, requestedAfter, requestedEpoch,
     * resyncing, joined, members, joinRetry: {timer, delay}, paging,
     * kicked}
     * (`members`: member id -> {name, connections}, one identity may be
     * in the room on several connections; `paging`: live messages set
     * aside while history pages come in, or null when none are awaited;
     * `kicked`: {reason, until} after a moderator removed the reader,
     * until the reader joins again)
     */
    this.rooms = new Map();
    /** Messages and changes not yet in the room, in the order they were made. */
    this.pending = pending.map(({
      ref, room, kind = 'say', text, target = null,
    }) => ({
      ref, room, kind, text, target, status: 'queued', error: null,
    }));
    /** `${room}\n${id}` -> ref: acknowledged, waiting for their own copy. */
    this.awaitingEcho = new Map();
    /** ref -> {kind, room}: joins and renames in flight, to route errors. */
    this.requests = new Map();
    this.lastTypingSent = new Map();
    this.holdUntil = 0;
    this.holdDelay = HOLD_BASE_MS;
    this.holdTimer = 0;
    this.connection = new Connection({
      url: () => socketUrl(this.name),
      onWelcome: (welcome) => this.welcomed(welcome),
      onMessage: (message) => this.receive(message),
      onLost: () => this.connectionLost(),
      onState: (state) => this.emit('state', state),
    });
  }

  start() {
    this.connection.start();
  }

  get connected() {
    return this.connection.connected;
  }

  /** The reader's member id now: the identity's, else the session's. */
  get memberId() {
    return this.identity?.id ?? this.session;
  }

  isOwn(member) {
    return this.ownSessions.has(member.id);
  }

  /**
   * Whether the reader may edit or delete `message`: their own (this
   * member id; an anonymous session's messages are not theirs after a
   * reconnect), not deleted, and a message rather than an entry.
   */
  canChange(message) {
    return message.from.id === this.memberId && !message.deleted
      && message.edits === undefined && message.deletes === undefined;
  }

  /**
   * Opens a room. `lastId` is the id of the last message the page already
   * shows (`null`: none shown, join for the recent history) and `print`
   * that message's fingerprint, if known.
   */
  open(room, { lastId = null, print = null } = {}) {
    if (this.rooms.has(room)) return;
    this.rooms.set(room, {
      lastId,
      print,
      /** The epoch `lastId` belongs to; null until a `joined` names it. */
      epoch: null,
      requestedAfter: null,
      requestedEpoch: null,
      resyncing: false,
      joined: false,
      members: new Map(),
      joinRetry: { timer: 0, delay: JOIN_RETRY_BASE_MS },
      paging: null,
      kicked: null,
    });
    if (this.connected) this.join(room);
  }

  /** Joins a room the reader was kicked from again (their choice). */
  rejoin(room) {
    const state = this.rooms.get(room);
    if (!state || !state.kicked) return;
    state.kicked = null;
    if (this.connected) this.join(room);
    this.flush();
  }

  close(room) {
    const state = this.rooms.get(room);
    if (!state) return;
    window.clearTimeout(state.joinRetry.timer);
    this.rooms.delete(room);
    this.connection.send({ type: 'leave', room });
    for (const item of this.pending.filter((p) => p.room === room)) this.discard(item.ref);
  }

  /** Queues a message; it is sent now if possible, else on reconnect. */
  say(room, text) {
    return this.queue({ room, kind: 'say', text, target: null });
  }

  /** Queues a new text for the reader's message `id` in `room`. */
  edit(room, id, text) {
    return this.queue({ room, kind: 'edit', text, target: id });
  }

  /** Queues the deletion of the reader's message `id` in `room`. */
  remove(room, id) {
    return this.queue({ room, kind: 'delete', text: '', target: id });
  }

  queue(change) {
    const item = {
      ref: newRef(), ...change, status: 'queued', error: null,
    };
    this.pending.push(item);
    this.emit('pending', { item });
    this.flush();
    return item;
  }

  /** Sends `typing` for a room, at most every TYPING_SEND_INTERVAL_MS. */
  typing(room) {
    const now = Date.now();
    if (now - (this.lastTypingSent.get(room) ?? 0) < TYPING_SEND_INTERVAL_MS) return;
    if (this.connection.send({ type: 'typing', room })) this.lastTypingSent.set(room, now);
  }

  /** Changes the display name now, and for every later connection. */
  rename(name) {
    this.name = name;
    const ref = newRef();
    // Only the latest rename matters; a successful one is not acknowledged.
    for (const [old, request] of this.requests) {
      if (request.kind === 'nick') this.requests.delete(old);
    }
    this.requests.set(ref, { kind: 'nick' });
    this.connection.send({ type: 'nick', name, ref });
  }

  /**
   * Sends a held or failed message again, with its original ref. Retrying a
   * held one ends the pause for every held message, so the order holds.
   */
  retry(ref) {
    const item = this.pending.find((p) => p.ref === ref);
    if (!item) return;
    if (item.status === 'held') {
      window.clearTimeout(this.holdTimer);
      this.holdUntil = 0;
      this.releaseHeld();
      return;
    }
    item.status = 'queued';
    item.error = null;
    this.emit('pending', { item });
    this.flush();
  }

  /** Gives up a pending message (the reader chose to). */
  discard(ref) {
    const index = this.pending.findIndex((p) => p.ref === ref);
    if (index < 0) return;
    const [item] = this.pending.splice(index, 1);
    this.emit('discarded', { item });
  }

  reconnectNow() {
    this.connection.reconnectNow();
  }

  // --- connection life -------------------------------------------------

  welcomed(welcome) {
    this.session = welcome.session;
    this.ownSessions.add(welcome.session);
    this.name = welcome.name;
    this.lastTypingSent.clear();
    // Requests of the previous connection will never be answered.
    this.requests.clear();
    this.holdUntil = 0;
    this.emit('welcome', welcome);
    // The identity before any join (rule 49), without waiting for its
    // answer: requests are answered in order. Without one, ask for one.
    this.connection.send(this.identity
      ? { type: 'identify', secret: this.identity.secret }
      : { type: 'identify' });
    // Joins next: the server answers requests in order, so each room's
    // `joined` arrives before the acks of the messages resent below.
    for (const [room, state] of this.rooms) {
      window.clearTimeout(state.joinRetry.timer); // this join replaces it
      if (!state.kicked) this.join(room);
    }
    for (const item of this.pending) {
      if (item.status === 'sent' || item.status === 'held') item.status = 'queued';
    }
    this.flush();
  }

  connectionLost() {
    for (const state of this.rooms.values()) {
      state.joined = false;
      state.paging = null; // the next join starts the resume over
    }
    for (const item of this.pending) {
      if (item.status === 'sent' || item.status === 'held') {
        item.status = 'queued';
        this.emit('pending', { item });
      }
    }
  }

  join(room) {
    const state = this.rooms.get(room);
    const ref = newRef();
    this.requests.set(ref, { kind: 'join', room });
    const request = { type: 'join', room, ref };
    if (state.lastId !== null) {
      // One message of overlap when we know what it should be, and the
      // sequence our ids belong to when a `joined` named it: see the
      // file's header.
      const after = state.print && state.lastId > 0 ? state.lastId - 1 : state.lastId;
      request.after = after;
      if (state.epoch !== null) request.epoch = state.epoch;
      state.requestedAfter = after;
      state.requestedEpoch = state.epoch;
    } else {
      state.requestedAfter = null;
      state.requestedEpoch = null;
    }
    this.connection.send(request);
  }

  /** Joins `room` again after a pause that doubles while it is refused. */
  retryJoinLater(room) {
    const state = this.rooms.get(room);
    if (!state) return;
    const retry = state.joinRetry;
    window.clearTimeout(retry.timer);
    retry.timer = window.setTimeout(() => {
      if (this.rooms.get(room) === state && this.connected && !state.joined) this.join(room);
    }, retry.delay);
    retry.delay = Math.min(JOIN_RETRY_CAP_MS, retry.delay * 2);
  }

  /** Sends what can be sent, in order, unless flood control holds us. */
  flush() {
    if (!this.connected) return;
    const now = Date.now();
    if (this.holdUntil > now) {
      this.scheduleFlush(this.holdUntil - now);
      return;
    }
    for (const item of this.pending) {
      if (item.status !== 'queued') continue;
      const room = this.rooms.get(item.room);
      if (!room || room.kicked) continue; // sent once the reader joins again
      if (!this.connection.send(request(item))) return;
      item.status = 'sent';
      this.emit('pending', { item });
    }
  }

  scheduleFlush(delay) {
    window.clearTimeout(this.holdTimer);
    this.holdTimer = window.setTimeout(() => this.releaseHeld(), delay);
  }

  /** The pause is over: held messages go out again, oldest first. */
  releaseHeld() {
    for (const item of this.pending) {
      if (item.status === 'held') {
        item.status = 'queued';
        item.error = null;
        this.emit('pending', { item });
      }
    }
    this.flush();
  }

  // --- server messages ---------------------------------------------------

  receive(message) {
    switch (message.type) {
      case 'joined': this.joined(message); break;
      case 'message': this.message(message); break;
      case 'ack': this.ack(message); break;
      case 'presence': this.presence(message); break;
      case 'typing':
        if (this.rooms.has(message.room)) this.emit('typing', message);
        break;
      case 'error': this.error(message); break;
      case 'identity': this.identified(message); break;
      case 'kicked': this.kicked(message); break;
      default: break; // `left`, and anything newer than this client
    }
  }

  /** The server's answer to `identify`: the member id, and a new secret. */
  identified({ id, secret }) {
    if (typeof id !== 'string') return;
    if (typeof secret === 'string') this.identity = { id, secret };
    else if (this.identity?.id !== id) return; // not the one presented
    this.ownSessions.add(id);
    this.emit('identity', { identity: this.identity, issued: typeof secret === 'string' });
  }

  /** A moderator took the reader out of a room (rules 51 and 52). */
  kicked({ room, reason, until }) {
    const state = this.rooms.get(room);
    if (!state) return;
    state.joined = false;
    state.paging = null;
    state.members = new Map();
    state.kicked = { reason: reason ?? null, until: until ?? null };
    this.emit('kicked', { room, reason: reason ?? null, until: until ?? null });
  }

  /** Asks for the next page of a long resume (protocol rule 43). */
  nextPage(room) {
    const state = this.rooms.get(room);
    if (!state || state.paging === null || !this.connected) return;
    const ref = newRef();
    this.requests.set(ref, { kind: 'page', room });
    const request = { type: 'join', room, after: state.lastId, ref };
    if (state.epoch !== null) request.epoch = state.epoch;
    this.connection.send(request);
  }

  /** One more page of a long resume; the set-aside live messages last. */
  page(state, room, history, more) {
    for (const m of history) this.deliver(state, m, false);
    if (more) {
      this.nextPage(room);
      return;
    }
    const live = state.paging;
    state.paging = null;
    for (const m of live) this.deliver(state, m, true);
  }

  joined({ room, epoch, members, history, complete, more = false }) {
    const state = this.rooms.get(room);
    if (!state) return; // closed while the join was on its way
    if (state.paging !== null && state.joined) {
      for (const [ref, request] of this.requests) {
        if (request.kind === 'page' && request.room === room) this.requests.delete(ref);
      }
      this.page(state, room, history, more);
      return;
    }
    state.joined = true;
    window.clearTimeout(state.joinRetry.timer);
    state.joinRetry.delay = JOIN_RETRY_BASE_MS;
    for (const [ref, request] of this.requests) {
      if (request.kind === 'join' && request.room === room) this.requests.delete(ref);
    }
    state.members = memberMap(members);
    // A server without epochs sends none: the overlap below still works.
    if (typeof epoch === 'string') state.epoch = epoch;
    if (state.resyncing) {
      // The plain re-join after a restart: everything here is new to us.
      state.resyncing = false;
      state.lastId = 0;
      this.emit('joined', { room, members, gap: !complete, history });
      for (const m of history) this.deliver(state, m, false);
      return;
    }
    const after = state.requestedAfter;
    if (after !== null && state.requestedEpoch !== null && state.epoch !== state.requestedEpoch) {
      // Our ids belong to a sequence the room no longer has; the server
      // answered with the new one's recent history (complete: false).
      this.restartRoom(room, state, members, history);
      return;
    }
    let fresh = history;
    let restarted = false;
    let gap = false;
    if (after !== null && state.print && after === state.lastId - 1) {
      const [first] = history;
      if (first && sameMessage(first, state.print)) {
        fresh = history.slice(1);
      } else if (first && !complete && first.id > state.lastId) {
        gap = true; // same sequence, older messages left the server's memory
      } else {
        restarted = true;
      }
    } else if (after !== null && !complete) {
      if (history.length === 0 || history.some((m) => m.id <= after)) restarted = true;
      else gap = true;
    }
    if (restarted) {
      this.restartRoom(room, state, members);
      return;
    }
    this.emit('joined', { room, members, gap, history: fresh });
    for (const m of fresh) this.deliver(state, m, false);
    if (more) {
      state.paging = [];
      this.nextPage(room);
    }
  }

  /**
   * The server's ids for `room` began again: reset the room. `history`, when
   * the server named the restart (another epoch), is the new sequence's
   * recent history; without it, join again without `after` to get it.
   */
  restartRoom(room, state, members, history = null) {
    state.lastId = 0;
    state.print = null;
    // Acknowledged in the old sequence but never seen: the new one does
    // not have them. Send them again rather than lose them.
    for (const [key, ref] of [...this.awaitingEcho]) {
      if (!key.startsWith(`${room}\n`)) continue;
      this.awaitingEcho.delete(key);
      const item = this.pending.find((p) => p.ref === ref);
      if (item) item.status = 'queued';
    }
    this.emit('restarted', { room, members });
    if (history) {
      this.emit('joined', { room, members, gap: false, history });
      for (const m of history) this.deliver(state, m, false);
    } else {
      state.resyncing = true;
      this.connection.send({ type: 'join', room });
    }
    this.flush();
  }

  message(m) {
    const state = this.rooms.get(m.room);
    // While re-syncing, the coming `joined` carries these messages.
    if (!state || state.resyncing) return;
    if (state.paging !== null) {
      state.paging.push(m);
      return;
    }
    this.deliver(state, m, true);
  }

  /**
   * Shows one message (or applies one entry) at most once, and settles its
   * pending copy. `live`: it just happened, rather than history or a
   * resume catching up.
   */
  deliver(state, m, live) {
    if (state.lastId !== null && m.id <= state.lastId) return;
    state.lastId = m.id;
    state.print = fingerprint(m);
    const key = `${m.room}\n${m.id}`;
    const ref = this.awaitingEcho.get(key);
    if (ref !== undefined) {
      this.awaitingEcho.delete(key);
      this.settle(ref, m);
    }
    this.emit('message', {
      room: m.room, message: m, own: this.isOwn(m.from), live,
    });
  }

  ack({ ref, room, id }) {
    const item = this.pending.find((p) => p.ref === ref);
    if (!item) return;
    this.holdDelay = HOLD_BASE_MS; // the server is taking messages again
    const state = this.rooms.get(room);
    if (state && state.lastId !== null && id <= state.lastId && !state.resyncing) {
      this.settle(ref, null); // already shown (a replay brought it)
    } else {
      item.status = 'acked';
      this.awaitingEcho.set(`${room}\n${id}`, ref);
      this.emit('pending', { item });
    }
  }

  settle(ref, message) {
    const index = this.pending.findIndex((p) => p.ref === ref);
    if (index < 0) return;
    const [item] = this.pending.splice(index, 1);
    this.emit('confirmed', { item, message });
  }

  presence({ room, event, member, count }) {
    const state = this.rooms.get(room);
    if (!state) return;
    // Presence is per connection: an identity open in two tabs leaves the
    // room when its last connection does.
    const known = state.members.get(member.id);
    const connections = known?.connections ?? 0;
    if (event === 'leave') {
      if (connections > 1) state.members.set(member.id, { name: member.name, connections: connections - 1 });
      else state.members.delete(member.id);
    } else {
      const added = event === 'join' ? 1 : 0;
      state.members.set(member.id, { name: member.name, connections: Math.max(1, connections + added) });
    }
    if (event === 'rename' && member.id === this.memberId) this.emit('name', { name: member.name });
    this.emit('presence', { room, event, member, count });
  }

  error({
    code, message, ref, until,
  }) {
    const item = ref === undefined ? undefined : this.pending.find((p) => p.ref === ref);
    if (item) {
      const cap = HOLD_CAPS.get(code);
      if (cap !== undefined) {
        // Not stored: held, and sent again with the same ref after the
        // pause; newer messages wait behind it (flush).
        item.status = 'held';
        const delay = Math.min(cap, this.holdDelay);
        this.holdUntil = Date.now() + delay;
        this.scheduleFlush(delay);
        this.holdDelay = Math.min(cap, this.holdDelay * 2);
      } else {
        item.status = 'failed';
      }
      item.error = { code, message, until };
      this.emit('pending', { item });
      return;
    }
    const request = ref === undefined ? undefined : this.requests.get(ref);
    if (request) this.requests.delete(ref);
    if (request?.kind === 'page') {
      // The page comes after a pause (the request budget, a storage hiccup).
      window.setTimeout(() => this.nextPage(request.room), JOIN_RETRY_BASE_MS);
    } else if (request?.kind === 'join') {
      // Both pass by themselves: a storage hiccup, or the request budget
      // (too many joins at once).
      if (code === 'unavailable' || code === 'rate_limited') this.retryJoinLater(request.room);
      this.emit('room-error', {
        room: request.room, code, message, until,
      });
    } else if (request?.kind === 'nick') {
      this.emit('name-error', { code, message });
    } else {
      this.emit('notice', { code, message });
    }
  }
}
