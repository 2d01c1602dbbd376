import express, { type Express, type RequestHandler } from "express";
import type { Logger } from "../logger.js";
import type { AuthFailureLimiter } from "../services/auth-failure-limiter.js";
import type { OperatorAuth } from "../services/operator-auth.js";
import { authorize, unknownRoute } from "./auth.js";
import { jsonBody } from "./body-parsing.js";
import { errorHandler, requireJsonBody } from "./errors.js";
import { requestContext, requestLocals, requestLog } from "./request-id.js";
import { accessOf, serve, type Route } from "./route.js";
import { corsPolicy, securityHeaders } from "./security.js";

export interface AppDeps {
  logger: Logger;
  auth: OperatorAuth;
  limiter: AuthFailureLimiter;
  /** JSON body limit, in the `bytes` package's syntax. */
  bodyLimit: string;
  corsOrigins: readonly string[];
  routes: readonly Route[];
}

/**
 * The REST API as an express app; the caller owns the HTTP server. Each declared route is mounted
 * with its own chain: the gate for its access (before any body is read, so anonymous callers cannot
 * make the hub parse 256 kB), the JSON body parser when it takes a body, then validation and the
 * handler. What no route matches is authenticated, then answered 404.
 */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  // nginx in front terminates TLS; trust one proxy hop so req.ip is the operator, not nginx.
  app.set("trust proxy", "loopback");
  app.use(requestContext(deps.logger));
  app.use(securityHeaders());
  if (deps.corsOrigins.length > 0) app.use(corsPolicy(deps.corsOrigins));
  const json = jsonBody(deps.bodyLimit);
  const guard = { auth: deps.auth, limiter: deps.limiter };
  const seen = new Set<string>();
  for (const r of deps.routes) {
    const key = `${r.method} ${r.path}`;
    if (seen.has(key)) throw new Error(`Route ${key} is declared twice.`);
    seen.add(key);
    const access = accessOf(r);
    const chain: RequestHandler[] = [];
    if (access !== "public") chain.push(authorize(guard, access));
    if (r.body) chain.push(requireJsonBody, json);
    chain.push((req, res, next) => {
      serve(r, req, res, requestLocals(res).principal ?? null, () => requestLog(res)).catch(next);
    });
    app[r.method](r.path, ...chain);
  }
  app.use(unknownRoute(guard));
  app.use(errorHandler);
  return app;
}
