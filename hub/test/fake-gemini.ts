import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the SDK sent, as the fake server received it. */
export interface GeminiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage["headers"];
  body: {
    contents?: Array<{ role?: string; parts?: Array<{ text?: string; inlineData?: { mimeType: string; data: string } }> }>;
    systemInstruction?: unknown;
    generationConfig?: { responseMimeType?: string; responseJsonSchema?: Record<string, unknown>; [k: string]: unknown };
    [k: string]: unknown;
  };
  stream: boolean;
  model: string;
}

/** What the fake answers: the model's text (split into SSE chunks when streaming), an HTTP error, or silence. */
export type GeminiReply =
  | { text: string; inputTokens?: number; outputTokens?: number; chunks?: number; delayMs?: number; chunkDelayMs?: number }
  | { status: number; error: string }
  | { hang: true };

export type GeminiBrain = (req: GeminiRequest) => GeminiReply;

/**
 * A local HTTP server speaking the parts of Gemini's REST API the SDK uses:
 * POST /{version}/models/{model}:generateContent (JSON) and
 * POST /{version}/models/{model}:streamGenerateContent?alt=sse (server-sent events).
 * Tests point the real @google/genai client at it through httpOptions.baseUrl.
 */
export class FakeGemini {
  readonly requests: GeminiRequest[] = [];
  private server: Server | null = null;
  private readonly queue: GeminiReply[] = [];
  private readonly open = new Set<ServerResponse>();
  url = "";

  constructor(private brain: GeminiBrain = () => ({ status: 500, error: "no brain configured" })) {}

  /** Replies used first, in order, before the brain is asked. */
  enqueue(...replies: GeminiReply[]): void {
    this.queue.push(...replies);
  }

  setBrain(brain: GeminiBrain): void {
    this.brain = brain;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    for (const res of this.open) res.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? "/", "http://fake");
    const match = /^\/([^/]+)\/models\/([^:]+):(generateContent|streamGenerateContent)$/.exec(url.pathname);
    if (req.method !== "POST" || !match) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: 404, message: `no route ${url.pathname}` } }));
      return;
    }
    const request: GeminiRequest = {
      method: req.method,
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as GeminiRequest["body"],
      stream: match[3] === "streamGenerateContent",
      model: match[2] ?? "",
    };
    this.requests.push(request);
    const reply = this.queue.shift() ?? this.brain(request);
    if ("hang" in reply) {
      this.open.add(res);
      res.on("close", () => this.open.delete(res));
      return;
    }
    if ("status" in reply) {
      res.writeHead(reply.status, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: reply.status, message: reply.error, status: reply.status === 429 ? "RESOURCE_EXHAUSTED" : "INTERNAL" } }));
      return;
    }
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    const usage = { promptTokenCount: reply.inputTokens ?? 100, candidatesTokenCount: reply.outputTokens ?? 20, totalTokenCount: (reply.inputTokens ?? 100) + (reply.outputTokens ?? 20) };
    const response = (text: string, last: boolean) => ({
      candidates: [{ content: { role: "model", parts: [{ text }] }, ...(last ? { finishReason: "STOP" } : {}), index: 0 }],
      ...(last ? { usageMetadata: usage } : {}),
      modelVersion: request.model,
    });
    if (!request.stream) {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(response(reply.text, true)));
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const n = Math.max(1, Math.min(reply.chunks ?? 3, reply.text.length));
    const size = Math.ceil(reply.text.length / n);
    for (let i = 0; i < n; i++) {
      const piece = reply.text.slice(i * size, (i + 1) * size);
      res.write(`data: ${JSON.stringify(response(piece, i === n - 1))}\r\n\r\n`);
      await new Promise((r) => setTimeout(r, reply.chunkDelayMs ?? 5));
    }
    res.end();
  }
}

/** The text of the user turn the SDK sent. */
export function promptText(req: GeminiRequest): string {
  return (req.body.contents ?? []).flatMap((c) => c.parts ?? []).map((p) => p.text ?? "").join("\n");
}

/** The image parts the SDK sent. */
export function imageParts(req: GeminiRequest): Array<{ mimeType: string; data: string }> {
  return (req.body.contents ?? []).flatMap((c) => c.parts ?? []).flatMap((p) => (p.inlineData ? [p.inlineData] : []));
}
