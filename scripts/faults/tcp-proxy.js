// @ts-check
// A TCP proxy between the agents and the hub, on 127.0.0.1, that the fault suite uses to break the
// link the ways a network does: a cut (every open connection falls silent both ways, as TCP does
// while a cable is out, and new connections are refused as by an unreachable host) that heals;
// a freeze of the open connections only (half-open sockets, new connections pass); a sever (the
// connections vanish with whatever they were carrying).
import { createConnection, createServer } from "node:net";

/**
 * @typedef {object} Link
 * @property {number} id
 * @property {import("node:net").Socket} client  the agent's side
 * @property {import("node:net").Socket} upstream  the hub's side
 * @property {boolean} frozen  no data moves either way, and a close on one side is not passed on
 * @property {boolean} closed
 */

export class TcpProxy {
  /** @type {Set<Link>} */
  #links = new Set();
  #nextId = 1;
  #cut = false;
  /** @type {import("node:net").Server | null} */
  #server = null;
  #port = 0;
  /** Connections accepted and refused, for the report. */
  stats = { accepted: 0, refused: 0 };

  /** @param {{host: string, port: number}} target */
  constructor(target) {
    this.target = target;
  }

  /** Listens on 127.0.0.1 (port 0 unless given) and resolves with the port. */
  async listen(port = 0) {
    const server = createServer((client) => this.#accept(client));
    await new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve(undefined));
    });
    const addr = server.address();
    if (!addr || typeof addr !== "object") throw new Error("the proxy has no address");
    this.#server = server;
    this.#port = addr.port;
    return this.#port;
  }

  get port() {
    return this.#port;
  }

  get url() {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Open connections (frozen ones included). */
  get openLinks() {
    return [...this.#links].filter((l) => !l.closed).length;
  }

  get isCut() {
    return this.#cut;
  }

  /** The link goes down: open connections fall silent both ways, new ones are refused, until heal(). */
  cut() {
    this.#cut = true;
    for (const link of this.#links) this.#freeze(link);
  }

  /** The link is back: what the connections held flows on, and closes that happened meanwhile reach the other side. */
  heal() {
    this.#cut = false;
    for (const link of this.#links) this.#thaw(link);
  }

  /** The connections open now go silent (half-open, as after a crash behind a NAT), while new ones pass. Returns how many. */
  freezeOpen() {
    let n = 0;
    for (const link of this.#links) {
      if (link.closed || link.frozen) continue;
      this.#freeze(link);
      n += 1;
    }
    return n;
  }

  /** Thaws connections frozen by freezeOpen(). */
  thawAll() {
    for (const link of this.#links) this.#thaw(link);
  }

  /** Every open connection vanishes now (reset both ways), with what it held. Returns how many. */
  sever() {
    let n = 0;
    for (const link of [...this.#links]) {
      if (link.closed) continue;
      this.#close(link);
      n += 1;
    }
    return n;
  }

  async close() {
    this.sever();
    const server = this.#server;
    this.#server = null;
    if (server) await new Promise((resolve) => server.close(() => resolve(undefined)));
  }

  /** @param {import("node:net").Socket} client */
  #accept(client) {
    if (this.#cut) {
      // An unreachable host: the connection goes nowhere.
      this.stats.refused += 1;
      client.on("error", () => undefined);
      client.resetAndDestroy();
      return;
    }
    this.stats.accepted += 1;
    const upstream = createConnection({ host: this.target.host, port: this.target.port });
    /** @type {Link} */
    const link = { id: this.#nextId++, client, upstream, frozen: false, closed: false };
    this.#links.add(link);
    client.pipe(upstream);
    upstream.pipe(client);
    for (const side of [client, upstream]) {
      // A side that fails or closes takes the other one with it, unless the link is frozen: then the
      // other side must not hear of it (that is what a silent connection is) until it thaws.
      side.on("error", () => this.#sideGone(link));
      side.on("close", () => this.#sideGone(link));
    }
  }

  /** @param {Link} link */
  #sideGone(link) {
    if (link.closed || link.frozen) return;
    this.#close(link);
  }

  /** @param {Link} link */
  #freeze(link) {
    if (link.closed || link.frozen) return;
    link.frozen = true;
    link.client.unpipe(link.upstream);
    link.upstream.unpipe(link.client);
    link.client.pause();
    link.upstream.pause();
  }

  /** @param {Link} link */
  #thaw(link) {
    if (link.closed || !link.frozen) return;
    link.frozen = false;
    if (link.client.destroyed || link.upstream.destroyed) {
      // One side died while frozen: the other learns of it now.
      this.#close(link);
      return;
    }
    link.client.pipe(link.upstream);
    link.upstream.pipe(link.client);
  }

  /** @param {Link} link */
  #close(link) {
    link.closed = true;
    link.frozen = false;
    this.#links.delete(link);
    for (const side of [link.client, link.upstream]) {
      if (side.destroyed) continue;
      side.on("error", () => undefined);
      side.resetAndDestroy();
    }
  }
}
