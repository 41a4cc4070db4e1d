// The WebSocket to the server: connects, reconnects with exponential backoff and jitter,
// reports its state, and hands every frame to the caller. What to resend or resync after a
// reconnect is the caller's business (see main.js), done when `ready` arrives.
//
// There is only ever one socket: a new one replaces the old only after closing it, and
// frames or closes from a replaced socket are ignored, so no frame is handled twice.

const CLOSE_SESSION_ENDED = 4001;
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
/** Close code 1012: the server is shutting down; reconnect at once. */
const CLOSE_RESTARTING = 1012;
const RESTART_SPREAD_MS = 1_000;
/** How long a socket may take to answer a `ping` when the browser doubts the network. */
const PROBE_MS = 5_000;

export class Connection {
  /** `onFrame(frame)` gets every frame, `ready` included; `onState(state)` gets
   *  'connecting', 'connected', 'reconnecting' or 'offline'; `onSessionEnded()` is called
   *  when the server says the session is over. */
  constructor({ onFrame, onState, onSessionEnded }) {
    this.onFrame = onFrame;
    this.onState = onState;
    this.onSessionEnded = onSessionEnded;
    this.socket = null;
    this.ready = false;
    this.attempt = 0;
    this.timer = null;
    this.probe = null;
    this.stopped = false;
    window.addEventListener('online', () => this.onOnline());
    window.addEventListener('offline', () => this.onOffline());
  }

  start() {
    this.connect();
  }

  /** Sends a frame if the connection is ready; returns whether it went out. */
  send(frame) {
    if (!this.ready || !this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.probe);
    if (this.socket) this.socket.close(1000, 'signing out');
  }

  /** Whether a socket is open or on its way: then there is nothing to reconnect. */
  alive() {
    return !!this.socket && (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING);
  }

  /** The network is back: reconnect at once, unless a socket survived the outage. */
  onOnline() {
    if (this.stopped || this.alive()) return;
    this.attempt = 0;
    this.connectSoon(0);
  }

  /** The browser thinks the network is gone, but it is often wrong (a VPN, a LAN server):
   *  ask the socket. One that answers stays; one that does not is given up on. */
  onOffline() {
    if (this.stopped) return;
    if (!this.ready || !this.alive()) {
      this.setState('offline');
      return;
    }
    const socket = this.socket;
    clearTimeout(this.probe);
    this.probe = setTimeout(() => {
      if (this.socket === socket) this.abandon();
    }, PROBE_MS);
    this.send({ type: 'ping', id: 'probe' });
  }

  /** Gives up on a socket that stopped answering. Closing a socket over a dead network
   *  can take minutes to report, so this does not wait for the close event: the socket is
   *  detached first, and its events are ignored from then on. */
  abandon() {
    const socket = this.socket;
    this.socket = null;
    this.ready = false;
    if (socket) socket.close();
    this.connectSoon();
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.setState(!navigator.onLine ? 'offline' : this.attempt === 0 ? 'connecting' : 'reconnecting');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const old = this.socket;
    const socket = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    this.socket = socket;
    this.ready = false;
    // Replaced first, so that its close event is ignored below.
    if (old && old.readyState !== WebSocket.CLOSED) old.close(1000, 'replaced');
    socket.addEventListener('message', (event) => {
      if (this.socket !== socket) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === 'pong') clearTimeout(this.probe);
      if (frame.type === 'ready') {
        this.ready = true;
        this.attempt = 0;
        this.setState('connected');
      }
      this.onFrame(frame);
    });
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.ready = false;
      clearTimeout(this.probe);
      if (event.code === CLOSE_SESSION_ENDED) {
        this.stopped = true;
        this.onSessionEnded();
        return;
      }
      // The server is going (a restart, or a node leaving): another is there now. Within
      // a second, spread, so that a node's clients do not all land in the same instant.
      if (event.code === CLOSE_RESTARTING) {
        this.connectSoon(Math.random() * RESTART_SPREAD_MS);
        return;
      }
      this.connectSoon();
    });
  }

  /** Reconnects after a delay that doubles with each failed attempt (with jitter, so that
   *  a restarted server is not hit by every client at once). Offline, it says so but keeps
   *  trying at that pace too: `navigator.onLine` is only a hint, and 'online' may never
   *  come. */
  connectSoon(delay) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const backoff = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    const wait = delay ?? backoff * (0.5 + Math.random() / 2);
    this.attempt += 1;
    this.setState(navigator.onLine ? 'reconnecting' : 'offline');
    this.timer = setTimeout(() => this.connect(), wait);
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state);
  }
}
