import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { cleanupTempDirs, connect, dashboardSocket, getJson, postJson, startHub, stopAll, testEnv } from "./helpers.js";

// Revoking a key with the CLI — another process writing the same database — cuts the dashboard
// sockets that key opened, within the hub's revocation poll (1 s).

const HUB_CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const run = promisify(execFile);

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

describe("revoking an API key from another process", () => {
  it("disconnects the dashboards it opened within about a second, and leaves the others connected", async () => {
    const hub = await startHub();
    const make = async (name: string) => (await postJson(`${hub.url}/api/keys`, { name, role: "viewer" })).body as { id: string; key: string };
    const revoked = await make("wallboard");
    const kept = await make("laptop");
    const doomed = dashboardSocket(hub.url, { auth: { token: revoked.key } });
    const survivor = dashboardSocket(hub.url, { auth: { token: kept.key } });
    await connect(doomed);
    await connect(survivor);
    const gone = new Promise<number>((resolve) => doomed.once("disconnect", () => resolve(Date.now())));

    const { stdout } = await run(process.execPath, [HUB_CLI, "key", "revoke", revoked.id, "--json"], { env: { PATH: process.env.PATH ?? "", ...testEnv(hub.dataDir) } });
    expect(JSON.parse(stdout)).toMatchObject({ id: revoked.id });
    const revokedAt = Date.now();
    const disconnectedAt = await Promise.race([gone, new Promise<number>((_r, reject) => setTimeout(() => reject(new Error("the dashboard stayed connected")), 4000))]);
    console.log(`dashboard cut ${disconnectedAt - revokedAt} ms after the CLI revoked its key`);
    expect(disconnectedAt - revokedAt).toBeLessThan(2500);
    expect(survivor.connected).toBe(true);
    expect((await getJson(`${hub.url}/api/hosts`, { auth: revoked.key })).status).toBe(401);
  });
});
