import { signal } from "@preact/signals";
import { api } from "./api.js";
import { session } from "./session.js";

// Lease tokens this tab took (or was given), by lease id: shown once by the hub, kept for the tab
// only, sent with every action on a leased device.
const KEY = "labrig.leases";

function load(): Record<string, string> {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) ?? "{}") as Record<string, string>;
  } catch {
    return {};
  }
}

export const leaseTokens = signal<Record<string, string>>(load());

export function rememberLease(id: string, token: string): void {
  leaseTokens.value = { ...leaseTokens.value, [id]: token };
  sessionStorage.setItem(KEY, JSON.stringify(leaseTokens.value));
}

export function forgetLease(id: string): void {
  const { [id]: _gone, ...rest } = leaseTokens.value;
  leaseTokens.value = rest;
  sessionStorage.setItem(KEY, JSON.stringify(rest));
}

/** The token to send for a device under lease `id`, if this tab holds it. */
export function tokenFor(leaseId: string | undefined): string | undefined {
  return leaseId === undefined ? undefined : leaseTokens.value[leaseId];
}

export const DEFAULT_LEASE_TTL_S = 600;

/** Takes an exclusive lease on one device for this tab; the token is remembered. */
export async function takeLease(host: string, device: string, ttlS = DEFAULT_LEASE_TTL_S): Promise<string> {
  const lease = await api<{ id: string; token: string }>("POST", "/api/leases", { target: { host, device }, ttl_s: ttlS, owner: session.value?.name ?? "dashboard" });
  rememberLease(lease.id, lease.token);
  return lease.id;
}

/** Releases a lease with the tab's token (or as an admin, without one). */
export async function releaseLease(id: string): Promise<void> {
  const token = leaseTokens.value[id];
  await api("DELETE", `/api/leases/${encodeURIComponent(id)}`, token ? { lease_token: token } : undefined);
  forgetLease(id);
}

export async function keepLease(id: string): Promise<void> {
  const token = leaseTokens.value[id];
  if (token) await api("POST", `/api/leases/${encodeURIComponent(id)}/keepalive`, { lease_token: token });
}
