import { z } from "zod";
import { IdSchema, LabelsSchema } from "./model.js";

/** Operator roles, weakest first: viewer reads, operator runs actions and leases, admin manages keys, hosts and health. */
export const ROLES = ["viewer", "operator", "admin"] as const;
export const RoleSchema = z.enum(ROLES);
export type Role = z.infer<typeof RoleSchema>;

/** True when `held` grants at least what `needed` does. */
export function roleAtLeast(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** Body of `POST /api/keys`. */
export const ApiKeyCreateBodySchema = z
  .object({
    name: IdSchema,
    role: RoleSchema,
  })
  .strict();
export type ApiKeyCreateBody = z.infer<typeof ApiKeyCreateBodySchema>;

/** An API key as `GET /api/keys` lists it: never the key, never its hash. */
export const ApiKeyViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: RoleSchema,
  created_at: z.string(),
  last_used_at: z.string().nullable(),
});
export type ApiKeyView = z.infer<typeof ApiKeyViewSchema>;

/** Answer of `POST /api/keys`: the only time the key itself is shown. */
export const ApiKeyCreatedSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: RoleSchema,
  key: z.string(),
});
export type ApiKeyCreated = z.infer<typeof ApiKeyCreatedSchema>;

/** Body of `POST /api/hosts`: enrol a host; its token is answered once. */
export const HostCreateBodySchema = z
  .object({
    name: IdSchema,
    labels: LabelsSchema.optional(),
  })
  .strict();
export type HostCreateBody = z.infer<typeof HostCreateBodySchema>;

/** Answer of `POST /api/hosts` and `POST /api/hosts/:id/token`: the host's token, shown once. */
export const HostTokenIssuedSchema = z.object({
  id: IdSchema,
  token: z.string(),
});
export type HostTokenIssued = z.infer<typeof HostTokenIssuedSchema>;

/** Answer of `GET /api/session`: who the credential belongs to, so a UI can show what this caller may do. */
export const SessionViewSchema = z.object({
  name: z.string(),
  role: RoleSchema,
  kind: z.enum(["key", "jwt"]),
  /** When the credential stops working (a JWT's exp); null for API keys, which last until revoked. */
  expires_at: z.string().nullable(),
});
export type SessionView = z.infer<typeof SessionViewSchema>;
