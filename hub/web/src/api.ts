import { makeEnvelope, type ErrorEnvelope } from "@labrig/shared";
import { ApiError, credential, signOut } from "./session.js";

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = credential.value;
  return { ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra };
}

async function failure(res: Response, sentWith: string | null): Promise<ApiError> {
  let envelope: ErrorEnvelope;
  try {
    envelope = (await res.json()) as ErrorEnvelope;
  } catch {
    envelope = makeEnvelope("internal_error", `The hub answered ${res.status} without an error envelope.`);
  }
  // A credential that stopped working (revoked key, expired JWT) ends the session at once; answers to
  // requests still in flight with it (or sent after) do not overwrite the reason.
  if (res.status === 401 && sentWith !== null && credential.value === sentWith) signOut(`your credential stopped working. ${envelope.message}`);
  return new ApiError(res.status, envelope);
}

/** Calls the REST API with the tab's credential; throws ApiError with the hub's envelope on failure. */
export async function api<T>(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
  const sentWith = credential.value;
  const res = await fetch(path, {
    method,
    headers: headers(body === undefined ? extraHeaders : { "content-type": "application/json", ...extraHeaders }),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw await failure(res, sentWith);
  const text = await res.text();
  return (text === "" ? {} : JSON.parse(text)) as T;
}

/** GET a binary resource (artifact, frame, JUnit) with the credential, as an object URL the page can show or download. */
export async function blobUrl(path: string): Promise<{ url: string; type: string; bytes: number; blob: Blob }> {
  const blob = await blobOf(path);
  return { url: URL.createObjectURL(blob), type: blob.type, bytes: blob.size, blob };
}

/** GET a binary resource with the credential. (Read it from the Blob: the CSP lets the page fetch only from the hub, not blob: URLs.) */
export async function blobOf(path: string): Promise<Blob> {
  const sentWith = credential.value;
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) throw await failure(res, sentWith);
  return res.blob();
}

/** The message to show for anything thrown by api(). */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return `${err.envelope.error_code}: ${err.envelope.message}`;
  return err instanceof Error ? err.message : String(err);
}
