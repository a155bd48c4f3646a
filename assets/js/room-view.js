// room-view.js: one room's view on the room page: its messages (live,
// replayed and "load older"), the reader's place in the list, typing
// hints, pending messages and the composer. Each view is a <section> of
// its own (the server-rendered one, or a clone of the page's <template>),
// so drafts, scroll positions and "load older" state stay with their room.
//
// A view knows nothing of the other rooms: what it needs from the page
// (the ChatClient, the rules, whether it is the room in view, who redraws
// the title) is handed to its constructor.

import { element, isolated, localiseTime } from './dom.js';
import { GROUP_WINDOW_MS, hueOf, textLength, typingSentence } from './format.js';

/** Messages per "load older messages" page. */
const OLDER_PAGE = 50;
/** How long a typing hint stays after the last `typing` event. */
const TYPING_SHOW_MS = 3_000;
/** Within this distance of the bottom, the reader is "at the latest". */
const NEAR_BOTTOM_PX = 48;

function nearBottom(scroller) {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= NEAR_BOTTOM_PX;
}

/**
 * The `<li>` of one message: author, time, text; all text via textContent.
 * Messages from `apiSenderId` (posted through the HTTP API) get a badge.
 */
function messageElement(message, own, apiSenderId) {
  const item = element('li', `message hue-${hueOf(message.from.id)}`);
  if (own) item.classList.add('own');
  item.dataset.id = String(message.id);
  item.dataset.at = String(message.at);
  item.dataset.fromId = message.from.id;
  const meta = element('div', 'message-meta');
  meta.append(isolated(element('span', 'author', message.from.name)));
  if (message.from.id === apiSenderId) {
    const badge = element('span', 'badge', 'api');
    badge.title = 'Posted through the HTTP API';
    meta.append(badge);
  }
  const time = element('time');
  time.dateTime = new Date(message.at).toISOString();
  localiseTime(time);
  meta.append(time);
  item.append(meta, isolated(element('p', 'message-text', message.text)));
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

function actionButton(label, onClick) {
  const button = element('button', 'link-button', label);
  button.type = 'button';
  button.addEventListener('click', onClick);
  return button;
}

export class RoomView {
  /**
   * @param {string} room
   * @param {HTMLElement} section  the view's `.room-view`
   * @param {HTMLElement} tab      its `<li>` in the room tabs
   * @param {object} page
   * @param {import('./chat.js').ChatClient} page.client
   * @param {import('./format.js').Rules} page.rules
   * @param {string} page.apiSenderId  `from.id` of HTTP API posts (facts.js)
   * @param {(room: string) => boolean} page.isActive  whether `room` is in view
   * @param {() => void} page.onUnreadChange  an unread count changed
   */
  constructor(room, section, tab, { client, rules, apiSenderId, isActive, onUnreadChange }) {
    this.room = room;
    this.section = section;
    this.tab = tab;
    this.client = client;
    this.rules = rules;
    this.apiSenderId = apiSenderId;
    this.isActive = isActive;
    this.onUnreadChange = onUnreadChange;
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
      if (this.input.value.trim()) this.client.typing(this.room);
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
    return this.isActive(this.room);
  }

  /** Takes over server-rendered messages: local times, own marks, grouping. */
  adoptRendered() {
    for (const time of this.section.querySelectorAll('time')) localiseTime(time);
    for (const item of this.list.querySelectorAll('.message')) {
      item.classList.toggle('own', this.client.ownSessions.has(item.dataset.fromId));
      regroup(item);
    }
  }

  send() {
    const text = this.input.value;
    if (!text.trim()) return;
    const length = textLength(text);
    const max = this.rules.maxTextChars;
    if (length > max) {
      this.showError(`Messages are at most ${max} characters; this one has ${length}.`, 'local');
      return;
    }
    this.client.say(this.room, text);
    this.input.value = '';
    this.input.focus();
  }

  showError(text, kind = 'server') {
    this.errorLine.textContent = text;
    this.errorLine.dataset.kind = kind;
  }

  /** Draws the tab's unread badge. */
  showUnread() {
    this.unreadBadge.hidden = this.unread === 0;
    this.unreadBadge.textContent = this.unread > 99 ? '99+' : String(this.unread);
    this.unreadBadge.setAttribute('aria-label', `${this.unread} unread`);
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
      const item = messageElement(message, own, this.apiSenderId);
      this.list.append(item);
      regroup(item);
    }, { forceScroll: own });
    if (!this.visible) {
      this.unread += 1;
      this.showUnread();
      this.onUnreadChange();
    } else if (document.visibilityState === 'hidden') {
      this.hiddenUnread += 1;
      this.onUnreadChange();
    }
  }

  appendDivider(text) {
    this.adding(() => {
      // A plain list item: a `separator` role would break the list and
      // hide the text from screen readers.
      this.list.append(element('li', 'divider', text));
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
        if (message.id < before) {
          fragment.append(messageElement(message, this.client.isOwn(message.from), this.apiSenderId));
        }
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
    entry.status.textContent = this.pendingWords(item);
    entry.actions.replaceChildren();
    if (item.status === 'held' && item.error?.code === 'unavailable') {
      // The server may take a while to store again: the reader need not
      // wait for the next automatic try, nor keep the message.
      entry.actions.append(
        actionButton('Retry now', () => this.client.retry(item.ref)),
        actionButton('Discard', () => this.client.discard(item.ref)),
      );
    } else if (item.status === 'failed') {
      entry.actions.append(
        actionButton('Retry', () => this.client.retry(item.ref)),
        actionButton('Edit', () => {
          this.input.value = item.text;
          this.input.focus();
          this.client.discard(item.ref);
        }),
        actionButton('Discard', () => this.client.discard(item.ref)),
      );
    }
    if (item.error) this.showError(this.rules.errorWords(item.error.code, item.error.message));
  }

  removePending(item) {
    const entry = this.pendingItems.get(item.ref);
    if (!entry) return;
    entry.node.remove();
    this.pendingItems.delete(item.ref);
  }

  pendingWords(item) {
    switch (item.status) {
      case 'queued': return this.client.connected ? 'Sending…' : 'Not sent yet: will be sent when the connection is back.';
      case 'sent': return 'Sending…';
      case 'acked': return 'Sent.';
      case 'held': return item.error?.code === 'unavailable'
        ? 'Not saved yet: the server cannot store messages right now. Charla will send it again by itself.'
        : 'Waiting a moment: you are sending faster than the server allows.';
      case 'failed': return `Not sent: ${this.rules.errorWords(item.error?.code, item.error?.message)}`;
      default: return '';
    }
  }
}
