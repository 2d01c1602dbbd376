import { readFile } from "node:fs/promises";
import { LabrigError } from "@labrig/shared";
import {
  createRemoteJWKSet,
  errors as joseErrors,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type JWSHeaderParameters,
  type FlattenedJWSInput,
  type JWTPayload,
  type JWTVerifyOptions,
  type RemoteJWKSet,
} from "jose";
import type { SecurityConfig } from "../config.js";
import type { Logger } from "../logger.js";

/** Clock skew tolerated between the identity provider, the hub and the operator's machine. */
const JWT_CLOCK_TOLERANCE_S = 30;

/** Algorithms taken from a JWKS (an OIDC provider's keys); symmetric ones never come from a URL. */
const JWKS_ALGORITHMS = ["RS256", "PS256", "ES256"] as const;

/** After a failed JWKS fetch, requests fail fast for this long instead of each asking the provider again. */
const JWKS_RETRY_AFTER_MS = 1000;

/** A new key id is looked up at the provider at most this often (a token with a made-up kid cannot make the hub hammer it). */
const JWKS_COOLDOWN_MS = 30_000;

/** An `unauthorized` error; what the 401 (or socket connect_error) carries. */
export function unauthorized(message: string): LabrigError {
  return new LabrigError("unauthorized", message);
}

type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey | Uint8Array>;

/**
 * Verifies operator JWTs: HS256 with JWT_SECRET, RS256 with the PEM in JWT_PUBLIC_KEY_FILE, or the
 * keys an OIDC provider publishes at JWT_JWKS_URL (fetched with a timeout, cached, refetched for a new
 * key id at most every 30 s). Every token must expire (`exp`) within JWT_MAX_LIFETIME_S of its issue.
 */
export class JwtVerifier {
  private hsKey: Uint8Array | null = null;
  private rsKey: CryptoKey | null = null;
  private jwks: RemoteJWKSet | null = null;
  private jwksFailedAtMs = 0;

  constructor(
    private readonly security: SecurityConfig,
    private readonly logger: Logger,
  ) {}

  /** Loads the keys; fails the hub's start with a message naming the variable when one is unusable. */
  async start(): Promise<void> {
    const s = this.security;
    this.hsKey = s.jwtSecret === null ? null : new TextEncoder().encode(s.jwtSecret);
    this.rsKey = s.jwtPublicKeyFile === null ? null : await loadPem(s.jwtPublicKeyFile);
    this.jwks = null;
    if (s.jwtJwksUrl !== null) {
      const url = new URL(s.jwtJwksUrl);
      this.jwks = createRemoteJWKSet(url, { timeoutDuration: s.jwtJwksTimeoutMs, cacheMaxAge: s.jwtJwksCacheS * 1000, cooldownDuration: JWKS_COOLDOWN_MS });
      // Fetched once now so a wrong URL shows in the start log; an unreachable provider is not fatal (it may come back).
      try {
        await this.jwks.reload();
        this.logger.info({ jwks_url: jwksUrlForLog(url), keys: this.jwks.jwks()?.keys.length ?? 0 }, "JWKS fetched");
      } catch (err) {
        this.jwksFailedAtMs = Date.now();
        this.logger.warn({ jwks_url: jwksUrlForLog(url), err: (err as Error).message }, "could not fetch the JWKS at start; JWTs are refused with auth_unavailable until it answers");
      }
    }
    if (this.enabled && (s.jwtIssuer === null || s.jwtAudience === null)) {
      this.logger.warn(
        { jwt_issuer: s.jwtIssuer ?? "unset", jwt_audience: s.jwtAudience ?? "unset" },
        "JWTs are accepted without an issuer or audience check: any token the key signed works here, also one meant for another service. Set JWT_ISSUER and JWT_AUDIENCE.",
      );
    }
  }

  get enabled(): boolean {
    return this.hsKey !== null || this.rsKey !== null || this.jwks !== null;
  }

  /** What start() loaded, for the start log. */
  describe(): Record<string, boolean> {
    return { jwt_hs256: this.hsKey !== null, jwt_rs256_pem: this.rsKey !== null, jwt_jwks: this.jwks !== null };
  }

