import { ROLES, roleAtLeast, type ErrorEnvelope, type Role, type SessionView } from "@labrig/shared";
import { signal } from "@preact/signals";

// The signed-in credential lives in sessionStorage only: it goes with the tab, never to disk for
// other tabs or later visits, and never into a URL.
const STORAGE_KEY = "labrig.credential";

export const credential = signal<string | null>(sessionStorage.getItem(STORAGE_KEY));
export const session = signal<SessionView | null>(null);
/** Why the user was signed out (shown on the sign-in page), e.g. a revoked key. */
export const signedOutReason = signal<string | null>(null);

/** A REST failure: the hub's envelope, with the HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly envelope: ErrorEnvelope,
  ) {
    super(envelope.message);
  }
}

/** Checks a credential with GET /api/session; on success it becomes the tab's credential. */
export async function signIn(token: string): Promise<void> {
  const res = await fetch("/api/session", { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as SessionView | ErrorEnvelope;
  if (!res.ok) throw new ApiError(res.status, body as ErrorEnvelope);
  sessionStorage.setItem(STORAGE_KEY, token);
  signedOutReason.value = null;
  credential.value = token;
  session.value = body as SessionView;
}

export function signOut(reason: string | null = null): void {
  sessionStorage.removeItem(STORAGE_KEY);
  signedOutReason.value = reason;
  session.value = null;
  credential.value = null;
}

/** True when the signed-in role grants `needed`. */
export function can(needed: Role): boolean {
  const s = session.value;
  return s !== null && roleAtLeast(s.role, needed);
}

/** Why a control needing `needed` is disabled for this user, or null when it is not. */
export function whyNot(needed: Role): string | null {
  const s = session.value;
  if (s === null) return "Sign in first.";
  if (roleAtLeast(s.role, needed)) return null;
  return `Needs the ${needed} role; you are signed in as '${s.name}' (${s.role}). Ask an admin for a key with the ${needed} role.`;
}

export { ROLES };
