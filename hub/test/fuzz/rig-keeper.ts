import { ACTION_NAMES, actionCatalogueJsonSchema } from "@labrig/shared";
import { getJson, postJson } from "../helpers.js";
import type { RawAnswer } from "./raw-http.js";
import type { RestFuzzHooks } from "./rest-fuzz.js";
import type { FuzzRequest, Identity, Operation } from "./rest-requests.js";
import type { Random } from "./random.js";
import { RIG_DEVICE, RIG_HOST, SACRIFICIAL_HOSTS, type Rig } from "./rig.js";
import { validValue, type JsonSchema, type ValueContext } from "./schema-values.js";

/** Catalogue params the time-like fields of which are short, so a valid action ends in well under a second. */
const SHORT: Record<string, number[]> = { ms: [0, 1, 5, 20], timeout_ms: [1, 10, 50], width_ms: [1, 5, 20], off_ms: [0, 5, 20], duration_s: [0.1, 0.2] };
const CATALOGUE = actionCatalogueJsonSchema();

/** The collection the `{id}` of a route belongs to: the literal segment before it (`/api/runs/{id}/junit.xml` → runs). */
function collectionOf(template: string): string {
  const segments = template.split("/");
  return segments[segments.indexOf("{id}") - 1] ?? template;
}

/** The collection what a POST creates belongs to: its last segment (`/api/testcases/{id}/runs` → runs). */
function createdIn(template: string): string {
  return template.split("/").pop() ?? template;
}

/** The rig's resource for each kind the catalogue names. */
const RIG_RESOURCES: Record<string, string> = { serial: "console", power: "power", gpio: "reset", video: "screen" };

/**
 * The REST fuzzer's view of the rig: which values path parameters and fields take (the rig's real
 * names, ids the fuzzer created, names that exist nowhere), and what is undone after a success so
 * the rig stays as it was — leases released, sacrificial hosts re-created, the device left idle.
 */
export class RigKeeper implements RestFuzzHooks {
  private readonly created = new Map<string, string[]>();
  private newHosts = 0;
  resets = 0;

  constructor(private readonly rig: Rig) {}

  token(identity: Identity): string | null {
    return this.rig.tokens[identity];
  }

  pathValue(op: Operation, param: string, rnd: Random): string {
    const generated = (): string => {
      const spec = op.params.find((p) => p.name === param);
      return String(validValue(spec?.schema ?? { type: "string", minLength: 1, maxLength: 20 }, { rnd, root: {} }));
    };
    if (param === "host") {
      // The real host appears only where a request cannot take it away: reads and running actions.
      const harmless = op.method === "GET" || op.template.endsWith("/actions");
      return rnd.pick(harmless ? [RIG_HOST, RIG_HOST, "ghost", generated()] : [...SACRIFICIAL_HOSTS, "ghost", generated()]);
    }
    if (param === "device") return rnd.pick([RIG_DEVICE, RIG_DEVICE, "nope", generated()]);
    const known = this.created.get(collectionOf(op.template)) ?? [];
    return rnd.pick([...known, ...known, "does-not-exist", generated()]);
  }

  values(op: Operation): Omit<ValueContext, "rnd"> {
    const creatingHost = op.method === "POST" && op.template === "/api/hosts";
    return {
      root: {},
      hints: (name, path) => {
        if (creatingHost && name === "name") return [`fz-new-${this.newHosts++}`];
        if (path[path.length - 2] === "testcases") return this.created.get("testcases") ?? [];
        switch (name) {
          case "host":
            return [RIG_HOST, RIG_HOST, RIG_HOST, "ghost"];
          case "device":
            return [RIG_DEVICE, RIG_DEVICE, RIG_DEVICE, "nope"];
          case "count":
            return [1, 1, 2];
          case "resource":
            return ["console", "power", "reset", "screen", "nope"];
          case "action":
            return [...ACTION_NAMES, "nope.nope"];
          case "capabilities":
            return [[], ["serial"], ["power", "gpio"], ["nope"]];
          case "labels":
            return [{}, { board: "sim" }, { board: "nope" }];
          case "cron":
            // Valid schedules that never fire during a run: a campaign started by cron would compete for the device.
            return ["0 0 1 1 *", "0 0 29 2 1"];
          default:
            return undefined;
        }
      },
      // Related fields made to agree, most of the time: an action's params from the catalogue (short
      // waits), the rig's resource of the action's kind, and no lease token (no lease exists).
      adjust: (value, _path, ctx) => {
        if ("lease_token" in value && ctx.rnd.chance(0.8)) delete value.lease_token;
        const spec = typeof value.action === "string" ? CATALOGUE[value.action] : undefined;
        if (!spec) return;
        if (ctx.rnd.chance(0.7)) value.params = validValue(spec.params as JsonSchema, { rnd: ctx.rnd, root: {}, hints: (field) => SHORT[field] }, ["params"]);
        if (ctx.rnd.chance(0.7)) {
          const resource = RIG_RESOURCES[String(spec.resource_kind)];
          if (resource === undefined) delete value.resource;
          else value.resource = resource;
        }
      },
    };
  }

