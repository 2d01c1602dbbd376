import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEB_DIST_DIR } from "../src/api/web.js";
import { TEST_ADMIN_KEY, cleanupTempDirs, expectEnvelope, getJson, postJson, startHub, stopAll, type RunningHub } from "./helpers.js";

// The dashboard's static files as the hub serves them (built by npm run build into hub/dist/web).

const JWT_SECRET = "web-test-secret-that-is-long-enough-0123456789";
let hub: RunningHub;

beforeAll(async () => {
  hub = await startHub({ env: { JWT_SECRET } });
});

afterAll(async () => {
  await stopAll();
  cleanupTempDirs();
});

function directives(csp: string | null): Map<string, string[]> {
  return new Map((csp ?? "").split(";").map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([name, ...values]) => [name as string, values]));
}

describe("the dashboard page", () => {
  it("is served at / to anyone (sign-in happens in the page), revalidated every time, under a CSP that allows no inline or foreign scripts", async () => {
    const res = await fetch(`${hub.url}/`);
    expect(res.status, `build the dashboard first (npm run build): ${WEB_DIST_DIR}`).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const html = await res.text();
    expect(html).toMatch(/<script type="module" src="\/assets\/main-[A-Z0-9]+\.js"><\/script>/);
    expect(html).not.toMatch(/<script>|<script type="module">|style=|<style/);
    const csp = directives(res.headers.get("content-security-policy"));
    expect(csp.get("script-src")).toEqual(["'self'"]);
    expect(csp.get("default-src")).toEqual(["'self'"]);
    expect(csp.get("connect-src")).toEqual(["'self'"]);
    expect(csp.get("object-src")).toEqual(["'none'"]);
    expect(csp.get("img-src")).toEqual(["'self'", "data:", "blob:"]);
    expect(csp.has("upgrade-insecure-requests")).toBe(false);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("serves its content-hashed assets as immutable for a year, and answers not_found for any other name", async () => {
    const html = await (await fetch(`${hub.url}/`)).text();
    const names = [...html.matchAll(/\/assets\/([A-Za-z0-9.-]+)/g)].map((m) => m[1]);
    expect(names.length).toBe(3);
    for (const name of names) {
      const res = await fetch(`${hub.url}/assets/${name}`);
      expect(res.status, name).toBe(200);
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect(res.headers.get("content-type")).toMatch(name?.endsWith(".js") ? /^text\/javascript/ : name?.endsWith(".css") ? /^text\/css/ : /^image\/svg\+xml/);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
    for (const bad of ["main-OLD.js", "..%2F..%2Fpackage.json", "%2e%2e%2findex.html"]) {
      const res = await getJson(`${hub.url}/assets/${bad}`, { auth: null });
      expectEnvelope(res, 404, "not_found", bad);
    }
  });

  it("leaves the API's guard as it was: /api still needs credentials", async () => {
    expectEnvelope(await getJson(`${hub.url}/api/hosts`, { auth: null }), 401, "unauthorized");
  });
});

describe("GET /api/session", () => {
  it("names the caller, its role and when its credential expires (never for keys, exp for JWTs)", async () => {
    const viewer = await postJson(`${hub.url}/api/keys`, { name: "watcher", role: "viewer" });
    const key = await getJson(`${hub.url}/api/session`, { auth: viewer.body.key as string });
    expect(key.body).toEqual({ name: "watcher", role: "viewer", kind: "key", expires_at: null });
    expect((await getJson(`${hub.url}/api/session`)).body).toMatchObject({ name: "env-admin", role: "admin" });

    const exp = Math.floor(Date.now() / 1000) + 600;
    const jwt = await new SignJWT({ role: "operator" }).setProtectedHeader({ alg: "HS256" }).setSubject("carol").setExpirationTime(exp).sign(new TextEncoder().encode(JWT_SECRET));
    const fromJwt = await getJson(`${hub.url}/api/session`, { auth: jwt });
    expect(fromJwt.body).toEqual({ name: "carol", role: "operator", kind: "jwt", expires_at: new Date(exp * 1000).toISOString() });
  });

  it("refuses anonymous and revoked credentials with 401", async () => {
    expectEnvelope(await getJson(`${hub.url}/api/session`, { auth: null }), 401, "unauthorized");
    const made = await postJson(`${hub.url}/api/keys`, { name: "short-lived", role: "operator" });
    expect((await getJson(`${hub.url}/api/keys/${String(made.body.id)}`, { method: "DELETE", auth: TEST_ADMIN_KEY })).status).toBe(204);
    expectEnvelope(await getJson(`${hub.url}/api/session`, { auth: made.body.key as string }), 401, "unauthorized");
  });
});
