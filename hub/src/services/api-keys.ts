import { randomBytes, timingSafeEqual } from "node:crypto";
import { ApiKeyCreateBodySchema, LabrigError, nowIso, parseOrThrow, type ApiKeyCreated, type ApiKeyView, type Role } from "@labrig/shared";
import type { Logger } from "../logger.js";
import type { ApiKeyRecord, ApiKeysRepository } from "../repositories/api-keys.js";
import { hashToken } from "./tokens.js";

/** Prefix of generated API keys, so a leaked one is recognisable (secret scanners, logs). */
export const API_KEY_PREFIX = "lrk_";

/** Name of the admin key whose value comes from LABRIG_ADMIN_KEY. */
export const ENV_ADMIN_KEY_NAME = "env-admin";

/** Name of the admin key the hub makes on a first start without one. */
export const INITIAL_ADMIN_KEY_NAME = "initial-admin";

/** A stored key is marked used at most this often, so authentication does not write on every request. */
const TOUCH_EVERY_MS = 60_000;

/**
 * How long a verified key is answered from memory. Revocations reach the cache at once either way
 * (revoke() here clears it; a commit by another process changes the database's data_version, which
 * every lookup checks); the TTL bounds how stale a key's name and role can be, and the cache's size.
 */
const VERIFIED_TTL_MS = 5_000;

/** Beyond this many cached keys the cache starts over (only valid keys get in, so this is generous). */
const VERIFIED_MAX = 1_000;

/** How often the hub looks for keys another process (the CLI) revoked, to cut the sockets they opened. */
export const REVOCATION_POLL_MS = 1_000;

interface VerifiedKey {
  view: ApiKeyView;
  expiresAtMs: number;
}

/** A new API key: `lrk_` + 32 random bytes, base64url. */
export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString("base64url");
}

function view(key: ApiKeyRecord): ApiKeyView {
  return { id: key.id, name: key.name, role: key.role, created_at: key.createdAt, last_used_at: key.lastUsedAt };
}

/**
 * Operator API keys: created with a role, stored as sha256 only, verified in constant time.
 * Plaintext keys leave this class only as return values of create() and bootstrap().
 */
