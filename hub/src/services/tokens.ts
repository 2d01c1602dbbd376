import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { IdSchema, LabelsSchema, LabrigError, nowIso, parseOrThrow, type Labels } from "@labrig/shared";
import type { HostEventsRepository } from "../repositories/host-events.js";
import type { HostsRepository } from "../repositories/hosts.js";

/** Prefix of host tokens, so a leaked one is recognisable (secret scanners, logs). */
export const HOST_TOKEN_PREFIX = "lrh_";

/** A new host token: `lrh_` + 32 random bytes, base64url. */
export function generateHostToken(): string {
  return HOST_TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

/** sha256 hex of a token: the only form the hub stores. A fast hash suffices because tokens carry 256 bits of entropy. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/**
 * Stored instead of a hash when a host's token is revoked. It is not hex, so it can never equal a
 * sha256 digest: no token matches until a new one is issued.
 */
export const REVOKED_TOKEN_HASH = "revoked";

/** Constant-time comparison of a stored hash with a presented token. */
export function tokenMatchesHash(token: string, storedHash: string): boolean {
  const presented = Buffer.from(hashToken(token), "hex");
  const stored = Buffer.from(storedHash, "hex");
  // Both are sha256 digests, so lengths only differ when the stored value is corrupt.
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/**
 * Host enrollment: creates hosts with their token, rotates tokens, verifies what agents present.
 * Plaintext tokens leave this class only as return values of add() and rotate().
 */
export class HostTokens {
  constructor(
    private readonly hosts: HostsRepository,
    private readonly events: HostEventsRepository,
  ) {}

  /** Creates a host named `name` (its id) and returns its token, which is not stored anywhere. */
  add(name: string, labels: Labels = {}): { id: string; token: string } {
    const id = parseOrThrow(IdSchema, name, { what: "host name" });
    const checkedLabels = parseOrThrow(LabelsSchema, labels, { what: "labels" });
    if (this.hosts.get(id)) {
      throw new LabrigError("conflict", `Host '${id}' already exists. To give it a new token run: labrig-hub host token ${id}`);
    }
    const token = generateHostToken();
    this.hosts.insert({ id, name: id, labels: checkedLabels, tokenHash: hashToken(token), createdAt: nowIso() });
    return { id, token };
  }

  /**
   * Replaces the host's token; the old one stops working at once. The REST route also drops the
   * connected agent at once; after the CLI (another process) the daemon drops it at its next heartbeat.
   */
  rotate(id: string): string {
    const token = generateHostToken();
    if (!this.hosts.setTokenHash(id, hashToken(token))) {
      throw new LabrigError("unknown_host", `No host '${id}'. Create it with: labrig-hub host add ${id}`);
    }
    this.events.add({ hostId: id, kind: "token_rotated", at: nowIso() });
    return token;
  }

  /** Revokes the host's token: no token works for it until rotate() issues a new one. The host and its history stay. */
  revoke(id: string): void {
    if (!this.hosts.setTokenHash(id, REVOKED_TOKEN_HASH)) {
      throw new LabrigError("unknown_host", `No host '${id}'. GET /api/hosts lists the hosts.`);
    }
    this.events.add({ hostId: id, kind: "token_revoked", at: nowIso() });
  }

  /** Deletes the host, its devices and events. Its action records stay (they name the host by id). */
  remove(id: string): void {
    if (!this.hosts.delete(id)) throw new LabrigError("unknown_host", `No host '${id}'. GET /api/hosts lists the hosts.`);
  }

  /** The stored hash when `token` is the host's current token, else null (unknown host or wrong token). */
  verify(id: string, token: string): string | null {
    const stored = this.hosts.tokenHash(id);
    if (stored === undefined) {
      // Hash anyway so an unknown host costs the same time as a wrong token.
      tokenMatchesHash(token, hashToken(""));
      return null;
    }
    return tokenMatchesHash(token, stored) ? stored : null;
  }

  /** True while `hash` is still the host's current token hash (false after a rotation). */
  isCurrent(id: string, hash: string): boolean {
    const stored = this.hosts.tokenHash(id);
    return stored !== undefined && stored.length === hash.length && timingSafeEqual(Buffer.from(stored), Buffer.from(hash));
  }
}
