// @ts-check
// Builds the dashboard (hub/web/src) into hub/dist/web: one content-hashed script and stylesheet
// under assets/, and index.html naming them, so the hub can cache assets forever and the page never.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(here, "..", "dist", "web");
const assets = join(out, "assets");

rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const result = await build({
  entryPoints: [join(here, "src", "main.tsx")],
  bundle: true,
  format: "esm",
  // Current Chromium and Firefox; nothing older needs serving (WebCodecs is the floor anyway).
  target: ["chrome120", "firefox128"],
  platform: "browser",
  jsx: "automatic",
  jsxImportSource: "preact",
  minify: true,
  sourcemap: "linked",
  outdir: assets,
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  logLevel: "warning",
  legalComments: "linked",
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((n) => /^main-.*\.js$/.test(n));
const style = outputs.find((n) => /^main-.*\.css$/.test(n));
if (!script || !style) throw new Error(`esbuild produced no main script or stylesheet: ${outputs.join(", ")}`);

const icon = readFileSync(join(here, "src", "icon.svg"));
const iconName = `icon-${createHash("sha256").update(icon).digest("hex").slice(0, 8).toUpperCase()}.svg`;
writeFileSync(join(assets, iconName), icon);

// No inline script or style: the CSP allows scripts from this origin only.
const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>labrig</title>
<link rel="icon" href="/assets/${iconName}" type="image/svg+xml">
<link rel="stylesheet" href="/assets/${style}">
<script type="module" src="/assets/${script}"></script>
</head>
<body>
<div id="app"></div>
<noscript>The labrig dashboard needs JavaScript. The REST API is documented at /docs.</noscript>
</body>
</html>
`;
writeFileSync(join(out, "index.html"), html);
console.log(`dashboard built: ${join(out, "index.html")} → ${script}, ${style}`);
