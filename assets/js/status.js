// status.js: the connection indicator in the top bar, always visible:
// "Connected", "Connecting…", "Reconnecting in N s" (with "Retry now") or
// "Offline". The visible text counts down every second; screen readers get
// a separate polite status that changes only when the state does, so they
// are not read a countdown.

const LABELS = {
  connected: 'Connected',
  connecting: 'Connecting…',
  waiting: 'Reconnecting…',
  offline: 'Offline',
};

const ANNOUNCEMENTS = {
  connected: 'Connected.',
  connecting: 'Connecting.',
  waiting: 'Connection lost. Reconnecting automatically.',
  offline: 'You are offline. Charla will reconnect when the network is back.',
};

export class StatusIndicator {
  /**
   * @param {HTMLElement} root  the `.connection` element
   * @param {object} [options]
   * @param {string} [options.connectedLabel]  e.g. "Live" in the lobby
   * @param {() => void} [options.onRetry]     the "Retry now" button
   */
  constructor(root, { connectedLabel = LABELS.connected, onRetry = null } = {}) {
    this.root = root;
    this.text = root.querySelector('.connection-text');
    this.announce = root.querySelector('.connection-announce');
    this.retry = root.querySelector('.reconnect-now');
    this.connectedLabel = connectedLabel;
    this.timer = 0;
    this.lastState = null;
    if (this.retry && onRetry) this.retry.addEventListener('click', onRetry);
    root.hidden = false;
  }

  show(state) {
    window.clearInterval(this.timer);
    this.root.dataset.state = state.state;
    if (this.retry) this.retry.hidden = state.state !== 'waiting';
    if (state.state === 'waiting') {
      const tick = () => {
        const seconds = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
        this.text.textContent = seconds > 0 ? `Reconnecting in ${seconds} s` : 'Reconnecting…';
      };
      tick();
      this.timer = window.setInterval(tick, 1000);
    } else {
      this.text.textContent = state.state === 'connected'
        ? this.connectedLabel
        : LABELS[state.state] ?? state.state;
    }
    // `waiting` follows every failed `connecting`: announce the pair once.
    const announced = state.state === 'connecting' && this.lastState === 'waiting'
      ? 'waiting'
      : state.state;
    if (this.announce && announced !== this.lastAnnounced) {
      this.announce.textContent = ANNOUNCEMENTS[announced] ?? '';
      this.lastAnnounced = announced;
    }
    this.lastState = state.state;
  }
}
