import type { Response } from "express";

// The auth middleware (owned by the security work) sets res.locals.principal = {id, name, role};
// before it runs, or for unauthenticated routes, there is none.
interface Principal {
  id?: unknown;
  name?: unknown;
  role?: unknown;
}

function principal(res: Response): Principal | undefined {
  const p: unknown = (res.locals as { principal?: unknown }).principal;
  return typeof p === "object" && p !== null ? (p as Principal) : undefined;
}

/** Who made the request, for `requested_by`; null when no principal is known. */
export function requesterName(res: Response): string | null {
  const name = principal(res)?.name;
  return typeof name === "string" ? name : null;
}

export function isAdmin(res: Response): boolean {
  return principal(res)?.role === "admin";
}
