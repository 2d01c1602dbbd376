import { ERROR_CODES, ErrorEnvelopeSchema } from "@labrig/shared";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { Random } from "./random.js";
import type { RawAnswer, RawHttp } from "./raw-http.js";
import { generateRequest, operationsOf, type FuzzRequest, type Identity, type Operation, type RestFixture } from "./rest-requests.js";
import type { JsonSchema } from "./schema-values.js";
import { Failures, Tally } from "./tally.js";

/*
 * The REST fuzzer's loop and its verdicts. Requests go one at a time (the rig has one device: the
 * fuzzer must not make its own requests wait for each other, which would turn into honest 503s),
 * and every answer is checked:
 *   - no 5xx, no connection closed without an answer, no request left unanswered;
 *   - every error is the one envelope, its error_code's status is the status, request_id is echoed;
 *   - nothing is granted (2xx) to a missing or bad credential, nor below the route's role;
 *   - a JSON body the published schema refuses is never accepted.
 */

const ROLE_RANK: Record<string, number> = { public: 0, viewer: 1, operator: 2, admin: 3 };
const IDENTITY_RANK: Record<Identity, number> = { none: -1, bad: -1, viewer: 1, operator: 2, admin: 3 };

export const STATUS_CLASSES = ["2xx", "3xx", "4xx", "5xx", "no answer"] as const;

export interface RestFuzzHooks extends RestFixture {
  /** After a 2xx: learn created ids, undo what would damage the fixture, wait for the rig to be idle. */
  afterSuccess(req: FuzzRequest, answer: RawAnswer): Promise<void>;
}

export interface RestFuzzResult {
  sent: number;
  /** Route (METHOD template) × status class. */
  byRoute: Tally;
  /** Mutation kind × status class. */
  byMutation: Tally;
  /** error_code × status, of every error answer. */
  byCode: Tally;
  unsendable: number;
  failures: Failures;
}

function statusClass(status: number): string {
  return status === 0 ? "no answer" : `${Math.floor(status / 100)}xx`;
}

function describe(req: FuzzRequest, answer: RawAnswer): string {
  const body = req.body === null ? "" : ` body=${req.body.subarray(0, 200).toString("latin1")}${req.body.length > 200 ? `…(${req.body.length} bytes)` : ""}`;
  return `${req.method} ${req.path.slice(0, 200)} [${req.mutation}, ${req.identity}] → ${answer.status || answer.failure} ${answer.text.slice(0, 300)}${body}`;
}

export class RestFuzzer {
  private readonly ops: Operation[];
  private readonly validators = new Map<Operation, ValidateFunction | null>();
  private readonly ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });

  constructor(
    doc: JsonSchema,
    private readonly http: RawHttp,
    private readonly hooks: RestFuzzHooks,
  ) {
    addFormats.default(this.ajv);
    this.ops = operationsOf(doc);
  }

  get operations(): readonly Operation[] {
    return this.ops;
  }

  /**
   * Sends `count` generated requests spread evenly over the operations, each answered within
   * `timeoutMs`, or as many as fit in `budgetMs`; the same seed sends the same requests.
   */
  async run(count: number, seed: number, timeoutMs: number, budgetMs: number): Promise<RestFuzzResult> {
    const rnd = new Random(seed);
    const deadline = Date.now() + budgetMs;
    const result: RestFuzzResult = { sent: 0, byRoute: new Tally(), byMutation: new Tally(), byCode: new Tally(), unsendable: 0, failures: new Failures() };
    for (let i = 0; i < count && Date.now() < deadline; i++) {
      const op = this.ops[i % this.ops.length] as Operation;
      const req = generateRequest(op, this.hooks, rnd.fork());
      const answer = await this.http.send(req.method, req.path, req.headers, req.body, timeoutMs);
      if (answer.failure?.startsWith("unsendable")) {
        result.unsendable++;
        continue;
      }
      result.sent++;
      const cls = statusClass(answer.status);
      result.byRoute.add(`${op.method} ${op.template}`, cls);
      result.byMutation.add(req.mutation, cls);
      this.check(req, answer, result);
      if (answer.status >= 200 && answer.status < 300) await this.hooks.afterSuccess(req, answer);
    }
    return result;
  }

  private check(req: FuzzRequest, answer: RawAnswer, result: RestFuzzResult): void {
    const fail = (kind: string): void => result.failures.add(kind, describe(req, answer));
    if (answer.status === 0) return fail(`no answer (${answer.failure ?? "?"})`);
    if (answer.status >= 500) return fail(`${answer.status} answer`);
    const declared = req.method === req.op.method;
    const ok = answer.status >= 200 && answer.status < 300;
    if (ok && declared && req.op.access !== "public" && IDENTITY_RANK[req.identity] < (ROLE_RANK[req.op.access] ?? 0)) fail(`2xx for ${req.identity} on a ${req.op.access} route`);
    if (ok && declared && req.json !== undefined && req.headers["content-type"] === "application/json" && this.bodyValidator(req.op)?.(req.json) === false) fail("2xx for a body the published schema refuses");
    if (answer.status >= 400 && req.method !== "HEAD") this.checkEnvelope(answer, fail, result);
  }

  private checkEnvelope(answer: RawAnswer, fail: (kind: string) => void, result: RestFuzzResult): void {
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      // Not JSON at all: that is the finding.
      fail(`${answer.status} without the JSON envelope`);
      return;
    }
    const envelope = ErrorEnvelopeSchema.safeParse(body);
    if (!envelope.success) return fail(`${answer.status} with a body that is not the envelope`);
    result.byCode.add(envelope.data.error_code, String(answer.status));
    if (ERROR_CODES[envelope.data.error_code].http !== answer.status) fail(`${envelope.data.error_code} answered with ${answer.status}`);
    if (envelope.data.request_id === undefined || envelope.data.request_id !== answer.headers["x-request-id"]) fail("request_id not echoed in X-Request-Id");
  }

  private bodyValidator(op: Operation): ValidateFunction | null {
    if (!this.validators.has(op)) {
      let validate: ValidateFunction | null = null;
      if (op.body) validate = this.ajv.compile(op.body);
      this.validators.set(op, validate);
    }
    return this.validators.get(op) ?? null;
  }
}
