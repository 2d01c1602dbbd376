import { LabrigError, SessionViewSchema } from "@labrig/shared";
import { route, type Route } from "../route.js";

/** GET /api/session: who the caller's credential belongs to, so the dashboard can show what it may do and why not. */
export function sessionRoutes(): Route[] {
  return [
    route({
      method: "get",
      path: "/api/session",
      tag: "system",
      summary: "Who the credential belongs to: name, role, kind and when it expires.",
      response: SessionViewSchema,
      handler: ({ principal }) => {
        // Every non-public route is authenticated before it gets here; without a principal something is miswired.
        if (!principal) throw new LabrigError("internal_error", "No principal on an authenticated route; the hub has logged it.");
        return { name: principal.name, role: principal.role, kind: principal.kind, expires_at: principal.expiresAtMs === null ? null : new Date(principal.expiresAtMs).toISOString() };
      },
    }),
  ];
}
