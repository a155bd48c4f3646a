// notify.js: desktop notifications, only once the reader asks for them.
// Nothing prompts on load: the sidebar's "Turn on desktop notifications"
// button asks the browser's permission (a click, as browsers require), and
// the reader's choice is remembered (storage.js): off, mentions of their
// name, or every message. A notification is raised only for a live message
// of someone else in a room the reader is not looking at (another room is
// in view, or the tab is hidden); clicking it brings that room into view.

/** The longest message text a notification shows. */
const BODY_CHARS = 200;

export class Notifier {
  /**
   * @param {object} elements
   * @param {HTMLElement} elements.root     `#notify-settings`
   * @param {HTMLElement} elements.state    its line that says what is on
   * @param {HTMLButtonElement} elements.on     "Turn on"
   * @param {HTMLButtonElement} elements.off    "Turn off"
   * @param {HTMLInputElement} elements.all     "every message" checkbox
   * @param {object} page
   * @param {import('./storage.js').Memory} page.memory
   * @param {(room: string) => void} page.show  brings a room into view
   */
  constructor({
    root, state, on, off, all,
  }, { memory, show }) {
    this.root = root;
    this.stateLine = state;
    this.onButton = on;
    this.offButton = off;
    this.allBox = all;
    this.memory = memory;
    this.show = show;
    this.mode = memory.loadNotify();
  }

  /** Whether this browser can show notifications at all. */
  get supported() {
    return typeof window.Notification === 'function';
  }

  get permission() {
    return this.supported ? window.Notification.permission : 'denied';
  }

  /** Wires the controls and shows them as they are now. */
  start() {
    this.onButton.addEventListener('click', () => this.turnOn());
    this.offButton.addEventListener('click', () => this.setMode('off'));
    this.allBox.addEventListener('change', () => this.setMode(this.allBox.checked ? 'all' : 'mentions'));
    this.root.hidden = false;
    this.render();
  }

  async turnOn() {
    if (!this.supported) return;
    let permission = this.permission;
    if (permission === 'default') permission = await window.Notification.requestPermission();
    this.setMode(permission === 'granted' ? 'mentions' : 'off');
  }

  setMode(mode) {
    const focusWasOn = document.activeElement;
    this.mode = mode;
    this.memory.saveNotify(mode);
    this.render();
    // The button pressed may have been hidden: keep the focus nearby.
    if (focusWasOn && focusWasOn.hidden) (mode === 'off' ? this.onButton : this.allBox).focus();
  }

  /** Whether notifications are on and allowed. */
  get active() {
    return this.mode !== 'off' && this.permission === 'granted';
  }

  render() {
    const blocked = this.permission === 'denied';
    const on = this.active;
    this.onButton.hidden = on || blocked;
    this.offButton.hidden = !on;
    this.allBox.closest('label').hidden = !on;
    this.allBox.checked = this.mode === 'all';
    if (!this.supported) {
      this.stateLine.textContent = 'This browser cannot show desktop notifications.';
    } else if (blocked) {
      this.stateLine.textContent = 'Notifications are blocked for this site in your browser\'s settings.';
    } else if (on) {
      this.stateLine.textContent = this.mode === 'all'
        ? 'On for every message in rooms you are not looking at.'
        : 'On when someone mentions you (@name) in a room you are not looking at.';
    } else {
      this.stateLine.textContent = 'Get a desktop notification when someone mentions you.';
    }
  }

  /**
   * A live message from someone else reached `room`. `looking`: the reader
   * has that room in view in a visible tab; `mentioned`: it mentions them.
   */
  message({
    room, message, mentioned, looking,
  }) {
    if (!this.active || looking) return;
    if (!mentioned && this.mode !== 'all') return;
    const body = [...message.text].slice(0, BODY_CHARS).join('');
    const title = mentioned
      ? `${message.from.name} mentioned you in #${room}`
      : `${message.from.name} in #${room}`;
    try {
      const notification = new window.Notification(title, { body, tag: `charla-${room}-${message.id}` });
      notification.addEventListener('click', () => {
        window.focus();
        this.show(room);
        notification.close();
      });
    } catch {
      // Some browsers allow notifications only from a service worker.
    }
  }
}
