// room-view.js: one room's view on the room page: its messages (live,
// replayed and "load older"), the reader's place in the list, typing
// hints, pending messages and the composer. Each view is a <section> of
// its own (the server-rendered one, or a clone of the page's <template>),
// so drafts, scroll positions and "load older" state stay with their room.
//
// Messages show their author's tag (the start of the member id) beside the
// name, links and mentions of the reader (dom.js), "(edited)" or a
// tombstone; the reader's own messages offer Edit and Delete, buttons in
// the tab order. Edit and delete entries are applied to the message they
// change, never shown as messages of their own (protocol rule 50).
//
// A view knows nothing of the other rooms: what it needs from the page
// (the ChatClient, the rules, whether it is the room in view, who redraws
// the title) is handed to its constructor.

import {
  element, fillMessageText, isolated, localiseTime,
} from './dom.js';
import {
  GROUP_WINDOW_MS, fullTime, hueOf, textLength, typingSentence,
} from './format.js';
import { tagElement } from './members.js';

/** Messages per "load older messages" page. */
const OLDER_PAGE = 50;
/** How long a typing hint stays after the last `typing` event. */
const TYPING_SHOW_MS = 3_000;
/** Within this distance of the bottom, the reader is "at the latest". */
const NEAR_BOTTOM_PX = 48;

function nearBottom(scroller) {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= NEAR_BOTTOM_PX;
}

/** What a deleted message shows instead of its text. */
const TOMBSTONE = 'This message was deleted.';