  async afterSuccess(req: FuzzRequest, answer: RawAnswer): Promise<void> {
    if (req.method === "GET") return;
    const body = this.parse(answer.text);
    const id = typeof body?.id === "string" ? body.id : null;
    if (req.method === "POST" && id !== null) this.remember(createdIn(req.op.template), id);
    const artifact = (body?.result as { artifact?: unknown } | null | undefined)?.artifact;
    if (typeof artifact === "string") this.remember("artifacts", artifact);
    if (req.op.template === "/api/leases" && id !== null) {
      const released = await getJson(`${this.rig.hub.url}/api/leases/${id}`, { method: "DELETE", headers: { "content-type": "application/json" }, body: "{}" });
      if (released.status !== 200) throw new Error(`could not release the fuzzer's lease ${id}: ${released.status} ${released.text}`);
    }
    const host = decodeURIComponent(/^\/api\/hosts\/([^/?]+)/.exec(req.path)?.[1] ?? "");
    if (req.method === "DELETE" && req.op.template === "/api/hosts/{host}" && SACRIFICIAL_HOSTS.includes(host)) {
      const again = await postJson(`${this.rig.hub.url}/api/hosts`, { name: host });
      if (again.status !== 201) throw new Error(`could not re-create sacrificial host ${host}: ${again.status} ${again.text}`);
    }
    await this.settle();
  }

  /**
   * Waits until no action or run is queued or running, so the next request finds the device free:
   * what is still busy after 10 s is cancelled, and what is still busy 20 s later is a finding.
   */
  async settle(): Promise<void> {
    const started = Date.now();
    let cancelled = false;
    for (;;) {
      const busy = await this.busy();
      if (busy.actions.length === 0 && busy.runs.length === 0) return;
      const waited = Date.now() - started;
      if (waited > 30_000) throw new Error(`still busy 20 s after being cancelled: actions ${busy.actions.join(", ") || "none"}, runs ${busy.runs.join(", ") || "none"}`);
      if (waited > 10_000 && !cancelled) {
        cancelled = true;
        this.resets++;
        for (const a of busy.actions) await getJson(`${this.rig.hub.url}/api/actions/${a}`, { method: "DELETE" });
        for (const r of busy.runs) await getJson(`${this.rig.hub.url}/api/runs/${r}/cancel`, { method: "POST" });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async busy(): Promise<{ actions: string[]; runs: string[] }> {
    const ids = async (path: string, key: string): Promise<string[]> => {
      const res = await getJson(`${this.rig.hub.url}${path}`);
      if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.text}`);
      return (res.body[key] as { id: string }[]).map((x) => x.id);
    };
    return {
      actions: [...(await ids("/api/actions?status=running&limit=50", "actions")), ...(await ids("/api/actions?status=queued&limit=50", "actions"))],
      runs: [...(await ids("/api/runs?status=running&limit=50", "runs")), ...(await ids("/api/runs?status=queued&limit=50", "runs"))],
    };
  }

  private remember(collection: string, id: string): void {
    const list = this.created.get(collection) ?? [];
    list.push(id);
    if (list.length > 20) list.shift();
    this.created.set(collection, list);
  }

  private parse(text: string): Record<string, unknown> | null {
    try {
      const v = JSON.parse(text) as unknown;
      return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : null;
    } catch {
      // A success without JSON (204, XML, a file): it created nothing the fuzzer can name.
      return null;
    }
  }
}
