// tabs.js: the rooms open on the room page and the one in view. RoomTabs
// owns the room -> RoomView map and the active room: it opens rooms (a
// view cloned from the page's <template> and a tab in the sidebar), closes
// them, brings one into view (title, address, member list, unread
// counts) and remembers the open rooms in their order.
//
// Everything it works with is handed to its constructor; the views it
// makes get only what they need (see room-view.js).

import { element } from './dom.js';
import { RoomView } from './room-view.js';

function tabElement(room) {
  const item = element('li');
  item.dataset.room = room;
  const link = element('a', 'room-tab');
  link.href = `/rooms/${room}`;
  link.append(element('span', 'room-tab-name', `#${room}`));
  item.append(link);
  return item;
}

export class RoomTabs {
  /**
   * @param {object} elements
   * @param {HTMLElement} elements.main          `#content`, holds the views
   * @param {HTMLTemplateElement} elements.template  the empty room view
   * @param {HTMLElement} elements.tabList       `#room-tabs`
   * @param {HTMLElement} elements.title         `#room-title`
   * @param {HTMLElement} elements.unreadTotal   the rooms toggle's badge
   * @param {object} page
   * @param {import('./chat.js').ChatClient} page.client
   * @param {import('./format.js').Rules} page.rules
   * @param {import('./storage.js').Memory} page.memory
   * @param {import('./members.js').MemberList} page.members
   * @param {import('./drawers.js').Drawers} page.drawers
   * @param {{maxRoomsPerSession: number, apiSenderId: string}} page.facts
   */
  constructor(
    { main, template, tabList, title, unreadTotal },
    { client, rules, memory, members, drawers, facts },
  ) {
    this.main = main;
    this.template = template;
    this.tabList = tabList;
    this.title = title;
    this.unreadTotal = unreadTotal;
    this.client = client;
    this.rules = rules;
    this.memory = memory;
    this.members = members;
    this.drawers = drawers;
    this.facts = facts;
    /** room -> RoomView, in the order the rooms were opened. */
    this.views = new Map();
    /** The room in view. */
    this.active = null;
  }

  get(room) {
    return this.views.get(room);
  }

  has(room) {
    return this.views.has(room);
  }

  get size() {
    return this.views.size;
  }

  /** Makes and registers the view of `room`, with what it needs of the page. */
  newView(room, section, tab) {
    const view = new RoomView(room, section, tab, {
      client: this.client,
      rules: this.rules,
      apiSenderId: this.facts.apiSenderId,
      isActive: (candidate) => this.active === candidate,
      onUnreadChange: () => this.updateTitle(),
    });
    this.views.set(room, view);
    return view;
  }

  /** Takes over the server-rendered room: its section and its tab. */
  adopt(room, section, tab) {
    this.completeTab(tab, room);
    return this.newView(room, section, tab);
  }

  /** A new, hidden view of `room` with its tab (the client is not told). */
  create(room) {
    const section = this.template.content.firstElementChild.cloneNode(true);
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
    this.main.append(section);
    const tab = tabElement(room);
    this.tabList.append(tab);
    this.completeTab(tab, room);
    return this.newView(room, section, tab);
  }

  /** Adds the unread badge and the close button to a tab. */
  completeTab(item, room) {
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
    close.addEventListener('click', () => this.close(room));
    item.append(close);
    link.addEventListener('click', (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      this.activate(room, { push: true });
      this.drawers.close();
    });
  }

  /**
   * Opens `room` (joining it) and brings it into view. False, and nothing
   * opened, when as many rooms are open as the server lets one connection
   * join.
   */
  open(room, { activateIt = true } = {}) {
    if (!this.views.has(room)) {
      if (this.views.size >= this.facts.maxRoomsPerSession) return false;
      this.create(room);
      this.client.open(room);
      this.remember();
    }
    if (activateIt) this.activate(room, { push: true });
    return true;
  }

  /** Leaves `room`; the next open room comes into view, or the lobby. */
  close(room) {
    const view = this.views.get(room);
    if (!view) return;
    this.client.close(room);
    view.section.remove();
    view.tab.remove();
    this.views.delete(room);
    this.remember();
    if (this.active === room) {
      const next = this.views.keys().next();
      if (next.done) {
        window.location.assign('/');
        return;
      }
      this.activate(next.value, { push: true });
    }
    this.updateTitle();
  }

  remember() {
    this.memory.saveRooms([...this.views.keys()]);
  }

  activate(room, { push = false } = {}) {
    const view = this.views.get(room);
    if (!view) return;
    this.active = room;
    for (const other of this.views.values()) {
      other.section.hidden = other !== view;
      const link = other.tab.querySelector('.room-tab');
      if (other === view) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    view.unread = 0;
    view.hiddenUnread = 0;
    view.showUnread();
    this.updateTitle();
    this.title.textContent = `#${room}`;
    this.main.dataset.room = room;
    if (view.stuck) view.scrollToLatest();
    this.renderMembers();
    const path = `/rooms/${room}`;
    if (push && window.location.pathname !== path) window.history.pushState({ room }, '', path);
    view.input.focus({ preventScroll: true });
  }

  /** The document title and the rooms toggle's badge: unread messages. */
  updateTitle() {
    let total = 0;
    for (const view of this.views.values()) total += view.unread + view.hiddenUnread;
    document.title = `${total ? `(${total}) ` : ''}#${this.active} · Charla`;
    let others = 0;
    for (const view of this.views.values()) others += view.unread;
    this.unreadTotal.hidden = others === 0;
    this.unreadTotal.textContent = String(others);
  }

  /** The member list shows the room in view. */
  renderMembers() {
    this.members.render(this.client, this.active, this.facts.apiSenderId);
  }
}
