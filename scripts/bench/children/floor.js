// @ts-check
// The floor of the dispatch bench: the same stack with nothing of labrig in it. A plain node:http
// server whose POST handler reads the body, makes one socket.io emit-with-ack to an agent (round
// robin) and answers the ack as JSON. No validation, no database, no auth, no logging. Its agents
// (floor-agents.js) run in a process of their own, as labrig's do. Driven over IPC like hub.js.
import { createServer } from "node:http";
import { Server } from "socket.io";

const send = (/** @type {unknown} */ msg) => process.send?.(msg);

const http = createServer();
const io = new Server(http, { serveClient: false });
/** @type {import("socket.io").Socket[]} */
const agents = [];
io.of("/floor").on("connection", (socket) => {
  agents.push(socket);
  socket.on("disconnect", () => agents.splice(agents.indexOf(socket), 1));
});
let next = 0;
http.on("request", (req, res) => {
  /** @type {Buffer[]} */
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = chunks.length === 0 ? {} : JSON.parse(Buffer.concat(chunks).toString("utf8"));
    const agent = agents[next++ % Math.max(1, agents.length)];
    if (!agent) {
      res.writeHead(503, { "content-type": "application/json" }).end("{}");
      return;
    }
    agent.emit("act", body, (/** @type {unknown} */ answer) => {
      const out = JSON.stringify({ status: "succeeded", result: answer });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) }).end(out);
    });
  });
});
await new Promise((resolve) => http.listen(0, "127.0.0.1", () => resolve(undefined)));
const { port } = /** @type {import("node:net").AddressInfo} */ (http.address());
send({ type: "ready", url: `http://127.0.0.1:${port}` });

process.on("message", async (/** @type {{type: string}} */ msg) => {
  if (msg.type === "cpu") {
    const c = process.cpuUsage();
    send({ type: "cpu", micros: c.user + c.system });
  } else if (msg.type === "connected") {
    send({ type: "connected", agents: agents.length });
  } else if (msg.type === "stop") {
    await io.close();
    send({ type: "stopped" });
    process.disconnect?.();
    process.exit(0);
  }
});
process.on("disconnect", () => process.exit(0));
