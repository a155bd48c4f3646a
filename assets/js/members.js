// members.js: the member list of the room in view, with its two counts
// (the panel's heading and the top bar's "N online"). Redrawn from the
// ChatClient's state whenever presence changes or another room comes into
// view; the server-rendered list stands until then. Each member shows the
// tag of their member id (format.js), so namesakes are told apart.

import { element, isolated } from './dom.js';
import { hueOf, tagOf } from './format.js';

/** The tag of member `id`, with the whole id as its tooltip. */
export function tagElement(id, apiSenderId) {
  const tag = element('span', 'tag', tagOf(id, apiSenderId));
  tag.title = `Member id ${id}`;
  return tag;
}

export class MemberList {
  /**
   * @param {object} elements
   * @param {HTMLElement} elements.list       `#member-list`
   * @param {HTMLElement} elements.count      `#members-count`
   * @param {HTMLElement} elements.roomCount  `#room-count`, in the top bar
   */
  constructor({ list, count, roomCount }) {
    this.list = list;
    this.count = count;
    this.roomCount = roomCount;
  }

  /**
   * Draws the members `client` knows in `room`, by name, marking the
   * reader; `apiSenderId` is the HTTP API's sender id (no tag).
   */
  render(client, room, apiSenderId) {
    const state = client.rooms.get(room);
    const members = state ? [...state.members] : [];
    members.sort(([idA, a], [idB, b]) => a.name.localeCompare(b.name) || idA.localeCompare(idB));
    const items = members.map(([id, { name }]) => {
      const item = element('li', `member hue-${hueOf(id)}`);
      item.dataset.id = id;
      const presence = element('span', 'presence');
      presence.setAttribute('aria-hidden', 'true');
      item.append(presence, isolated(element('span', 'member-name', name)), tagElement(id, apiSenderId));
      if (client.ownSessions.has(id)) item.append(element('span', 'you', '(you)'));
      return item;
    });
    this.list.replaceChildren(...items);
    this.count.textContent = String(members.length);
    this.roomCount.textContent = String(members.length);
  }
}
