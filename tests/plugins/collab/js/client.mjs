// A real JavaScript Yjs client (yjs 13.6 + y-websocket 3) driven by the collaboration tests.
//
//   node client.mjs <serverUrl> <room> [syncTimeoutMs]
//
// connects `new WebsocketProvider(serverUrl, room, doc)` (so the socket is `serverUrl + "/" + room`),
// prints `{"event": "synced", "clientID": n}` once synced, then reads one JSON command a line on stdin and
// answers each with one JSON line on stdout, in order: `{"id": <the command's id>, "ok": true, ...}` or
// `{"id": ..., "ok": false, "error": "..."}`. Commands (`cmd`):
//   type      {node, text, pos?: number | "end", delay_ms?}: types `text` into the node's `text` Y.Text one
//             character per transaction, starting at `pos` (default "end"); each next character goes right
//             after this client's previous one (a relative position), so concurrent typing elsewhere in the
//             same text never splits the run.
//   add_node  {node: {id, text?, type?, ...plain fields}}: a Y.Map under `nodes` (text as a Y.Text) and
//             its id pushed to `order`, in one transaction (the layout of docs/collab.md).
//   awareness {state}: sets this client's awareness local state (presence).
//   dump      -> {doc: {scene, nodes, order}, awareness: [{clientID, state}], synced, connected, clientID}
//   quit      -> closes the connection and exits 0 (so does the end of stdin).
// Anything unexpected (no sync within the timeout, a lost connection, a bad command) goes to stderr; a
// failure to sync exits 2.

import { createInterface } from "node:readline";
import WebSocket from "ws";
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";

const [serverUrl, room, syncTimeoutArg] = process.argv.slice(2);
if (!serverUrl || !room) {
  process.stderr.write("usage: node client.mjs <serverUrl> <room> [syncTimeoutMs]\n");
  process.exit(2);
}
const syncTimeoutMs = Number(syncTimeoutArg ?? 20000);

const doc = new Y.Doc();
const provider = new WebsocketProvider(serverUrl, room, doc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true,
});
let connected = false;

let quitting = false;

provider.on("status", ({ status }) => {
  connected = status === "connected";
  if (status === "disconnected" && !quitting) process.stderr.write(`client ${doc.clientID}: disconnected\n`);
});
provider.on("connection-error", (event) => {
  process.stderr.write(`client ${doc.clientID}: connection error: ${event?.message ?? event?.type ?? event}\n`);
});
provider.on("connection-close", (event) => {
  if (event) process.stderr.write(`client ${doc.clientID}: connection closed (${event.code} ${event.reason})\n`);
});

const write = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function nodeText(nodeId) {
  const node = doc.getMap("nodes").get(nodeId);
  if (!(node instanceof Y.Map)) throw new Error(`no node ${JSON.stringify(nodeId)} in the document`);
  const text = node.get("text");
  if (!(text instanceof Y.Text)) throw new Error(`node ${JSON.stringify(nodeId)} has no Y.Text "text"`);
  return text;
}

const pause = (ms) => new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));

async function typeText({ node, text, pos = "end", delay_ms: delayMs = 0 }) {
  if (typeof text !== "string") throw new Error("type: `text` must be a string");
  const ytext = nodeText(node);
  let index = pos === "end" ? ytext.length : Number(pos);
  if (!Number.isInteger(index) || index < 0 || index > ytext.length) {
    throw new Error(`type: position ${JSON.stringify(pos)} is outside the text (length ${ytext.length})`);
  }
  for (const ch of text) {
    doc.transact(() => ytext.insert(index, ch));
    // assoc -1: the cursor sticks to the character just typed, whatever lands after it meanwhile.
    const cursor = Y.createRelativePositionFromTypeIndex(ytext, index + ch.length, -1);
    // let the socket send this keystroke and take in the others' before the next one
    await pause(delayMs);
    const absolute = Y.createAbsolutePositionFromRelativePosition(cursor, doc);
    if (absolute === null) throw new Error("type: lost the cursor (was the node removed?)");
    index = absolute.index;
  }
  return { length: ytext.length };
}

function addNode({ node }) {
  if (node === null || typeof node !== "object" || typeof node.id !== "string" || !node.id) {
    throw new Error("add_node: `node` must be an object with a string `id`");
  }
  const nodes = doc.getMap("nodes");
  if (nodes.has(node.id)) throw new Error(`add_node: node ${JSON.stringify(node.id)} exists`);
  doc.transact(() => {
    const ynode = new Y.Map();
    for (const [key, value] of Object.entries(node)) {
      if (key !== "text") ynode.set(key, value);
    }
    ynode.set("text", new Y.Text(typeof node.text === "string" ? node.text : ""));
    nodes.set(node.id, ynode);
    doc.getArray("order").push([node.id]);
  });
  return {};
}

function dump() {
  const awareness = [];
  for (const [clientID, state] of provider.awareness.getStates()) awareness.push({ clientID, state });
  return {
    doc: {
      scene: doc.getMap("scene").toJSON(),
      nodes: doc.getMap("nodes").toJSON(),
      order: doc.getArray("order").toJSON(),
    },
    awareness,
    synced: provider.synced,
    connected,
    clientID: doc.clientID,
  };
}

function quit(code) {
  quitting = true;
  provider.destroy();
  doc.destroy();
  // give the close frame a moment, then leave even if the socket lingers
  setTimeout(() => process.exit(code), 100).unref();
}

async function run(command) {
  switch (command.cmd) {
    case "type":
      return typeText(command);
    case "add_node":
      return addNode(command);
    case "awareness":
      provider.awareness.setLocalState(command.state ?? null);
      return {};
    case "dump":
      return dump();
    default:
      throw new Error(`unknown command ${JSON.stringify(command.cmd)}`);
  }
}

async function waitForSync() {
  if (provider.synced) return;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not synced within ${syncTimeoutMs} ms`)), syncTimeoutMs);
    provider.once("sync", (isSynced) => {
      if (isSynced) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

try {
  await waitForSync();
} catch (error) {
  process.stderr.write(`client: ${error.message} (${serverUrl}/${room})\n`);
  provider.destroy();
  process.exit(2);
}
write({ event: "synced", clientID: doc.clientID });

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let command;
  try {
    command = JSON.parse(line);
  } catch (error) {
    process.stderr.write(`client: not JSON: ${line.slice(0, 80)}\n`);
    write({ id: null, ok: false, error: "not JSON" });
    continue;
  }
  if (command.cmd === "quit") {
    write({ id: command.id ?? null, ok: true });
    break;
  }
  try {
    write({ id: command.id ?? null, ok: true, ...(await run(command)) });
  } catch (error) {
    process.stderr.write(`client: ${command.cmd}: ${error.message}\n`);
    write({ id: command.id ?? null, ok: false, error: error.message });
  }
}
quit(0);
