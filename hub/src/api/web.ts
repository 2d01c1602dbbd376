import { existsSync, readFileSync, readdirSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LabrigError } from "@labrig/shared";
import type { Request, Response } from "express";
import helmet from "helmet";
import { z } from "zod";
import { RESPONDED, route, type Route } from "./route.js";

/** Where `npm run build` puts the dashboard (hub/web → hub/dist/web); the same from hub/dist/api and, in tests, hub/src/api. */
export const WEB_DIST_DIR = fileURLToPath(new URL("../../dist/web/", import.meta.url));

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
  ".map": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/**
 * The dashboard page's CSP: helmet's defaults (scripts and everything else from this origin only,
 * no inline scripts) with two additions and one removal. blob: images and media let the page show
 * snapshots and clips it fetched with its bearer token (REST refuses tokens in URLs). No
 * upgrade-insecure-requests: on plain http (127.0.0.1, a lab LAN) it would turn the page's own
 * requests and WebSocket into https/wss that nothing answers; TLS belongs to nginx in front.
 * helmet's style-src keeps 'unsafe-inline' because xterm.js writes its measured cell sizes into
 * <style> elements; the page itself has no inline styles or scripts.
 */
const pageSecurity = helmet.contentSecurityPolicy({
  useDefaults: true,
  directives: {
    "img-src": ["'self'", "data:", "blob:"],
    "media-src": ["'self'", "blob:"],
    "connect-src": ["'self'"],
    "upgrade-insecure-requests": null,
  },
});

interface Built {
  index: Buffer;
  /** Asset file name → absolute path; only these names are ever served. */
  assets: Map<string, string>;
}

function loadBuilt(dir: string): Built | null {
  const indexPath = join(dir, "index.html");
  if (!existsSync(indexPath)) return null;
  const assetsDir = join(dir, "assets");
  const assets = new Map<string, string>();
  if (existsSync(assetsDir)) for (const name of readdirSync(assetsDir)) assets.set(name, join(assetsDir, name));
  return { index: readFileSync(indexPath), assets };
}

/** Runs the page's CSP middleware (helmet) on a response. */
function applyPageSecurity(req: Request, res: Response): Promise<void> {
  return new Promise((resolve, reject) => pageSecurity(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
}

/**
 * The dashboard: `/` is the single page (client-side routes live in the URL's #fragment, so there is
 * one page route), `/assets/:file` its content-hashed bundles, cached for a year and immutable, while
 * the page itself is revalidated every time so a new build is picked up at once.
 */
export function webRoutes(dir: string = WEB_DIST_DIR): Route[] {
  const built = loadBuilt(dir);
  return [
    route({
      method: "get",
      path: "/",
      tag: "dashboard",
      access: "public",
      summary: "The dashboard (a single page; sign in with an API key or JWT).",
      responseType: "text/html",
      handler: async ({ req, res }) => {
        if (!built) throw new LabrigError("not_found", `The dashboard is not built (no ${join(dir, "index.html")}). Run npm run build, then restart the hub.`);
        await applyPageSecurity(req, res);
        res.setHeader("Cache-Control", "no-cache");
        res.type("html").send(built.index);
        return RESPONDED;
      },
    }),
    route({
      method: "get",
      path: "/assets/:file",
      tag: "dashboard",
      access: "public",
      summary: "The dashboard's content-hashed assets.",
      params: z.object({ file: z.string().min(1).max(200) }),
      responseType: "application/octet-stream",
      handler: async ({ params, res }) => {
        const path = built?.assets.get(params.file);
        if (!path) throw new LabrigError("not_found", `No dashboard asset '${params.file}'. Reload the page: it may come from an older build.`);
        res.setHeader("Cache-Control", "public, max-age=31536000, immutable");
        res.type(TYPES[extname(path)] ?? "application/octet-stream");
        await new Promise<void>((resolve, reject) => res.sendFile(path, (err) => (err ? reject(err) : resolve())));
        return RESPONDED;
      },
    }),
  ];
}
