// connection.js: one resilient WebSocket to the Charla server. It owns the
// socket's whole life: connecting, the application-level ping that detects
// a dead link the browser has not noticed, and reconnecting with
// exponential backoff and jitter. It knows nothing about rooms: ChatClient
// (chat.js) and the lobby build on it.
//
// States reported through `onState`:
//   {state: 'connecting'}                      a socket is opening
//   {state: 'connected'}                       `welcome` received
//   {state: 'waiting', retryAt, attempt}       lost; next try at `retryAt`
//   {state: 'offline'}                         the browser says there is no network
// The state is 'connected' only after `welcome`: the server sends it first
// on every connection, so from then on requests will be answered.

/** First retry delay; each failed attempt doubles it. */
export const BACKOFF_BASE_MS = 500;
/** Longest wait between two attempts. */
export const BACKOFF_CAP_MS = 30_000;
/** A connection that lived this long resets the backoff. */
export const STABLE_AFTER_MS = 10_000;
/** Silence after which the client pings to check the link. */
export const PING_AFTER_SILENCE_MS = 20_000;
/** How long a ping may go unanswered before the link counts as dead. */
export const PONG_TIMEOUT_MS = 10_000;
/** How long an opening handshake may take. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** How often the liveness check runs. */
const LIVENESS_TICK_MS = 2_000;

/**
 * The delay before reconnect attempt `attempt` (0-based): exponential,
 * capped, with "equal jitter" (half fixed, half random) so that a server
 * restart is not met by every client at the same instant.
 */
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** The `/ws` URL on this page's host, `wss:` when the page is `https:`. */
export function socketUrl(name) {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = name ? `?name=${encodeURIComponent(name)}` : '';
  return `${scheme}//${window.location.host}/ws${query}`;
}

export class Connection {
  /**
   * @param {object} options
   * @param {() => string} options.url        the URL for the next attempt
   * @param {(welcome) => void} options.onWelcome  a connection is ready
   * @param {(message) => void} options.onMessage  every other server message
   * @param {() => void} [options.onLost]     the ready connection went away
   * @param {(state) => void} [options.onState]
   */
  constructor({ url, onWelcome, onMessage, onLost = () => {}, onState = () => {} }) {
    this.url = url;
    this.onWelcome = onWelcome;
    this.onMessage = onMessage;
    this.onLost = onLost;
    this.onState = onState;
    this.socket = null;
    this.ready = false;
    this.attempt = 0;
    this.openedAt = 0;
    this.lastHeard = 0;
    this.pingSentAt = 0;
    this.retryTimer = 0;
    this.connectTimer = 0;
    this.livenessTimer = 0;
    this.state = null;
  }

  /** Starts connecting and keeps the connection up from then on. */
  start() {
    window.addEventListener('online', () => this.reconnectNow());
    window.addEventListener('offline', () => this.checkLink());
    // A laptop waking up or a tab coming back: check the link at once
    // instead of waiting for the next liveness tick.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.checkLink();
    });
    this.livenessTimer = window.setInterval(() => this.liveness(), LIVENESS_TICK_MS);
    this.open();
  }

  /** Whether a `welcome` was received on the current socket. */
  get connected() {
    return this.ready;
  }

  /** Sends one request; false when there is no ready connection. */
  send(message) {
    if (!this.ready || this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** Skips the remaining backoff wait (the "Retry now" button, `online`). */
  reconnectNow() {
    if (this.socket) return;
    window.clearTimeout(this.retryTimer);
    this.open();
  }

  /** Drops the current socket, as if the link had died, and reconnects. */
  restart(reason = 'restart') {
    if (this.socket) this.drop(reason);
  }

  setState(state) {
    this.state = state;
    this.onState(state);
  }

  open() {
    window.clearTimeout(this.retryTimer);
    if (navigator.onLine === false) {
      this.setState({ state: 'offline' });
      return;
    }
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch {
      this.schedule();
      return;
    }
    this.socket = socket;
    this.ready = false;
    this.setState({ state: 'connecting', attempt: this.attempt });
    this.connectTimer = window.setTimeout(() => this.drop('connect timeout'), CONNECT_TIMEOUT_MS);
    socket.addEventListener('message', (event) => this.receive(socket, event));
    socket.addEventListener('close', () => this.lost(socket));
    // An `error` is always followed by `close`, which does the work.
  }

  receive(socket, event) {
    if (socket !== this.socket) return;
    this.lastHeard = Date.now();
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return; // Not for us: the contract sends JSON text only.
    }
    if (message.type === 'welcome') {
      window.clearTimeout(this.connectTimer);
      this.ready = true;
      this.openedAt = Date.now();
      this.pingSentAt = 0;
      this.setState({ state: 'connected' });
      this.onWelcome(message);
      return;
    }
    if (message.type === 'pong') return; // lastHeard is all it was for
    this.onMessage(message);
  }

  /** The socket closed (or was dropped): forget it and plan the next try. */
  lost(socket) {
    if (socket !== this.socket) return;
    window.clearTimeout(this.connectTimer);
    const wasReady = this.ready;
    this.socket = null;
    this.ready = false;
    if (wasReady && Date.now() - this.openedAt >= STABLE_AFTER_MS) this.attempt = 0;
    if (wasReady) this.onLost();
    this.schedule();
  }

  /** Closes a socket we no longer trust without waiting for its close event. */
  drop(reason) {
    const socket = this.socket;
    if (!socket) return;
    try {
      socket.close(4000, reason); // 4000-4999: application-defined codes
    } catch {
      // Already closing.
    }
    this.lost(socket);
  }

  schedule() {
    window.clearTimeout(this.retryTimer);
    if (navigator.onLine === false) {
      this.setState({ state: 'offline' });
      return;
    }
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    const retryAt = Date.now() + delay;
    this.setState({ state: 'waiting', retryAt, attempt: this.attempt });
    this.retryTimer = window.setTimeout(() => this.open(), delay);
  }

  /** Pings now if connected and nothing is in flight (tab woke up). */
  checkLink() {
    if (navigator.onLine === false && this.socket) {
      this.drop('offline');
      return;
    }
    if (this.ready && !this.pingSentAt) this.ping();
  }

  ping() {
    this.pingSentAt = Date.now();
    this.send({ type: 'ping' });
  }

  /** Runs every few seconds: pings a quiet link, drops a dead one. */
  liveness() {
    if (!this.ready) return;
    const now = Date.now();
    if (this.pingSentAt) {
      if (this.lastHeard >= this.pingSentAt) {
        this.pingSentAt = 0; // answered (any frame proves the link)
      } else if (now - this.pingSentAt > PONG_TIMEOUT_MS) {
        this.drop('no answer to ping');
      }
      return;
    }
    if (now - this.lastHeard > PING_AFTER_SILENCE_MS) this.ping();
  }
}
