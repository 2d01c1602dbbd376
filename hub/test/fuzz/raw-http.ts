import { Agent, request, type IncomingHttpHeaders } from "node:http";

/*
 * Sends requests exactly as generated: node:http lets a test put bytes in the request target and
 * headers that fetch would normalise or refuse (raw latin1 bytes, bad %-escapes, any method), and
 * reuses one keep-alive connection so ten thousand requests do not cost ten thousand handshakes.
 */

export interface RawAnswer {
  /** 0 when no answer arrived (the connection was closed or the request timed out). */
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** What went wrong on the way when status is 0: `timeout`, or the socket error's code. */
  failure: string | null;
}

/** Most of an answer kept for checks; the rest is read and dropped (a big page needs no more). */
const KEEP_BYTES = 256 * 1024;

export class RawHttp {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });

  constructor(private readonly base: URL) {}

  send(method: string, path: string, headers: Record<string, string>, body: Buffer | null, timeoutMs: number): Promise<RawAnswer> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (answer: RawAnswer): void => {
        if (settled) return;
        settled = true;
        resolve(answer);
      };
      const failed = (failure: string): void => done({ status: 0, headers: {}, text: "", failure });
      const options = { host: this.base.hostname, port: this.base.port, method, path, agent: this.agent, headers: body === null ? headers : { ...headers, "content-length": String(body.length) } };
      let req: ReturnType<typeof request>;
      try {
        req = request(options, (res) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          res.on("data", (chunk: Buffer) => {
            if (kept < KEEP_BYTES) chunks.push(chunk);
            kept += chunk.length;
          });
          res.on("end", () => done({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8"), failure: null }));
          res.on("error", (err: NodeJS.ErrnoException) => failed(err.code ?? err.message));
        });
      } catch (err) {
        // node:http refuses to send some generated targets or headers at all; the runner counts them apart.
        failed(`unsendable: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        return;
      }
      req.setTimeout(timeoutMs, () => {
        req.destroy();
        failed("timeout");
      });
      req.on("error", (err: NodeJS.ErrnoException) => failed(err.code ?? err.message));
      req.end(body ?? undefined);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
