import { readFile } from "node:fs/promises";
import { LabrigError, ROLES, RoleSchema, roleAtLeast, type Role } from "@labrig/shared";
import { errors as joseErrors, importSPKI, jwtVerify, type CryptoKey, type JWTPayload, type JWTVerifyOptions } from "jose";
import type { SecurityConfig } from "../config.js";
import type { Logger } from "../logger.js";
import type { ApiKeys } from "./api-keys.js";

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

/** Clock skew tolerated between the identity provider, the hub and the operator's machine. */
const JWT_CLOCK_TOLERANCE_S = 30;

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** An `unauthorized` error; what the 401 (or socket connect_error) carries. */
export function unauthorized(message: string): LabrigError {
  return new LabrigError("unauthorized", message);
}

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
 * Turns a bearer credential into a Principal: an API key (looked up by hash) or a JWT
 * (HS256 with JWT_SECRET, RS256 with the key in JWT_PUBLIC_KEY_FILE). Used by REST and sockets alike.
 */
export class OperatorAuth {
  private hsKey: Uint8Array | null = null;
  private rsKey: CryptoKey | null = null;

  constructor(
    private readonly keys: ApiKeys,
    private readonly security: SecurityConfig,
    private readonly logger: Logger,
  ) {}

  /** Loads the JWT keys; fails the hub's start with a message naming the variable when one is unusable. */
  async start(): Promise<void> {
    this.hsKey = this.security.jwtSecret === null ? null : new TextEncoder().encode(this.security.jwtSecret);
    this.rsKey = null;
    const file = this.security.jwtPublicKeyFile;
    if (file !== null) {
      let pem: string;
      try {
        pem = await readFile(file, "utf8");
      } catch (err) {
        throw new LabrigError("validation_failed", `JWT_PUBLIC_KEY_FILE: cannot read ${file}: ${(err as Error).message}. Point it at the RS256 public key (PEM).`, { cause: err });
      }
      try {
        this.rsKey = await importSPKI(pem, "RS256");
      } catch (err) {
        throw new LabrigError(
          "validation_failed",
          `JWT_PUBLIC_KEY_FILE: ${file} is not an RSA public key in PEM (SPKI, "-----BEGIN PUBLIC KEY-----"): ${(err as Error).message}.`,
          { cause: err },
        );
      }
    }
    this.logger.info({ api_keys: true, jwt_hs256: this.hsKey !== null, jwt_rs256: this.rsKey !== null, jwt_role_claim: this.security.jwtRoleClaim }, "operator authentication ready");
  }

  get jwtEnabled(): boolean {
    return this.hsKey !== null || this.rsKey !== null;
  }

  /**
   * The principal behind `credential`. Throws `unauthorized` for anything that is not a valid key or
   * JWT, and `forbidden` for a valid JWT that names no labrig role.
   */
  async authenticate(credential: string): Promise<Principal> {
    const key = this.keys.verify(credential);
    if (key) return { id: key.id, name: key.name, role: key.role, kind: "key", expiresAtMs: null };
    if (!JWT_SHAPE.test(credential)) {
      throw unauthorized("The API key is not valid (revoked, or mistyped). Ask an admin for a key: labrig-hub key add NAME --role viewer|operator|admin.");
    }
    if (!this.jwtEnabled) {
      throw unauthorized("This credential looks like a JWT, but the hub accepts no JWTs: set JWT_SECRET (HS256) or JWT_PUBLIC_KEY_FILE (RS256), or use an API key.");
    }
    return this.verifyJwt(credential);
  }

  private async verifyJwt(token: string): Promise<Principal> {
    const algorithms = [...(this.hsKey ? ["HS256"] : []), ...(this.rsKey ? ["RS256"] : [])];
    const options: JWTVerifyOptions = { algorithms, clockTolerance: JWT_CLOCK_TOLERANCE_S };
    if (this.security.jwtIssuer !== null) options.issuer = this.security.jwtIssuer;
    if (this.security.jwtAudience !== null) options.audience = this.security.jwtAudience;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        (header) => {
          if (header.alg === "HS256" && this.hsKey) return this.hsKey;
          if (header.alg === "RS256" && this.rsKey) return this.rsKey;
          throw new joseErrors.JOSEAlgNotAllowed(`alg ${String(header.alg)} is not accepted; the hub accepts ${algorithms.join(", ")}`);
        },
        options,
      ));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw unauthorized("The JWT has expired. Get a new token from your identity provider.");
      if (err instanceof joseErrors.JOSEError) throw unauthorized(`The JWT is not valid: ${err.message}.`);
      throw err;
    }
    if (typeof payload.sub !== "string" || payload.sub === "") throw unauthorized("The JWT has no 'sub' claim; the hub records who did what by subject.");
    const role = roleFromClaim(payload[this.security.jwtRoleClaim]);
    if (role === null) {
      throw new LabrigError(
        "forbidden",
        `The JWT's '${this.security.jwtRoleClaim}' claim names no labrig role (one of ${ROLES.join(", ")}). Ask your identity provider's admin to add it, or set JWT_ROLE_CLAIM.`,
      );
    }
    return { id: `jwt:${payload.sub}`, name: payload.sub, role, kind: "jwt", expiresAtMs: typeof payload.exp === "number" ? payload.exp * 1000 : null };
  }
}