  /** The verified claims of `token`; throws `unauthorized` for an invalid one and `auth_unavailable` when the provider's keys cannot be had. */
  async verify(token: string): Promise<JWTPayload> {
    const algorithms = [...(this.hsKey ? ["HS256"] : []), ...(this.rsKey ? ["RS256"] : []), ...(this.jwks ? JWKS_ALGORITHMS : [])];
    const options: JWTVerifyOptions = { algorithms, clockTolerance: JWT_CLOCK_TOLERANCE_S, requiredClaims: ["exp"] };
    if (this.security.jwtIssuer !== null) options.issuer = this.security.jwtIssuer;
    if (this.security.jwtAudience !== null) options.audience = this.security.jwtAudience;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keyFor(algorithms), options));
    } catch (err) {
      if (err instanceof LabrigError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw unauthorized("The JWT has expired. Get a new token from your identity provider.");
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === "exp") {
        throw unauthorized("The JWT has no 'exp' claim; the hub accepts only tokens that expire. Ask your identity provider for a token with an expiry.");
      }
      if (err instanceof joseErrors.JOSEError) throw unauthorized(`The JWT is not valid: ${err.message}.`);
      throw err;
    }
    this.checkLifetime(payload);
    return payload;
  }

  /** A token valid for longer than the cap is refused, however it was signed: a leaked one must not work for months. */
  private checkLifetime(payload: JWTPayload): void {
    const exp = payload.exp as number;
    const from = typeof payload.iat === "number" ? payload.iat : Math.floor(Date.now() / 1000);
    const lifetime = exp - from;
    const max = this.security.jwtMaxLifetimeS;
    if (lifetime > max + JWT_CLOCK_TOLERANCE_S) {
      const basis = typeof payload.iat === "number" ? "from its 'iat'" : "from now (it has no 'iat')";
      throw unauthorized(`The JWT is valid for ${lifetime} s ${basis}, longer than this hub accepts (JWT_MAX_LIFETIME_S = ${max} s). Ask your identity provider for shorter-lived tokens.`);
    }
  }

  private keyFor(algorithms: string[]): KeyResolver {
    return async (header, token) => {
      if (header.alg === "HS256" && this.hsKey) return this.hsKey;
      if (header.alg === "RS256" && this.rsKey) return this.rsKey;
      if (this.jwks && (JWKS_ALGORITHMS as readonly string[]).includes(header.alg ?? "")) return this.fromJwks(this.jwks, header, token);
      throw new joseErrors.JOSEAlgNotAllowed(`alg ${String(header.alg)} is not accepted; the hub accepts ${algorithms.join(", ")}`);
    };
  }

  private async fromJwks(jwks: RemoteJWKSet, header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    if (Date.now() - this.jwksFailedAtMs < JWKS_RETRY_AFTER_MS) throw this.unavailable(null);
    try {
      return await jwks(header, token);
    } catch (err) {
      // The token names a key the provider does not publish: the token's fault, a 401.
      if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) throw err;
      this.jwksFailedAtMs = Date.now();
      this.logger.warn({ jwks_url: jwksUrlForLog(new URL(this.security.jwtJwksUrl ?? "")), err: (err as Error).message }, "JWKS fetch failed");
      throw this.unavailable(err);
    }
  }

  private unavailable(cause: unknown): LabrigError {
    return new LabrigError(
      "auth_unavailable",
      "The hub could not get the identity provider's signing keys (JWT_JWKS_URL did not answer in time or answered with an error); retry shortly, or use an API key.",
      { retryAfter: Math.ceil(JWKS_RETRY_AFTER_MS / 1000), cause },
    );
  }
}

async function loadPem(file: string): Promise<CryptoKey> {
  let pem: string;
  try {
    pem = await readFile(file, "utf8");
  } catch (err) {
    throw new LabrigError("validation_failed", `JWT_PUBLIC_KEY_FILE: cannot read ${file}: ${(err as Error).message}. Point it at the RS256 public key (PEM).`, { cause: err });
  }
  try {
    return await importSPKI(pem, "RS256");
  } catch (err) {
    throw new LabrigError("validation_failed", `JWT_PUBLIC_KEY_FILE: ${file} is not an RSA public key in PEM (SPKI, "-----BEGIN PUBLIC KEY-----"): ${(err as Error).message}.`, {
      cause: err,
    });
  }
}

/** The JWKS URL without query or credentials (some providers put a key in it). */
function jwksUrlForLog(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}
