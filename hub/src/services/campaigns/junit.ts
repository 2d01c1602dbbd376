import type { RunRecord, TestResult } from "@labrig/shared";

/**
 * XML text escaping: the five entities, and characters XML 1.0 cannot carry at all (most C0
 * controls, lone surrogates, U+FFFE/U+FFFF) replaced by a visible `\uXXXX`, so console output
 * full of escape sequences still yields a file every CI parser accepts.
 */
export function xmlEscape(text: string): string {
  let out = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (ch === "&") out += "&amp;";
    else if (ch === "<") out += "&lt;";
    else if (ch === ">") out += "&gt;";
    else if (ch === '"') out += "&quot;";
    else if (ch === "'") out += "&apos;";
    else if (cp === 0x9 || cp === 0xa) out += ch;
    // A CR in text would be normalised to LF by parsers; keep it as a character reference.
    else if (cp === 0xd) out += "&#13;";
    else if (cp < 0x20 || (cp >= 0xd800 && cp <= 0xdfff) || cp === 0xfffe || cp === 0xffff) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out;
}

const seconds = (ms: number | null): string => ((ms ?? 0) / 1000).toFixed(3);

function failedStep(test: TestResult): { name: string; message: string } {
  const step = test.steps.find((s) => s.status === "failed" || s.status === "error" || s.status === "canceled");
  return { name: step?.name ?? "test", message: test.message ?? step?.message ?? test.status };
}

function transcriptOf(test: TestResult, artifactText: (name: string) => string | null): string {
  const parts: string[] = [];
  for (const s of test.steps) {
    parts.push(`[${s.phase}] ${s.name} (${s.action}): ${s.status}${s.message ? ` - ${s.message}` : ""}`);
    for (const a of s.artifacts) {
      if (a.kind !== "transcript" && a.kind !== "console") continue;
      const text = a.deleted ? null : artifactText(a.name);
      parts.push(text === null ? `  (${a.kind} ${a.name} no longer kept)` : `--- ${a.kind} ${a.name} ---\n${text}`);
    }
  }
  return parts.join("\n");
}

/**
 * The run as JUnit XML: one testsuite (the campaign), one testcase per test (its final attempt;
 * earlier attempts are summarised in system-out), `failure` for tests that failed, `error` for
 * those the rig or hub could not run, `skipped` for those not run.
 *
 * The shape is what CI servers' JUnit schema accepts (Jenkins xunit plugin's junit-10.xsd and its
 * predecessor junit-4.xsd): `<testsuites>` carries no `skipped` count (the suite does), and
 * `<skipped>` holds its reason as text, not as a `message` attribute, which junit-4.xsd forbids.
 */
export function runToJunit(run: RunRecord, campaignName: string, artifactText: (name: string) => string | null): string {
  const finals = run.tests.filter((t) => t.final);
  const count = (s: string): number => finals.filter((t) => t.status === s).length;
  const failures = count("failed");
  const errors = count("error") + count("canceled");
  const skipped = count("skipped");
  const lines: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const suiteAttrs = `name="${xmlEscape(campaignName)}" tests="${finals.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${seconds(run.duration_ms)}" timestamp="${xmlEscape(run.started_at ?? run.created_at)}" id="${xmlEscape(run.id)}"`;
  lines.push(`<testsuites name="${xmlEscape(campaignName)}" tests="${finals.length}" failures="${failures}" errors="${errors}" time="${seconds(run.duration_ms)}">`);
  lines.push(`  <testsuite ${suiteAttrs}>`);
  lines.push(`    <properties><property name="run_status" value="${xmlEscape(run.status)}"/>${run.reason ? `<property name="run_reason" value="${xmlEscape(run.reason)}"/>` : ""}</properties>`);
  for (const t of finals) {
    lines.push(`    <testcase classname="${xmlEscape(campaignName)}" name="${xmlEscape(t.name)}" time="${seconds(t.duration_ms)}">`);
    if (t.status === "failed") {
      const f = failedStep(t);
      lines.push(`      <failure message="${xmlEscape(f.message)}" type="${xmlEscape(f.name)}">${xmlEscape(`step ${f.name}: ${f.message}`)}</failure>`);
    } else if (t.status === "error" || t.status === "canceled") {
      const f = failedStep(t);
      lines.push(`      <error message="${xmlEscape(f.message)}" type="${xmlEscape(t.status === "canceled" ? "canceled" : f.name)}">${xmlEscape(f.message)}</error>`);
    } else if (t.status === "skipped") {
      lines.push(`      <skipped>${xmlEscape(t.message ?? "not run")}</skipped>`);
    }
    const earlier = run.tests.filter((x) => x.position === t.position && !x.final);
    const header = [
      `attempt ${t.attempt} on ${t.host ?? "-"}/${t.device ?? "-"}: ${t.status}`,
      ...earlier.map((e) => `earlier attempt ${e.attempt} on ${e.host ?? "-"}/${e.device ?? "-"}: ${e.status}${e.message ? ` - ${e.message}` : ""}`),
    ].join("\n");
    lines.push(`      <system-out>${xmlEscape(`${header}\n${transcriptOf(t, artifactText)}`)}</system-out>`);
    lines.push("    </testcase>");
  }
  lines.push("  </testsuite>");
  lines.push("</testsuites>");
  return `${lines.join("\n")}\n`;
}
