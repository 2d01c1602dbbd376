import { KeepaliveBodySchema, LeaseBodySchema, LeaseGrantedSchema, LeaseViewSchema, LeasesQuerySchema, ReleaseBodySchema } from "@labrig/shared";
import type { Request } from "express";
import { z } from "zod";
import type { Principal } from "../../services/operator-auth.js";
import type { LeaseCaller, LeaseManager } from "../../services/leases.js";
import { route, type Route } from "../route.js";

const IdPath = z.object({ id: z.string().min(1).max(64) });

function caller(req: Request, principal: Principal | null, bodyToken: string | undefined): LeaseCaller {
  const header = req.get("x-lease-token");
  return { token: bodyToken ?? (header !== undefined && header !== "" ? header : undefined), isAdmin: principal?.role === "admin", name: principal?.name ?? null };
}

/** Leases: exclusive, expiring holds on devices. */
export function leaseRoutes(deps: { leases: LeaseManager }): Route[] {
  return [
    route({
      method: "post",
      path: "/api/leases",
      tag: "leases",
      summary: "Take an exclusive, expiring hold on devices (waiting up to wait_ms); answers its token once.",
      body: LeaseBodySchema,
      response: LeaseGrantedSchema,
      status: 201,
      handler: ({ body, requester }) => deps.leases.create(body, requester),
    }),
    route({
      method: "get",
      path: "/api/leases",
      tag: "leases",
      summary: "Active leases (?all=1 includes ended ones).",
      query: LeasesQuerySchema,
      response: z.object({ leases: z.array(LeaseViewSchema) }),
      handler: ({ query }) => ({ leases: deps.leases.list(query.all === "1" || query.all === "true") }),
    }),
    route({
      method: "get",
      path: "/api/leases/:id",
      tag: "leases",
      summary: "One lease (never its token).",
      params: IdPath,
      response: LeaseViewSchema,
      handler: ({ params }) => deps.leases.get(params.id),
    }),
    route({
      method: "post",
      path: "/api/leases/:id/keepalive",
      tag: "leases",
      summary: "Extend a lease by ttl_s from now (lease token or admin).",
      params: IdPath,
      body: KeepaliveBodySchema,
      response: LeaseViewSchema,
      handler: ({ params, body, req, principal }) => deps.leases.keepalive(params.id, body, caller(req, principal, body.lease_token)),
    }),
    route({
      method: "delete",
      path: "/api/leases/:id",
      tag: "leases",
      summary: "Release a lease (its holder, by token, or an admin).",
      params: IdPath,
      body: ReleaseBodySchema,
      response: LeaseViewSchema,
      handler: ({ params, body, req, principal }) => deps.leases.release(params.id, caller(req, principal, body.lease_token)),
    }),
  ];
}
