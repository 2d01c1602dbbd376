import { socketEventsJsonSchema } from "@labrig/shared";
import { z } from "zod";
import { RESPONDED, route, type Route } from "../route.js";

type Json = Record<string, unknown>;

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

const STYLE = `
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:1rem 1.5rem;color:#1d2433}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #dde;padding-bottom:.2rem;text-transform:capitalize}
.op{border:1px solid #dde;border-radius:6px;margin:.6rem 0;padding:.5rem .8rem}
.m{display:inline-block;min-width:4.2rem;font-weight:700;font-family:monospace;text-transform:uppercase}
.get{color:#0a6}.post{color:#06c}.put{color:#a60}.delete{color:#c22}.patch{color:#808}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f5f6f8;padding:.6rem;overflow:auto;max-height:28rem}
.role{float:right;font-size:12px;border-radius:10px;padding:0 .5rem;background:#eef}
table{border-collapse:collapse}td,th{padding:.1rem .6rem;text-align:left;border-bottom:1px solid #eee}
`;

function schemaBlock(title: string, schema: unknown): string {
  if (schema === undefined) return "";
  return `<details><summary>${escapeHtml(title)}</summary><pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre></details>`;
}

/** The OpenAPI document as one self-contained page: no scripts, no CDN, nothing fetched. */
export function renderDocsHtml(doc: Json): string {
  const info = doc.info as { title: string; version: string; description: string };
  const byTag = new Map<string, string[]>();
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, Json>>)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = (op.tags as string[] | undefined)?.[0] ?? "other";
      const params = (op.parameters as { name: string; in: string; required: boolean }[] | undefined) ?? [];
      const paramRows = params.map((p) => `<tr><td><code>${escapeHtml(p.name)}</code></td><td>${p.in}</td><td>${p.required ? "required" : "optional"}</td></tr>`).join("");
      const body = (op.requestBody as { content: Record<string, { schema: unknown }> } | undefined)?.content["application/json"]?.schema;
      const responses = Object.entries(op.responses as Record<string, { description: string; content?: Record<string, { schema?: unknown }> }>);
      const ok = responses.find(([code]) => code.startsWith("2"));
      const errors = responses.filter(([code]) => !code.startsWith("2")).map(([code, r]) => `<tr><td>${escapeHtml(code)}</td><td>${escapeHtml(r.description)}</td></tr>`);
      const html = `<div class="op" id="${escapeHtml(String(op.operationId))}">
<span class="role">${escapeHtml(String(op["x-labrig-access"]))}</span><span class="m ${method}">${method}</span> <code>${escapeHtml(path)}</code>
<p>${escapeHtml(String(op.summary))}</p>
${paramRows ? `<table><tr><th>parameter</th><th>in</th><th></th></tr>${paramRows}</table>` : ""}
${schemaBlock("Request body (JSON Schema)", body)}
${ok ? schemaBlock(`${ok[0]} ${ok[1].description}`, ok[1].content ? Object.values(ok[1].content)[0]?.schema ?? Object.keys(ok[1].content)[0] : undefined) : ""}
<details><summary>Errors</summary><table>${errors.join("")}</table></details>
</div>`;
      byTag.set(tag, [...(byTag.get(tag) ?? []), html]);
    }
  }
  const sections = [...byTag].map(([tag, ops]) => `<h2 id="tag-${escapeHtml(tag)}">${escapeHtml(tag)}</h2>${ops.join("\n")}`).join("\n");
  const envelope = (doc.components as { schemas: Json }).schemas.ErrorEnvelope;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(info.title)}</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(info.title)} <small>${escapeHtml(info.version)}</small></h1>
<p>${escapeHtml(info.description)}</p>
<p>Machine-readable: <a href="/docs/openapi.json">OpenAPI 3.1 (JSON)</a> · <a href="/docs/ws">socket events (JSON Schema)</a></p>
${schemaBlock("The error envelope", envelope)}
${sections}
</body></html>`;
}

/** Public API docs: /docs (HTML), /docs/openapi.json, /docs/ws; `document` is the OpenAPI document of every route. */
export function docsRoutes(document: () => Json): Route[] {
  let html: string | null = null;
  const socketEvents = z.object({ events: z.record(z.string(), z.unknown()) });
  return [
    route({
      method: "get",
      path: "/docs",
      tag: "docs",
      access: "public",
      summary: "This page: the REST API, browsable.",
      responseType: "text/html",
      handler: ({ res }) => {
        html ??= renderDocsHtml(document());
        res.type("html").send(html);
        return RESPONDED;
      },
    }),
    route({ method: "get", path: "/docs/openapi.json", tag: "docs", access: "public", summary: "The REST API as OpenAPI 3.1.", response: z.record(z.string(), z.unknown()), handler: () => document() }),
    route({
      method: "get",
      path: "/docs/ws",
      tag: "docs",
      access: "public",
      summary: "JSON Schema of every socket.io event (/agent and /dashboard).",
      response: socketEvents,
      handler: () => ({ events: socketEventsJsonSchema() }),
    }),
  ];
}
