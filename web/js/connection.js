// The WebSocket to the server: connects, reconnects with exponential backoff and jitter,
// reports its state, and hands every frame to the caller. What to resend or resync after a
// reconnect is the caller's business (see main.js), done when `ready` arrives.

const CLOSE_SESSION_ENDED = 4001;
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;

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
    this.stopped = false;
    window.addEventListener('online', () => this.connectSoon(0));
    window.addEventListener('offline', () => this.setState('offline'));
  }

  start() {
    this.connect();
  }

  /** Sends a frame if the connection is ready; returns whether it went out. */
  send(frame) {
    if (!this.ready || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, 'signing out');
  }

  connect() {
    if (this.stopped) return;
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    this.socket = socket;
    this.ready = false;
    socket.addEventListener('message', (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
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
      if (event.code === CLOSE_SESSION_ENDED) {
        this.stopped = true;
        this.onSessionEnded();
        return;
      }
      this.connectSoon();
    });
  }

  /** Reconnects after a delay that doubles with each failed attempt (with jitter, so that
   *  a restarted server is not hit by every client at once). */
  connectSoon(delay) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (!navigator.onLine) {
      this.setState('offline');
      return;
    }
    const backoff = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    const wait = delay ?? backoff * (0.5 + Math.random() / 2);
    this.attempt += 1;
    this.setState('reconnecting');
    this.timer = setTimeout(() => this.connect(), wait);
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state);
  }
}
