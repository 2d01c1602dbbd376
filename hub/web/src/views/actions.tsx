import type { ActionRecord } from "@labrig/shared";
import { useEffect, useState } from "preact/hooks";
import { api, errorText } from "../api.js";
import { feed, hosts, onLive } from "../live.js";
import { Badge, ErrorLine, Guarded, When, ms, tone } from "../ui.js";

const CANCELABLE = new Set(["queued", "running"]);

function CancelButton(props: { id: string; onError: (text: string) => void }) {
  return (
    <Guarded role="operator" kind="danger" onClick={() => void api("DELETE", `/api/actions/${encodeURIComponent(props.id)}`).catch((err: unknown) => props.onError(errorText(err)))}>
      Cancel
    </Guarded>
  );
}

/** The live action feed and the history, filtered by host, device and status, with cancel for queued and running actions. */
export function ActionsPage() {
  const [host, setHost] = useState("");
  const [device, setDevice] = useState("");
  const [status, setStatus] = useState("");
  const [history, setHistory] = useState<ActionRecord[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const query = (before?: string): string => {
    const q = new URLSearchParams({ limit: "50" });
    if (host) q.set("host", host);
    if (device) q.set("device", device);
    if (status) q.set("status", status);
    if (before) q.set("cursor", before);
    return `/api/actions?${q.toString()}`;
  };
  const load = (more = false): void => {
    api<{ actions: ActionRecord[]; next_cursor: string | null }>("GET", query(more ? (cursor ?? undefined) : undefined)).then(
      (page) => {
        setHistory((old) => (more ? [...old, ...page.actions] : page.actions));
        setCursor(page.next_cursor);
        setError(null);
      },
      (err: unknown) => setError(errorText(err)),
    );
  };
  useEffect(() => load(), [host, device, status]);
  // A finished action changes the history's first page: re-read it (the feed above shows it at once).
  useEffect(() => onLive("action.finished", () => load()), [host, device, status]);
  const devices = hosts.value.find((h) => h.id === host)?.devices ?? hosts.value.flatMap((h) => h.devices);
  const live = feed.value.filter((f) => (!host || f.host === host) && (!device || f.device === device) && (!status || f.status === status)).slice(0, 30);
  return (
    <section>
      <h1>Actions</h1>
      <div class="filters">
        <label>
          Host
          <select value={host} onChange={(e) => setHost((e.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {hosts.value.map((h) => (
              <option value={h.id}>{h.id}</option>
            ))}
          </select>
        </label>
        <label>
          Device
          <select value={device} onChange={(e) => setDevice((e.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {[...new Set(devices.map((d) => d.id))].map((d) => (
              <option value={d}>{d}</option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {["queued", "running", "succeeded", "failed", "canceled"].map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
      </div>
      <ErrorLine text={error} />
      <h2>Live</h2>
      {live.length === 0 ? <p class="muted">Nothing happened since this page opened.</p> : null}
      <table class="list" data-testid="action-feed">
        <tbody>
          {live.map((f) => (
            <tr>
              <td><When at={f.at} /></td>
              <td><code>{f.action}</code></td>
              <td>{f.host ?? "…"}/{f.device ?? "…"}</td>
              <td><Badge tone={tone(f.status)}>{f.status}</Badge></td>
              <td class="muted">{f.requested_by ?? ""} {f.error ?? ""}</td>
              <td>{CANCELABLE.has(f.status) ? <CancelButton id={f.id} onError={setError} /> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>History</h2>
      <table class="list" data-testid="action-history">
        <thead>
          <tr><th>queued</th><th>action</th><th>where</th><th>status</th><th>took</th><th>by</th><th /></tr>
        </thead>
        <tbody>
          {history.map((a) => (
            <tr>
              <td><When at={a.queued_at} /></td>
              <td><code>{a.action}</code> {a.resource ? <span class="muted">{a.resource}</span> : null}</td>
              <td>{a.host ?? "…"}/{a.device ?? "…"}</td>
              <td><Badge tone={tone(a.status)}>{a.status}</Badge> {a.error ? <span class="muted small">{a.error.error_code}</span> : null}</td>
              <td>{ms(a.duration_ms)}</td>
              <td class="muted">{a.requested_by ?? ""}</td>
              <td>{CANCELABLE.has(a.status) ? <CancelButton id={a.id} onError={setError} /> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {cursor ? <button type="button" onClick={() => load(true)}>Older</button> : null}
    </section>
  );
}