/**
 * The `<li>` of one message: author, tag, time, text; all text via
 * textContent. Messages from `apiSenderId` (posted through the HTTP API)
 * get a badge instead of a tag. The text, the edited mark and the actions
 * are filled by `RoomView.fill`.
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
  } else {
    meta.append(tagElement(message.from.id, apiSenderId));
  }
  const time = element('time');
  time.dateTime = new Date(message.at).toISOString();
  localiseTime(time);
  meta.append(time);
  item.append(meta, isolated(element('p', 'message-text')));
  if (message.deleted) item.classList.add('deleted');
  if (message.edited !== undefined) item.dataset.editedAt = String(message.edited);
  return item;
}

/** The message as the page shows it, read back from its `<li>`. */
function shownMessage(item) {
  return {
    id: Number(item.dataset.id),
    from: { id: item.dataset.fromId },
    deleted: item.classList.contains('deleted'),
  };
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

function actionButton(label, onClick, className = 'link-button') {
  const button = element('button', className, label);
  button.type = 'button';
  button.addEventListener('click', onClick);
  return button;
}

/** A keydown listener that runs `action` on Escape. */
function escapeTo(action) {
  return (event) => {
    if (event.key !== 'Escape') return;
    event.preventDefault();
    action();
  };
}

/** The `(edited)` mark under an edited message, with the edit's time. */
function editedMark(at) {
  const mark = element('p', 'edited', '(edited)');
  if (Number.isFinite(at)) mark.title = `Edited ${fullTime(at)}`;
  return mark;
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

  /**
   * Takes over server-rendered messages: local times, own marks, links and
   * mentions, the actions on the reader's own, grouping.
   */
  adoptRendered() {
    for (const time of this.section.querySelectorAll('time')) localiseTime(time);
    for (const item of this.list.querySelectorAll('.message')) {
      item.classList.toggle('own', this.client.ownSessions.has(item.dataset.fromId));
      const text = item.querySelector('.message-text');
      const message = shownMessage(item);
      this.fill(item, message, item.classList.contains('deleted') ? '' : text.textContent);
      regroup(item);
    }
  }

  /**
   * Fills a message's text (links, mentions of the reader), its edited
   * mark or tombstone, and its actions when the reader may change it.
   * Returns whether it mentions the reader.
   */
  fill(item, message, text) {
    const paragraph = item.querySelector('.message-text');
    item.querySelector('.edited')?.remove();
    let mentioned = false;
    if (message.deleted) {
      item.classList.add('deleted');
      paragraph.classList.add('tombstone');
      paragraph.removeAttribute('dir');
      paragraph.textContent = TOMBSTONE;
    } else {
      mentioned = fillMessageText(paragraph, text, this.client.name);
      if (item.dataset.editedAt !== undefined) paragraph.after(editedMark(Number(item.dataset.editedAt)));
    }
    item.classList.toggle('mentions-me', mentioned);
    // Actions already there stay (with the focus, or a delete being
    // confirmed); a deleted message loses them.
    const actions = item.querySelector('.message-actions');
    if (!this.client.canChange(message)) actions?.remove();
    else if (!actions) item.append(this.actions(item));
    return mentioned;
  }

  /** Edit and Delete for one of the reader's messages. */
  actions(item) {
    const box = element('div', 'message-actions');
    const edit = actionButton('Edit', () => this.startEdit(item), 'message-action');
    edit.setAttribute('aria-label', 'Edit your message');
    const remove = actionButton('Delete', () => this.confirmDelete(item), 'message-action');
    remove.setAttribute('aria-label', 'Delete your message');
    box.append(edit, remove);
    return box;
  }

  /** Swaps the message's text for an editor; Enter saves, Escape cancels. */
  startEdit(item) {
    if (item.querySelector('.message-editor')) return;
    const paragraph = item.querySelector('.message-text');
    const form = element('form', 'message-editor');
    const id = `edit-${this.room}-${item.dataset.id}`;
    const label = element('label', 'visually-hidden', 'Edit your message');
    label.htmlFor = id;
    const input = element('textarea', 'editor-input');
    input.id = id;
    input.rows = 2;
    input.maxLength = this.rules.maxTextChars;
    input.value = paragraph.textContent;
    const save = element('button', 'button primary', 'Save');
    save.type = 'submit';
    const cancel = actionButton('Cancel', () => close(), 'button');
    const error = element('p', 'form-error');
    error.setAttribute('role', 'alert');
    form.append(label, input, save, cancel, error);
    const close = () => {
      form.remove();
      paragraph.hidden = false;
      item.querySelector('.message-action')?.focus();
    };
    const submit = () => {
      const text = input.value;
      if (!text.trim() || text.trim() === paragraph.textContent.trim()) {
        close();
        return;
      }
      const length = textLength(text);
      if (length > this.rules.maxTextChars) {
        error.textContent = `Messages are at most ${this.rules.maxTextChars} characters; this one has ${length}.`;
        return;
      }
      this.client.edit(this.room, Number(item.dataset.id), text);
      close();
    };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      submit();
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      } else if (event.key === 'Escape') {
        event.preventDefault();
        close();
      }
    });
    paragraph.hidden = true;
    paragraph.after(form);
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  /** Asks "delete this message?" in place of the actions. */
  confirmDelete(item) {
    const box = item.querySelector('.message-actions');
    if (!box || box.classList.contains('confirming')) return;
    const buttons = [...box.children];
    const restore = () => {
      box.classList.remove('confirming');
      box.replaceChildren(...buttons);
      buttons[1].focus();
    };
    const question = element('span', 'confirm-question', 'Delete this message?');
    const yes = actionButton('Delete', () => {
      this.client.remove(this.room, Number(item.dataset.id));
      this.input.focus();
    }, 'message-action danger');
    yes.setAttribute('aria-label', 'Yes, delete your message');
    const no = actionButton('Cancel', restore, 'message-action');
    no.addEventListener('keydown', escapeTo(restore));
    yes.addEventListener('keydown', escapeTo(restore));
    box.classList.add('confirming');
    box.replaceChildren(question, yes, no);
    no.focus();
  }

  /** The `<li>` of message `id` in this view, if it is shown. */
  messageItem(id) {
    return this.list.querySelector(`.message[data-id="${Number(id)}"]`);
  }

  /**
   * Applies an edit or delete entry to the message it changes, if shown.
   * An edit older than the latest one shown changes nothing (history
   * already carries messages as they are now).
   */
  applyChange(entry) {
    const item = this.messageItem(entry.edits ?? entry.deletes);
    if (!item) return;
    const message = shownMessage(item);
    if (entry.deletes !== undefined) {
      this.fill(item, { ...message, deleted: true }, '');
      return;
    }
    if (message.deleted || Number(item.dataset.editedAt ?? 0) > entry.at) return;
    item.dataset.editedAt = String(entry.at);
    this.fill(item, message, entry.text);
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

  /**
   * Shows a message, or applies an edit or delete entry; returns whether
   * it is a new message that mentions the reader (entries never count).
   */
  appendMessage(message, own) {
    if (message.edits !== undefined || message.deletes !== undefined) {
      this.applyChange(message);
      return false;
    }
    this.clearTyper(message.from.id);
    let mentioned = false;
    this.adding(() => {
      const item = messageElement(message, own, this.apiSenderId);
      this.list.append(item);
      mentioned = this.fill(item, message, message.text);
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
    return mentioned;
  }

  appendDivider(text) {
    this.adding(() => {
      // A plain list item: a `separator` role would break the list and
      // hide the text from screen readers.
      this.list.append(element('li', 'divider', text));
    });
  }

  /**
   * A moderator took the reader out of this room: say so (with the
   * moderator's reason and, for a ban, until when) and offer to join again;
   * nothing rejoins by itself (protocol rule 51).
   */
  showKicked({ reason, until }) {
    const words = until === null
      ? 'A moderator removed you from this room.'
      : `A moderator banned you from this room until ${fullTime(until)}.`;
    const notice = element('li', 'divider kicked', reason ? `${words} Reason: ${reason}` : words);
    const again = actionButton('Join again', () => {
      again.remove();
      this.client.rejoin(this.room);
    });
    notice.append(again);
    this.adding(() => this.list.append(notice), { forceScroll: true });
    this.showError(words, 'room');
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
        // Messages come as they are now: the entries that changed them
        // have nothing to add.
        if (message.id < before && message.edits === undefined && message.deletes === undefined) {
          const item = messageElement(message, this.client.isOwn(message.from), this.apiSenderId);
          this.fill(item, message, message.text);
          fragment.append(item);
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

  // Pending messages: shown under the list until the room has them. A
  // pending edit or delete shows its state on the message it changes.
  renderPending(item) {
    if (item.kind === 'edit' || item.kind === 'delete') {
      this.renderPendingChange(item);
      return;
    }
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
    if (item.error) this.showError(this.rules.errorWords(item.error.code, item.error.message, item.error.until));
  }

  renderPendingChange(item) {
    const target = this.messageItem(item.target);
    if (item.status === 'failed') {
      // Refused for good (not the author, the message is gone): nothing
      // to retry; say why and let it go.
      this.showError(this.rules.errorWords(item.error?.code, item.error?.message));
      this.client.discard(item.ref);
      return;
    }
    if (!target) return;
    let status = target.querySelector('.message-status');
    if (!status) {
      status = element('p', 'message-status');
      status.dataset.ref = item.ref;
      target.append(status);
    }
    const doing = item.kind === 'edit' ? 'Saving your edit…' : 'Deleting…';
    status.textContent = item.status === 'held'
      ? `${doing} ${this.pendingWords(item)}`
      : doing;
    if (item.error && item.status === 'held') {
      this.showError(this.rules.errorWords(item.error.code, item.error.message));
    }
  }

  removePending(item) {
    if (item.kind === 'edit' || item.kind === 'delete') {
      this.list.querySelector(`.message-status[data-ref="${CSS.escape(item.ref)}"]`)?.remove();
      return;
    }
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
      case 'failed': return `Not sent: ${this.rules.errorWords(item.error?.code, item.error?.message, item.error?.until)}`;
      default: return '';
    }
  }
}
