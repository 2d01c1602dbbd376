import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, getJson, startHub, stopAll, type RunningHub } from "./helpers.js";

// Requests that Node's HTTP parser refuses before express sees them, found by the fuzzer: they get
// the one envelope like every other refusal, not Node's bare "400 Bad Request" without a body.

let hub: RunningHub;

beforeAll(async () => {
  hub = await startHub();
});

afterAll(async () => {
  await stopAll();
  cleanupTempDirs();
});

/** Sends raw bytes on a new connection and resolves with everything the hub answers before closing. */
function rawExchange(bytes: Buffer): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(hub.port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const [head = "", body = ""] = text.split("\r\n\r\n");
      const [statusLine = "", ...lines] = head.split("\r\n");
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body });
    });
    socket.end(bytes);
  });
}

function expectRawEnvelope(res: { status: number; headers: Record<string, string>; body: string }, status: number, code: string): Record<string, unknown> {
  expect(res.status, res.body).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/json/);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  expect(body).toMatchObject({ error_code: code, recoverable: false });
  expect(typeof body.message).toBe("string");
  expect(body.request_id).toBe(res.headers["x-request-id"]);
  return body;
}

describe("requests the HTTP parser refuses", () => {
  it("a URL with raw non-ASCII bytes is 400 validation_failed in the envelope", async () => {
    const res = await rawExchange(Buffer.concat([Buffer.from("GET /api/hosts/caf"), Buffer.from([0xe9]), Buffer.from(" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")]));
    const body = expectRawEnvelope(res, 400, "validation_failed");
    expect(body.message).toContain("%-encode");
  });

  it("a request line that is not HTTP is 400 validation_failed in the envelope", async () => {
    expectRawEnvelope(await rawExchange(Buffer.from("HELLO THERE\r\n\r\n")), 400, "validation_failed");
  });

  it("headers over Node's 16 KiB limit (a long URL included) are 431 headers_too_large in the envelope", async () => {
    const res = await rawExchange(Buffer.from(`GET /api/hosts/${"a".repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
    const body = expectRawEnvelope(res, 431, "headers_too_large");
    expect(body.message).toContain("16 KiB");
  });

  it("the hub goes on answering on other connections", async () => {
    expect((await getJson(`${hub.url}/api/health`, { auth: null })).status).toBe(200);
  });
});
