// The chat page: join a room over a WebSocket, show who is there and what they say,
// and reconnect with exponential back-off when the connection drops, resuming the room
// where the page left off (aioendpoints' browser module, /aioendpoints/client.js).

import { ResumingSocket } from "/aioendpoints/client.js";
//
// The list of members is built here from the server's events (see examples/chat/__init__.py):
// "welcome" starts it afresh, "present" and "joined" add members, "left" removes one, and a
// "joined" that came through another server process is answered with a "present".

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 15000;
// 1008 means the server refused what we sent: retrying would not help.
const DO_NOT_RETRY = new Set([1008]);

const $ = (id) => document.getElementById(id);
const status = $("status");
const messageList = $("messages");

let name = "";
let room = "";
let socket = null;
let hasConnected = false;
// This connection's member id and its server's id, from "welcome".
let myId = null;
let myServer = null;
// Member id -> name: names may repeat, ids do not.
const members = new Map();

function showStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function roomUrl() {
  // Same origin as the page, so the server's origin check lets it in; the browser sends
  // the login cookie with the handshake.
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/rooms/${encodeURIComponent(room)}`;
}

// Ask the server for a login cookie for our name. Resolves to null when logged in, to
// the server's reason when it refuses the name; throws when the server is unreachable.
async function logIn() {
  const response = await fetch("/login", {
    method: "POST",
    body: new URLSearchParams({ name }),
    credentials: "same-origin",
  });
  if (response.ok) return null;
  if (response.status === 400) return await response.text();
  throw new Error(`login answered ${response.status}`);
}

function refuse(reason) {
  showStatus("failed", `The server refused to connect: ${reason}`);
  $("join").hidden = false;
  $("chat").hidden = true;
  hasConnected = false;
}

function addLine(className, ...parts) {
  const item = document.createElement("li");
  item.className = className;
  for (const [partClass, text] of parts) {
    const span = document.createElement("span");
    span.className = partClass;
    span.textContent = text;
    item.append(span);
  }
  messageList.append(item);
  messageList.scrollTop = messageList.scrollHeight;
}

function showMembers() {
  const names = [...members.values()].sort((a, b) => a.localeCompare(b));
  $("members").replaceChildren(
    ...names.map((member) => {
      const item = document.createElement("li");
      item.textContent = member;
      return item;
    }),
  );
}

function answerPresence(message) {
  // Members on the same server are in the list that server sent the newcomer.
  if (message.server === myServer || message.id === myId) return;
  socket.send({ type: "present", to: message.id });
}

function receive(message) {
  if (typeof message !== "object" || message === null) {
    addLine("error", ["text", `Unreadable message from the server: ${message}`]);
    return;
  }
  switch (message.type) {
    case "message": {
      const time = new Date(message.time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      addLine("message", ["time", time], ["name", message.name], ["text", message.text]);
      break;
    }
    case "welcome":
      myId = message.id;
      myServer = message.server;
      members.clear();
      showMembers();
      break;
    case "present":
      for (const member of message.members) members.set(member.id, member.name);
      showMembers();
      break;
    case "joined":
      members.set(message.id, message.name);
      showMembers();
      addLine("notice", ["text", `${message.name} joined`]);
      answerPresence(message);
      break;
    case "left":
      members.delete(message.id);
      showMembers();
      addLine("notice", ["text", `${message.name} left`]);
      break;
    case "error":
      addLine("error", ["text", `Not sent: ${message.error}`]);
      break;
    default:
      addLine("error", ["text", `Unknown message from the server: ${JSON.stringify(message)}`]);
  }
}

function connect() {
  // The shipped browser module (served by aioendpoints.setup()) reconnects with jittered
  // back-off and resumes the room from the last message this page showed.
  const connection = new ResumingSocket(roomUrl(), { minDelay: FIRST_RETRY_MS, maxDelay: MAX_RETRY_MS, prepare });
  socket = connection;
  let lastClose = null;
  showStatus("connecting", `Connecting to ${room}…`);
  connection.addEventListener("open", (event) => {
    $("send-button").disabled = false;
    if (event.detail.reconnected || hasConnected) {
      showStatus("connected", `Reconnected to ${room} as ${name}.`);
      addLine("notice", ["text", "Reconnected."]);
    } else {
      showStatus("connected", `Connected to ${room} as ${name}.`);
    }
    hasConnected = true;
  });
  connection.addEventListener("message", (event) => receive(event.detail.data));
  connection.addEventListener("resume", (event) => {
    if (event.detail.recovered) {
      addLine("notice", ["text", "Caught up: the messages sent while you were away are shown above."]);
    } else {
      addLine("notice", ["text", "History lost: messages sent while you were away may be missing."]);
    }
  });
  connection.addEventListener("close", (event) => {
    $("send-button").disabled = true;
    lastClose = event.detail;
    if (DO_NOT_RETRY.has(event.detail.code)) {
      connection.close();
      refuse(event.detail.reason || event.detail.code);
    }
  });
  connection.addEventListener("reconnecting", (event) => {
    const { attempt, delay } = event.detail;
    const why =
      lastClose === null ? "no answer from the server"
      : lastClose.code === 1001 ? "the server is restarting"
      : `code ${lastClose.code}`;
    lastClose = null;
    if (hasConnected && attempt === 1) addLine("notice", ["text", `Connection lost (${why}).`]);
    showStatus(
      hasConnected ? "reconnecting" : "connecting",
      `Connection lost (${why}). Reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${attempt})…`,
    );
  });
  connection.connect();
}

// Before each connection: log in again, so that a restarted server with a new key takes
// the page back. A refused name stops the page; an unreachable server is retried.
async function prepare() {
  const refusal = await logIn();
  if (refusal !== null) {
    socket.close();
    refuse(refusal);
  }
}

$("join").addEventListener("submit", (event) => {
  event.preventDefault();
  name = $("name").value.trim();
  room = $("room").value.trim();
  if (!name || !room) return;
  $("join").hidden = true;
  $("chat").hidden = false;
  $("room-name").textContent = room;
  messageList.replaceChildren();
  members.clear();
  showMembers();
  hasConnected = false;
  if (socket !== null) socket.close();
  connect();
  $("text").focus();
});

$("send").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text || socket === null || $("send-button").disabled) return;
  socket.send({ type: "message", text });
  input.value = "";
});
