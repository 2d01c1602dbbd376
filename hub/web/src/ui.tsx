import type { Role } from "@labrig/shared";
import type { ComponentChildren } from "preact";
import { whyNot } from "./session.js";

/** A button that needs a role: disabled for callers without it, with the reason on screen and as its tooltip. */
export function Guarded(props: { role: Role; onClick: () => void; children: ComponentChildren; busy?: boolean; disabledReason?: string | null; kind?: "danger" | "primary"; testid?: string }) {
  const reason = whyNot(props.role) ?? props.disabledReason ?? null;
  return (
    <button type="button" class={props.kind ?? ""} disabled={reason !== null || props.busy === true} title={reason ?? ""} data-testid={props.testid} onClick={props.onClick}>
      {props.children}
    </button>
  );
}

/** The reason the controls of a section are disabled, said once in words (tooltips alone are missed on phones). */
export function RoleNote(props: { role: Role }) {
  const reason = whyNot(props.role);
  return reason === null ? null : (
    <p class="note" role="note" data-testid="role-note">
      {reason}
    </p>
  );
}

export function Badge(props: { tone: string; children: ComponentChildren; testid?: string }) {
  return (
    <span class={`badge ${props.tone}`} data-testid={props.testid}>
      {props.children}
    </span>
  );
}

export function ErrorLine(props: { text: string | null }) {
  return props.text ? (
    <p class="error" role="alert">
      {props.text}
    </p>
  ) : null;
}

/** An ISO time as a short local time, with the full value as tooltip. */
export function When(props: { at: string | null | undefined }) {
  if (!props.at) return <span class="muted">—</span>;
  const d = new Date(props.at);
  return <time dateTime={props.at} title={props.at}>{d.toLocaleTimeString()}</time>;
}

export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(1)} s`;
}

const TONES: Record<string, string> = {
  online: "ok", good: "ok", succeeded: "ok", passed: "ok", on: "ok", ready: "ok", executed: "ok", active: "ok",
  offline: "bad", bad: "bad", failed: "bad", error: "bad", invalid: "bad",
  unknown: "warn", maintenance: "warn", queued: "warn", running: "info", canceled: "muted", interrupted: "warn", skipped: "muted", off: "muted", planned: "info",
};

export function tone(status: string): string {
  return TONES[status] ?? "muted";
}
