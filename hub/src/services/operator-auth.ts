import { LabrigError, ROLES, RoleSchema, roleAtLeast, type Role } from "@labrig/shared";
import type { SecurityConfig } from "../config.js";
import type { Logger } from "../logger.js";
import type { ApiKeys } from "./api-keys.js";
import { JwtVerifier, unauthorized } from "./jwt-verifier.js";

/** Who is calling: set on `res.locals.principal` for every authenticated request and on dashboard sockets. */
export interface Principal {
  /** Key id, or `jwt:<sub>`. */
  id: string;
  /** Key name, or the JWT's subject: what `requested_by` records. */
  name: string;
  role: Role;
  kind: "key" | "jwt";
  /** When the credential stops being valid (JWT exp, ms since epoch); null for keys. */
  expiresAtMs: number | null;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** The highest labrig role named by a claim value (a string or an array of strings), or null. */
function roleFromClaim(value: unknown): Role | null {
  const values = Array.isArray(value) ? value : [value];
  let best: Role | null = null;
  for (const v of values) {
    const parsed = RoleSchema.safeParse(v);
    if (parsed.success && (best === null || roleAtLeast(parsed.data, best))) best = parsed.data;
  }
  return best;
}

/**
 * Turns a bearer credential into a Principal: an API key (looked up by hash) or a JWT (see
 * JwtVerifier for the keys and claims it accepts). Used by REST and sockets alike.
 */
export class OperatorAuth {
  private readonly jwt: JwtVerifier;

  constructor(
    private readonly keys: ApiKeys,
    private readonly security: SecurityConfig,
    private readonly logger: Logger,
  ) {
    this.jwt = new JwtVerifier(security, logger);
  }

  /** Loads the JWT keys; fails the hub's start with a message naming the variable when one is unusable. */
  async start(): Promise<void> {
    await this.jwt.start();
    this.logger.info({ api_keys: true, ...this.jwt.describe(), jwt_role_claim: this.security.jwtRoleClaim }, "operator authentication ready");
  }

  get jwtEnabled(): boolean {
    return this.jwt.enabled;
  }

  /**
   * The principal behind `credential`. Throws `unauthorized` for anything that is not a valid key or
   * JWT, `forbidden` for a valid JWT that names no labrig role, and `auth_unavailable` when the
   * identity provider's keys cannot be fetched.
   */
  async authenticate(credential: string): Promise<Principal> {
    const key = this.keys.verify(credential);
    if (key) return { id: key.id, name: key.name, role: key.role, kind: "key", expiresAtMs: null };
    if (!JWT_SHAPE.test(credential)) {
      throw unauthorized("The API key is not valid (revoked, or mistyped). Ask an admin for a key: labrig-hub key add NAME --role viewer|operator|admin.");
    }
    if (!this.jwtEnabled) {
      throw unauthorized("This credential looks like a JWT, but the hub accepts no JWTs: set JWT_SECRET (HS256), JWT_PUBLIC_KEY_FILE (RS256) or JWT_JWKS_URL, or use an API key.");
    }
    const payload = await this.jwt.verify(credential);
    if (typeof payload.sub !== "string" || payload.sub === "") throw unauthorized("The JWT has no 'sub' claim; the hub records who did what by subject.");
    const role = roleFromClaim(payload[this.security.jwtRoleClaim]);
    if (role === null) {
      throw new LabrigError(
        "forbidden",
        `The JWT's '${this.security.jwtRoleClaim}' claim names no labrig role (one of ${ROLES.join(", ")}). Ask your identity provider's admin to add it, or set JWT_ROLE_CLAIM.`,
      );
    }
    // verify() requires exp.
    return { id: `jwt:${payload.sub}`, name: payload.sub, role, kind: "jwt", expiresAtMs: (payload.exp as number) * 1000 };
  }
}
