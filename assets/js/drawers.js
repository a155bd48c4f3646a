// drawers.js: at phone width the rooms and the members panels are drawers,
// opened by their toggles in the top bar. At most one is open
// (`<body data-drawer>`); Escape or a tap outside closes it.

export class Drawers {
  /**
   * @param {HTMLElement} body           carries `data-drawer`
   * @param {HTMLElement} roomsToggle    `#rooms-toggle`
   * @param {HTMLElement} membersToggle  `#members-toggle`
   */
  constructor(body, roomsToggle, membersToggle) {
    this.body = body;
    this.roomsToggle = roomsToggle;
    this.membersToggle = membersToggle;
    roomsToggle.addEventListener('click', () => this.toggle('rooms'));
    membersToggle.addEventListener('click', () => this.toggle('members'));
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.body.dataset.drawer) this.show(null);
    });
    document.addEventListener('click', (event) => {
      // A tap outside an open drawer closes it, like on any phone app.
      if (!this.body.dataset.drawer) return;
      if (event.target.closest('.sidebar, .members, .drawer-toggle')) return;
      this.show(null);
    });
  }

  /** Opens `which` ('rooms' or 'members'), or closes both with null. */
  show(which) {
    const closing = this.body.dataset.drawer;
    const toggle = closing === 'rooms' ? this.roomsToggle : this.membersToggle;
    // A drawer closed (Escape) with the focus inside would take the focus
    // with it: hand it back to the drawer's toggle.
    if (closing && closing !== which
      && document.getElementById(toggle.getAttribute('aria-controls'))?.contains(document.activeElement)) {
      toggle.focus();
    }
    this.body.dataset.drawer = which ?? '';
    this.roomsToggle.setAttribute('aria-expanded', String(which === 'rooms'));
    this.membersToggle.setAttribute('aria-expanded', String(which === 'members'));
  }

  toggle(which) {
    this.show(this.body.dataset.drawer === which ? null : which);
  }

  close() {
    this.show(null);
  }
}
