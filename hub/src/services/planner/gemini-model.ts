import { ApiError, GoogleGenAI, type GenerateContentResponse, type Part } from "@google/genai";
import { LabrigError, sleep, toLabrigError } from "@labrig/shared";
import type { Logger } from "../../logger.js";

export interface GeminiSettings {
  apiKey: string;
  model: string;
  /** Overrides the SDK's base URL; when unset the SDK's own rules apply (including GOOGLE_GEMINI_BASE_URL). */
  baseUrl: string | undefined;
  /** Pinned so an SDK upgrade cannot silently move us to another API version. */
  apiVersion: string;
  timeoutMs: number;
  /** Further attempts after the first, for 429, 5xx and timeouts. */
  retries: number;
  /** First backoff delay; doubles per retry. */
  retryBaseMs: number;
  /** Use streamGenerateContent (partial text relayed as it arrives) rather than generateContent. */
  stream: boolean;
}

export interface ModelRequest {
  systemInstruction: string;
  parts: Part[];
  responseSchema: Record<string, unknown>;
  /** Called with the text so far while the model streams its answer. */
  onPartial?: (textSoFar: string) => void;
  /** Called before every call, retries included (the daily budget's reservation); what it throws ends generate(). */
  beforeCall?: () => void;
  signal?: AbortSignal;
}

export interface ModelAnswer {
  text: string;
  inputTokens: number;
  outputTokens: number;
  /** Model calls made, retries included (each counts against the daily budget). */
  calls: number;
}

/** Status codes worth another try: rate limits and server-side trouble. */
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/**
 * The one place the hub talks to Gemini. Retries are ours, not the SDK's, so the daily
 * budget counts every call and timeouts cover a whole streamed answer.
 */
export class GeminiModel {
  private readonly client: GoogleGenAI;

  constructor(
    private readonly settings: GeminiSettings,
    private readonly logger: Logger,
  ) {
    this.client = new GoogleGenAI({
      apiKey: settings.apiKey,
      httpOptions: {
        apiVersion: settings.apiVersion,
        ...(settings.baseUrl ? { baseUrl: settings.baseUrl } : {}),
      },
    });
  }

  get model(): string {
    return this.settings.model;
  }

  async generate(request: ModelRequest): Promise<ModelAnswer> {
    let calls = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        request.beforeCall?.();
      } catch (err) {
        // Refused before it was made: only the calls already made count.
        throw Object.assign(toLabrigError(err), { calls });
      }
      calls++;
      try {
        const answer = await this.once(request);
        return { ...answer, calls };
      } catch (err) {
        const failure = classify(err, this.settings.timeoutMs);
        if (request.signal?.aborted) throw new LabrigError("canceled", "The plan was canceled while the model was answering.");
        if (!failure.retryable || attempt >= this.settings.retries) {
          throw Object.assign(failure.error, { calls });
        }
        const delay = this.settings.retryBaseMs * 2 ** attempt;
        this.logger.warn({ attempt: attempt + 1, delay_ms: delay, reason: failure.error.message }, "model call failed, retrying");
        await sleep(delay, request.signal).catch(() => {
          throw new LabrigError("canceled", "The plan was canceled while waiting to retry the model.");
        });
      }
    }
  }

  private async once(request: ModelRequest): Promise<Omit<ModelAnswer, "calls">> {
    const timeout = AbortSignal.timeout(this.settings.timeoutMs);
    const signal = request.signal ? AbortSignal.any([request.signal, timeout]) : timeout;
    const params = {
      model: this.settings.model,
      contents: [{ role: "user", parts: request.parts }],
      config: {
        systemInstruction: request.systemInstruction,
        responseMimeType: "application/json",
        responseJsonSchema: request.responseSchema,
        temperature: 0.2,
        abortSignal: signal,
      },
    };
    let text = "";
    let last: GenerateContentResponse | undefined;
    if (this.settings.stream) {
      const stream = await this.client.models.generateContentStream(params);
      for await (const chunk of stream) {
        if (signal.aborted) throw signal.reason;
        text += chunk.text ?? "";
        last = chunk;
        request.onPartial?.(text);
      }
    } else {
      last = await this.client.models.generateContent(params);
      text = last.text ?? "";
    }
    const usage = last?.usageMetadata;
    return { text, inputTokens: usage?.promptTokenCount ?? 0, outputTokens: usage?.candidatesTokenCount ?? 0 };
  }
}

function classify(err: unknown, timeoutMs: number): { retryable: boolean; error: LabrigError } {
  if (err instanceof ApiError) {
    const retryable = RETRYABLE_STATUS.has(err.status);
    const code = err.status === 429 ? "rate_limited" : "planner_error";
    return { retryable, error: new LabrigError(code, `Gemini answered ${err.status}: ${err.message.slice(0, 500)}`, { cause: err }) };
  }
  const name = (err as { name?: string } | null)?.name;
  if (name === "TimeoutError" || name === "AbortError") {
    return { retryable: true, error: new LabrigError("planner_timeout", `Gemini did not answer within ${timeoutMs} ms.`, { cause: err }) };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { retryable: true, error: new LabrigError("planner_error", `Could not reach Gemini: ${message}`, { cause: err }) };
}
