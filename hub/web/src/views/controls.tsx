import type { ActionRecord, ResourceDescription } from "@labrig/shared";
import { useEffect, useState } from "preact/hooks";
import { failureOf, runAction } from "../actions.js";
import { api, blobUrl, errorText } from "../api.js";
import { onLive, type DeviceRow } from "../live.js";
import { Badge, ErrorLine, Guarded, RoleNote, When, tone } from "../ui.js";

interface Artifact {
  id: string;
  kind: "snapshot" | "clip";
  action_id: string;
  at: string;
  detail: string;
}

/** Power, GPIO lines (values, edges, write, pulse), snapshot and clip, with the artifacts these made. */
export function Controls(props: { host: string; device: DeviceRow; leaseBlocked: string | null }) {
  const { host, device } = props;
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [pulseMs, setPulseMs] = useState(100);
  const [clipS, setClipS] = useState(3);
  const [artifacts, setArtifacts] = useState<Artifact[]>([]);
  const [edges, setEdges] = useState<Record<string, string[]>>({});
  const [view, setView] = useState<{ id: string; url: string; type: string } | null>(null);

  const artifactOf = (r: ActionRecord): Artifact | null => {
    const id = r.result?.artifact;
    if (r.status !== "succeeded" || typeof id !== "string") return null;
    const kind = r.action === "capture.record" ? "clip" : "snapshot";
    const detail = kind === "clip" ? `${String(r.result?.mime_type)} ${Number(r.result?.duration_ms ?? 0) / 1000} s` : `${String(r.result?.width)}×${String(r.result?.height)} JPEG`;
    return { id, kind, action_id: r.id, at: r.finished_at ?? r.queued_at, detail };
  };

  // The artifacts of this device's recent capture actions (from the history), newest first.
  useEffect(() => {
    api<{ actions: ActionRecord[] }>("GET", `/api/actions?host=${encodeURIComponent(host)}&device=${encodeURIComponent(device.id)}&status=succeeded&limit=100`).then(
      (page) => setArtifacts(page.actions.filter((a) => a.action.startsWith("capture.")).map(artifactOf).filter((a): a is Artifact => a !== null)),
      (err: unknown) => setError(errorText(err)),
    );
  }, [host, device.id]);

  // GPIO edges as they are reported (input lines with edge watching, or outputs being driven).
  useEffect(
    () =>
      onLive("resource.state", (e) => {
        if (e.host !== host || e.device !== device.id || e.value === undefined) return;
        setEdges((old) => ({ ...old, [e.resource]: [`${new Date(e.at).toLocaleTimeString()} → ${e.value}`, ...(old[e.resource] ?? [])].slice(0, 5) }));
      }),
    [host, device.id],
  );

  const run = async (label: string, action: string, params: Record<string, unknown> = {}, resource?: string): Promise<void> => {
    setBusy(label);
    setError(null);
    try {
      const record = await runAction(host, device.id, action, params, resource);
      const failed = failureOf(record);
      if (failed) setError(`${action}: ${failed}`);
      const a = artifactOf(record);
      if (a) setArtifacts((old) => [a, ...old]);
    } catch (err) {
      setError(`${action}: ${errorText(err)}`);
    } finally {
      setBusy(null);
    }
  };

  const open = async (a: Artifact): Promise<void> => {
    try {
      const blob = await blobUrl(`/api/hosts/${encodeURIComponent(host)}/artifacts/${a.id}`);
      if (view) URL.revokeObjectURL(view.url);
      setView({ id: a.id, url: blob.url, type: blob.type });
    } catch (err) {
      setError(errorText(err));
    }
  };

  const byKind = (kind: string): ResourceDescription[] => device.resources.filter((r) => r.kind === kind);
  const stateOf = (r: string) => (device.state[r] ?? {}) as { status?: string; power?: string; value?: number; detail?: string };
  const blocked = props.leaseBlocked;

  return (
    <div class="controls">
      <RoleNote role="operator" />
      {blocked ? <p class="note">{blocked}</p> : null}
      {byKind("power").map((r) => (
        <div class="row" data-testid={`power-${r.name}`}>
          <b>{r.name}</b> <Badge tone={tone(stateOf(r.name).power ?? "unknown")} testid="power-state">{stateOf(r.name).power ?? "unknown"}</Badge>
          <Guarded role="operator" busy={busy !== null} disabledReason={blocked} onClick={() => void run("on", "power.on", {}, r.name)} testid="power-on">Power on</Guarded>
          <Guarded role="operator" busy={busy !== null} disabledReason={blocked} onClick={() => void run("off", "power.off", {}, r.name)} testid="power-off">Power off</Guarded>
          <Guarded role="operator" busy={busy !== null} disabledReason={blocked} onClick={() => void run("cycle", "power.cycle", {}, r.name)} testid="power-cycle">Cycle</Guarded>
        </div>
      ))}
      {byKind("gpio").map((r) => {
        const s = stateOf(r.name);
        return (
          <div class="row" data-testid={`gpio-${r.name}`}>
            <b>{r.name}</b> <Badge tone={s.value === 1 ? "ok" : "muted"}>{s.value === undefined ? "?" : `value ${s.value}`}</Badge>
            <Guarded role="operator" busy={busy !== null} disabledReason={blocked} onClick={() => void run("w1", "gpio.write", { value: 1 }, r.name)}>Set 1</Guarded>
            <Guarded role="operator" busy={busy !== null} disabledReason={blocked} onClick={() => void run("w0", "gpio.write", { value: 0 }, r.name)}>Set 0</Guarded>
            <Guarded role="operator" busy={busy !== null} disabledReason={blocked} onClick={() => void run("pulse", "gpio.pulse", { width_ms: pulseMs }, r.name)}>Pulse</Guarded>
            <input type="number" min={1} max={60000} value={pulseMs} class="narrow" aria-label="pulse width (ms)" onInput={(e) => setPulseMs(Number((e.target as HTMLInputElement).value) || 1)} /> ms
            {s.detail ? <span class="muted small"> {s.detail}</span> : null}
            {(edges[r.name] ?? []).length > 0 ? <span class="muted small"> edges: {(edges[r.name] ?? []).join(", ")}</span> : null}
          </div>
        );
      })}
      {byKind("video").map((r) => (
        <div class="row">
          <b>{r.name}</b>
          <Guarded role="operator" busy={busy !== null} disabledReason={blocked} onClick={() => void run("snap", "capture.snapshot", {}, r.name)} testid="snapshot">Snapshot</Guarded>
          <Guarded role="operator" busy={busy !== null} disabledReason={blocked} onClick={() => void run("clip", "capture.record", { duration_s: clipS, format: "webm" }, r.name)} testid="clip">Record clip</Guarded>
          <input type="number" min={1} max={600} value={clipS} class="narrow" aria-label="clip length (s)" onInput={(e) => setClipS(Number((e.target as HTMLInputElement).value) || 1)} /> s
        </div>
      ))}
      {busy ? <p class="muted small">running {busy}…</p> : null}
      <ErrorLine text={error} />
      <h3>Artifacts</h3>
      {artifacts.length === 0 ? <p class="muted">No snapshots or clips yet.</p> : null}
      <ul class="artifacts" data-testid="artifacts">
        {artifacts.slice(0, 20).map((a) => (
          <li>
            <When at={a.at} /> {a.kind} <span class="muted">{a.detail}</span>{" "}
            <button type="button" class="link" onClick={() => void open(a)}>view</button>
          </li>
        ))}
      </ul>
      {view ? (
        <div class="viewer" data-testid="artifact-view">
          {view.type.startsWith("video/") ? <video src={view.url} controls autoplay muted /> : <img src={view.url} alt="snapshot" />}
          <a href={view.url} download={`${view.id}${view.type.startsWith("video/") ? ".webm" : ".jpg"}`}>download</a>
        </div>
      ) : null}
    </div>
  );
}
