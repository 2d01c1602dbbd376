import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Role } from "@labrig/shared";
import { SignJWT, exportSPKI, generateKeyPair } from "jose";
import { expect } from "vitest";
import { getJson, postJson, type RunningHub } from "./helpers.js";

// Credentials of every kind a caller can present, issued the way an operator would (keys through
// the REST API, JWTs signed by "the identity provider"): the auth matrix and the fuzzer use these.

export const HS_SECRET = "hs256-test-secret-that-is-long-enough-0123456789";
export const JWT_ISSUER = "https://idp.test";

/** A key the hub never issued. */
export const BAD_KEY = "lrk_this-key-was-never-issued-by-the-hub-000000";

/** An RS256 key pair whose public half the hub trusts through JWT_PUBLIC_KEY_FILE (see jwtEnv). */
export interface JwtSigner {
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
  env: Record<string, string>;
}

/** Env for a hub that accepts HS256 JWTs signed with HS_SECRET and RS256 ones signed by the returned key. */
export async function jwtEnv(dir: string): Promise<JwtSigner> {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const pemPath = join(dir, "jwt-public.pem");
  writeFileSync(pemPath, await exportSPKI(publicKey));
  return { privateKey, env: { JWT_SECRET: HS_SECRET, JWT_PUBLIC_KEY_FILE: pemPath } };
}

/** An HS256 JWT with these claims, expiring at `exp` (a jose time span, or seconds since the epoch). */
export function hsJwt(claims: Record<string, unknown>, exp: number | string = "10m", secret = HS_SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject("alice").setIssuedAt().setExpirationTime(exp).sign(new TextEncoder().encode(secret));
}

/** An RS256 JWT granting `role`, signed by the provider the hub trusts. */
export function rsJwt(signer: JwtSigner, role: Role): Promise<string> {
  return new SignJWT({ role }).setProtectedHeader({ alg: "RS256" }).setSubject("bob").setIssuer(JWT_ISSUER).setExpirationTime("10m").sign(signer.privateKey);
}

/** A new API key with `role`, created by the admin through POST /api/keys. */
export async function roleKey(hub: RunningHub, role: Role, name = `${role}-key`): Promise<{ id: string; key: string }> {
  const res = await postJson(`${hub.url}/api/keys`, { name, role });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { id: res.body.id as string, key: res.body.key as string };
}

/** An operator key that was created and then revoked through DELETE /api/keys/:id. */
export async function revokedKey(hub: RunningHub): Promise<string> {
  const { id, key } = await roleKey(hub, "operator", "revoked-key");
  const res = await getJson(`${hub.url}/api/keys/${id}`, { method: "DELETE" });
  expect(res.status, res.text).toBe(204);
  return key;
}
