// @ts-check
// The floor's agents: N socket.io clients that answer every "act" at once. Driven over IPC.
import { io as connect } from "socket.io-client";

const send = (/** @type {unknown} */ msg) => process.send?.(msg);
/** @type {import("socket.io-client").Socket[]} */
const sockets = [];

process.on("message", async (/** @type {{type: string, url?: string, n?: number}} */ msg) => {
  if (msg.type === "start") {
    for (let i = 0; i < (msg.n ?? 1); i++) {
      const socket = connect(`${msg.url}/floor`, { transports: ["websocket"], forceNew: true });
      socket.on("act", (/** @type {unknown} */ _body, /** @type {(a: unknown) => void} */ ack) => ack({ value: 0 }));
      sockets.push(socket);
      await new Promise((resolve) => socket.once("connect", () => resolve(undefined)));
    }
    send({ type: "started" });
  } else if (msg.type === "cpu") {
    const c = process.cpuUsage();
    send({ type: "cpu", micros: c.user + c.system });
  } else if (msg.type === "stop") {
    for (const s of sockets.splice(0)) s.disconnect();
    send({ type: "stopped" });
    process.disconnect?.();
    process.exit(0);
  }
});
process.on("disconnect", () => process.exit(0));
send({ type: "up" });