export class ApiKeys {
  /**
   * Keys verified recently, by the sha256 of the presented key (never the key itself), so a request
   * costs one hash instead of a database lookup. Only keys that verified are stored.
   */
  private readonly verified = new Map<string, VerifiedKey>();
  /** data_version when the cache was last known current. */
  private verifiedDataVersion = -1;
  /** Key ids that existed at the last look (for noticing revocations by another process). */
  private knownIds = new Set<string>();
  private watchedDataVersion = -1;
  private watchTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly keys: ApiKeysRepository,
    /** Told the id of every key revoked, here or (noticed by the watch) by another process: the hub announces it on its bus. */
    private readonly notifyRevoked: (keyId: string) => void = () => undefined,
  ) {}

  /** Creates a key and returns it; the key itself is not stored anywhere. */
  create(body: unknown): ApiKeyCreated {
    const { name, role } = parseOrThrow(ApiKeyCreateBodySchema, body, { what: "API key" });
    return this.keys.transaction(() => {
      if (this.keys.getByName(name)) {
        throw new LabrigError("conflict", `An API key named '${name}' already exists. Pick another name, or revoke it first (DELETE /api/keys/:id or labrig-hub key revoke ID).`);
      }
      const key = generateApiKey();
      const id = `key-${randomBytes(6).toString("hex")}`;
      this.keys.insert({ id, name, role, keyHash: hashToken(key), createdAt: nowIso() });
      this.knownIds.add(id);
      return { id, name, role, key };
    });
  }

  list(): ApiKeyView[] {
    return this.keys.list().map(view);
  }

  /** Deletes a key; the last admin key cannot go, so the hub always has someone who can manage it. */
  revoke(id: string): ApiKeyView {
    const revoked = this.keys.transaction(() => {
      const key = this.keys.get(id);
      if (!key) throw new LabrigError("not_found", `No API key '${id}'. GET /api/keys (or labrig-hub key list) lists them.`);
      if (key.role === "admin" && this.keys.countRole("admin") <= 1) {
        throw new LabrigError("conflict", `'${key.name}' is the last admin key. Create another admin key first, then revoke this one.`);
      }
      this.keys.delete(id);
      this.verified.clear();
      return view(key);
    });
    this.knownIds.delete(revoked.id);
    this.notifyRevoked(revoked.id);
    return revoked;
  }

  /**
   * Starts looking for keys revoked by another process (`labrig-hub key revoke` writes the same file):
   * each poll reads data_version, which only another connection's commit changes, and only then lists
   * the keys to see which are gone. Revocations here are announced by revoke() itself.
   */
  watchExternalRevocations(logger: Logger, intervalMs = REVOCATION_POLL_MS): void {
    this.stopWatching();
    this.watchedDataVersion = this.keys.dataVersion();
    this.knownIds = new Set(this.keys.list().map((k) => k.id));
    this.watchTimer = setInterval(() => {
      try {
        this.checkExternalRevocations();
      } catch (err) {
        // A locked or failing read must not stop the watch; the next poll looks again.
        logger.error({ err }, "could not check for API keys revoked by another process");
      }
    }, intervalMs);
    this.watchTimer.unref();
  }

  stopWatching(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = null;
  }

  private checkExternalRevocations(): void {
    const version = this.keys.dataVersion();
    if (version === this.watchedDataVersion) return;
    this.watchedDataVersion = version;
    const now = new Set(this.keys.list().map((k) => k.id));
    for (const id of this.knownIds) if (!now.has(id)) this.notifyRevoked(id);
    this.knownIds = now;
  }

  /** The key `presented` belongs to, or null. */
  verify(presented: string): ApiKeyView | null {
    const presentedHash = hashToken(presented);
    const now = Date.now();
    // Another process (the CLI) may have revoked or changed keys: then nothing cached can be trusted.
    const dataVersion = this.keys.dataVersion();
    if (dataVersion !== this.verifiedDataVersion) {
      this.verified.clear();
      this.verifiedDataVersion = dataVersion;
    }
    // Keyed by digest like the database lookup below, so the map lookup leaks nothing useful through timing either.
    const cached = this.verified.get(presentedHash);
    if (cached !== undefined && cached.expiresAtMs > now) return cached.view;
    // The lookup is by sha256 digest, which leaks nothing useful through timing (an attacker cannot choose digests);
    // the constant-time comparison below is what decides.
    const found = this.keys.findHashed(presentedHash);
    if (!found) return null;
    const a = Buffer.from(presentedHash, "hex");
    const b = Buffer.from(found.storedHash, "hex");
    if (a.length !== b.length || !timingSafeEqual(a, b)) return null;
    // The touch runs on cache misses only: every VERIFIED_TTL_MS at most, well inside TOUCH_EVERY_MS.
    if (found.key.lastUsedAt === null || now - Date.parse(found.key.lastUsedAt) > TOUCH_EVERY_MS) {
      this.keys.touch(found.key.id, new Date(now).toISOString());
    }
    const result = view(found.key);
    if (this.verified.size >= VERIFIED_MAX) this.verified.clear();
    this.verified.set(presentedHash, { view: result, expiresAtMs: now + VERIFIED_TTL_MS });
    return result;
  }

  /**
   * Run at every hub start. With `envKey` (LABRIG_ADMIN_KEY) the `env-admin` key is created or
   * re-pointed at that value. Then, when no admin key exists at all, one is generated and
   * returned so the caller can show it once.
   */
  bootstrap(envKey: string | undefined): { generated: ApiKeyCreated | null; envKeyId: string | null } {
    // It can re-point env-admin at another value: keys verified before must be checked again.
    this.verified.clear();
    return this.keys.transaction(() => {
      let envKeyId: string | null = null;
      if (envKey !== undefined) {
        const hash = hashToken(envKey);
        const existing = this.keys.getByName(ENV_ADMIN_KEY_NAME);
        const clash = this.keys.findHashed(hash);
        if (clash && clash.key.name !== ENV_ADMIN_KEY_NAME) {
          throw new LabrigError("conflict", `LABRIG_ADMIN_KEY has the same value as the API key '${clash.key.name}'. Use a value of its own (openssl rand -base64 32).`);
        }
        if (existing) {
          this.keys.setHashAndRole(existing.id, hash, "admin");
          envKeyId = existing.id;
        } else {
          envKeyId = `key-${randomBytes(6).toString("hex")}`;
          this.keys.insert({ id: envKeyId, name: ENV_ADMIN_KEY_NAME, role: "admin", keyHash: hash, createdAt: nowIso() });
        }
      }
      if (this.keys.countRole("admin") > 0) return { generated: null, envKeyId };
      let name = INITIAL_ADMIN_KEY_NAME;
      for (let n = 2; this.keys.getByName(name); n++) name = `${INITIAL_ADMIN_KEY_NAME}-${n}`;
      const key = generateApiKey();
      const id = `key-${randomBytes(6).toString("hex")}`;
      const role: Role = "admin";
      this.keys.insert({ id, name, role, keyHash: hashToken(key), createdAt: nowIso() });
      return { generated: { id, name, role, key }, envKeyId };
    });
  }
}
