import type { ActionRecord } from "@labrig/shared";
import { useEffect, useState } from "preact/hooks";
import { api, errorText } from "../api.js";
import { feed, leaseVersion } from "../live.js";
import { leaseTokens, releaseLease } from "../leases.js";
import { can } from "../session.js";
import { ErrorLine, Guarded, When } from "../ui.js";

interface LeaseRow {
  id: string;
  owner: string;
  devices: { host: string; device: string }[];
  expires_at: string;
  created_at: string;
  requested_by: string | null;
}

/** Current leases (release: the holder with its token, or an admin) and the queue of actions waiting for a device. */
export function LeasesPage() {
  const [leases, setLeases] = useState<LeaseRow[]>([]);
  const [queued, setQueued] = useState<ActionRecord[]>([]);
  const [error, setError] = useState<string | null>(null);
  const queuedNow = feed.value.filter((f) => f.status === "queued").length;
  useEffect(() => {
    api<{ leases: LeaseRow[] }>("GET", "/api/leases").then((r) => setLeases(r.leases), (err: unknown) => setError(errorText(err)));
  }, [leaseVersion.value]);
  useEffect(() => {
    api<{ actions: ActionRecord[] }>("GET", "/api/actions?status=queued&limit=100").then((r) => setQueued(r.actions), (err: unknown) => setError(errorText(err)));
  }, [queuedNow, feed.value.length]);
  return (
    <section>
      <h1>Leases</h1>
      <ErrorLine text={error} />
      {leases.length === 0 ? <p class="muted">No active leases.</p> : null}
      <table class="list" data-testid="leases">
        <tbody>
          {leases.map((l) => {
            const holder = leaseTokens.value[l.id] !== undefined;
            return (
              <tr>
                <td><b>{l.owner}</b> {holder ? <span class="muted">(this tab)</span> : null}</td>
                <td>{l.devices.map((d) => `${d.host}/${d.device}`).join(", ")}</td>
                <td>until <When at={l.expires_at} /></td>
                <td>
                  <Guarded role="operator" kind="danger" disabledReason={holder || can("admin") ? null : "Only its holder (with the token) or an admin may release it."} onClick={() => void releaseLease(l.id).catch((err: unknown) => setError(errorText(err)))}>Release</Guarded>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h2>Queue</h2>
      <p class="muted small">Actions waiting for a free device, highest priority first. Lease requests that wait (wait_ms) are not listed by the hub.</p>
      {queued.length === 0 ? <p class="muted">Nothing waits.</p> : null}
      <table class="list" data-testid="queue">
        <tbody>
          {queued.map((a) => (
            <tr>
              <td><When at={a.queued_at} /></td>
              <td><code>{a.action}</code></td>
              <td>{a.host ?? "any matching device"}{a.device ? `/${a.device}` : ""}</td>
              <td class="muted">{a.requested_by}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
