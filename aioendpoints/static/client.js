// aioendpoints browser client: a WebSocket that reconnects and resumes its groups.
//
//   import { ResumingSocket } from "/aioendpoints/client.js";
//   const socket = new ResumingSocket("/rooms/lobby");
//   socket.addEventListener("message", (event) => show(event.detail));
//   socket.addEventListener("resume", (event) => event.detail.recovered || reload());
//   socket.connect();
//
// It reconnects with jittered exponential back-off, remembers the last position of each
// group with history (from the {"group", "epoch", "offset", "data"} frames), sends them in
// the `resume` query parameter when it reconnects, drops any frame it has already seen,
// queues what the page sends while it is disconnected, and tells the page whether each
// group's resume was complete. `prepare` (optional) is awaited before each connection, e.g.
// to log in again; `protocols` is a list of subprotocols or a function giving one;
// `getToken` (optional, may be async) answers the server's token refresh requests
// ({"aioendpoints": "refresh"}) by itself. A "close" listener may call close() to stop it
// retrying. No dependencies.

const OPEN = 1;

export class ResumingSocket extends EventTarget {
  constructor(
    url,
    { minDelay = 250, maxDelay = 15000, storage = null, key = null, prepare = null, protocols = [], getToken = null } = {},
  ) {
    super();
    this.url = new URL(url, location.href);
    if (this.url.protocol === "http:") this.url.protocol = "ws:";
    if (this.url.protocol === "https:") this.url.protocol = "wss:";
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.storage = storage;
    this.key = key || `aioendpoints:${this.url.pathname}`;
    this.positions = new Map(Object.entries(this._load()));
    this.queue = [];
    this.attempts = 0;
    this.socket = null;
    this.closed = false;
    this.checking = new Set();
    // Awaited before each connection (a login, say); when it throws, try again later.
    this.prepare = prepare;
    // Subprotocols for each handshake: a list, or a (async) function giving one, so that a
    // token carried next to the subprotocol is a fresh one.
    this.protocols = protocols;
    // Answers the server's {"aioendpoints": "refresh"} with {"aioendpoints": "refresh", token}.
    this.getToken = getToken;
  }

  // The last position seen in `group`, as "<epoch>:<offset>", or undefined.
  position(group) {
    return this.positions.get(group);
  }

  async connect() {
    this.closed = false;
    if (this.prepare) {
      try {
        await this.prepare();
      } catch {
        if (!this.closed) this._retry();
        return;
      }
      if (this.closed) return;
    }
    const url = new URL(this.url);
    if (this.positions.size) {
      url.searchParams.set("resume", JSON.stringify(Object.fromEntries(this.positions)));
    }
    let protocols = this.protocols;
    try {
      if (typeof protocols === "function") protocols = await protocols();
    } catch {
      if (!this.closed) this._retry();
      return;
    }
    if (this.closed) return;
    this.checking = new Set(this.positions.keys());
    const socket = new WebSocket(url, protocols);
    this.socket = socket;
    socket.addEventListener("open", () => {
      const reconnected = this.attempts > 0;
      this.attempts = 0;
      this._emit("open", { reconnected });
      for (const message of this.queue.splice(0)) socket.send(message);
    });
    socket.addEventListener("message", (event) => this._receive(event.data));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this._emit("close", { code: event.code, reason: event.reason });
      if (!this.closed) this._retry();
    });
  }

  // Send a string, or any other value as JSON; queued until the connection is open.
  send(data) {
    const text = typeof data === "string" ? data : JSON.stringify(data);
    if (this.socket && this.socket.readyState === OPEN) this.socket.send(text);
    else this.queue.push(text);
  }

  close(code = 1000, reason = "") {
    this.closed = true;
    if (this.socket) this.socket.close(code, reason);
  }

  _retry() {
    const ceiling = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempts);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempts += 1;
    this._emit("reconnecting", { attempt: this.attempts, delay });
    setTimeout(() => {
      if (!this.closed) this.connect();
    }, delay);
  }

  _receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      this._emit("message", { data: text });
      return;
    }
    if (frame && typeof frame === "object" && typeof frame.aioendpoints === "string") {
      this._control(frame);
      return;
    }
    if (frame && typeof frame === "object" && "resumed" in frame && "group" in frame) {
      this._resumed(frame.group, frame.resumed, frame.position);
      return;
    }
    if (!frame || typeof frame !== "object" || typeof frame.offset !== "number") {
      this._emit("message", { data: frame });
      return;
    }
    const last = parse(this.positions.get(frame.group));
    if (last && last.epoch === frame.epoch && frame.offset <= last.offset) return; // seen
    if (last && (last.epoch !== frame.epoch || frame.offset !== last.offset + 1)) {
      this._resumed(frame.group, false, `${frame.epoch}:${frame.offset}`);
    }
    this.positions.set(frame.group, `${frame.epoch}:${frame.offset}`);
    this._save();
    this._emit("message", { group: frame.group, data: frame.data, offset: frame.offset });
  }

  // The server's word on a group's resume: {"group", "resumed": bool, "position"}.
  _resumed(group, recovered, position) {
    if (!this.checking.has(group) && recovered) return;
    this.checking.delete(group);
    if (!recovered && position) {
      this.positions.set(group, position);
      this._save();
    }
    this._emit("resume", { group, recovered });
  }

  // The server's own frames: {"aioendpoints": "refresh", "expires_at"} asks for a new
  // token before the connection's credential expires; "refreshed" says it was taken.
  async _control(frame) {
    this._emit(frame.aioendpoints, frame);
    if (frame.aioendpoints !== "refresh" || !this.getToken) return;
    const socket = this.socket;
    let token;
    try {
      token = await this.getToken();
    } catch (error) {
      this._emit("error", { error });
      return;
    }
    if (socket && socket === this.socket && socket.readyState === OPEN) {
      socket.send(JSON.stringify({ aioendpoints: "refresh", token }));
    }
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _load() {
    try {
      return this.storage ? JSON.parse(this.storage.getItem(this.key) || "{}") : {};
    } catch {
      return {};
    }
  }

  _save() {
    if (this.storage) this.storage.setItem(this.key, JSON.stringify(Object.fromEntries(this.positions)));
  }
}

function parse(position) {
  if (!position) return null;
  const at = position.lastIndexOf(":");
  return { epoch: position.slice(0, at), offset: Number(position.slice(at + 1)) };
}
