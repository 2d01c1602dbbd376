import type { Express } from "express";
import { ROUTES, routeKey, type RouteSpec } from "./route-policy.js";

/** One route express would serve. */
export interface ServedRoute {
  method: string;
  path: string;
}

// The shape of express 5's router internals that the inventory reads (the `router` package's Layer and Route).
interface LayerLike {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: unknown };
}

function joinPath(prefix: string, path: string): string {
  const joined = `${prefix.replace(/\/$/, "")}/${path.replace(/^\//, "")}`;
  return joined.length > 1 ? joined.replace(/\/$/, "") : joined;
}

function walk(stack: readonly LayerLike[], prefix: string, out: ServedRoute[]): void {
  for (const layer of stack) {
    if (layer.route) {
      if (typeof layer.route.path !== "string") throw new Error(`Route ${String(layer.route.path)} under ${prefix || "/"} is not a string path; the route table can only describe string paths.`);
      const path = joinPath(prefix, layer.route.path);
      for (const [method, on] of Object.entries(layer.route.methods)) {
        if (!on) continue;
        if (method === "_all") throw new Error(`${path} is declared with .all(); declare each method so the route table can authorize it.`);
        out.push({ method, path });
      }
    } else if (Array.isArray(layer.handle?.stack)) {
      const mount = typeof layer.rawPath === "string" ? layer.rawPath : "/";
      walk(layer.handle.stack as LayerLike[], joinPath(prefix, mount), out);
    }
  }
}

/** Every method+path the app's routers declare. */
export function servedRoutes(app: Express): ServedRoute[] {
  const out: ServedRoute[] = [];
  walk((app as unknown as { router: { stack: LayerLike[] } }).router.stack, "", out);
  return out;
}

/** Served routes with no entry in the route table. */
export function undeclaredRoutes(app: Express, routes: readonly RouteSpec[] = ROUTES): ServedRoute[] {
  const declared = new Set(routes.map((r) => routeKey(r.method, r.path)));
  return servedRoutes(app).filter((r) => !declared.has(routeKey(r.method, r.path)));
}

/** Throws when a router serves a route the table does not authorize and document. */
export function assertRoutesDeclared(app: Express, routes: readonly RouteSpec[] = ROUTES): void {
  const missing = undeclaredRoutes(app, routes);
  if (missing.length === 0) return;
  throw new Error(
    `These routes have no entry in hub/src/api/route-policy.ts, so the hub would refuse them: ${missing.map((r) => `${r.method.toUpperCase()} ${r.path}`).join(", ")}. Add one line per route (access, summary, schemas) to ROUTES.`,
  );
}
