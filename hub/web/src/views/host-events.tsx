import { useEffect, useState } from "preact/hooks";
import { api, errorText } from "../api.js";
import { hosts } from "../live.js";
import { ErrorLine, When } from "../ui.js";

interface HostEvent {
  kind: string;
  detail: string | null;
  at: string;
  device_id: string | null;
}

/** A host's recent events (online/offline, health, leases), for one device when `device` is given; re-read when the fleet changes. */
export function HostEvents(props: { host: string; device?: string; limit?: number }) {
  const [events, setEvents] = useState<HostEvent[]>([]);
  const [error, setError] = useState<string | null>(null);
  const version = hosts.value;
  useEffect(() => {
    let live = true;
    api<{ events: HostEvent[] }>("GET", `/api/hosts/${encodeURIComponent(props.host)}`).then(
      (h) => live && setEvents(h.events),
      (err: unknown) => live && setError(errorText(err)),
    );
    return () => {
      live = false;
    };
  }, [props.host, version]);
  // Host-wide events (online, offline) concern every device of the host.
  const shown = events.filter((e) => props.device === undefined || e.device_id === null || e.device_id === props.device).slice(0, props.limit ?? 12);
  return (
    <div class="events">
      <ErrorLine text={error} />
      {shown.length === 0 ? <p class="muted">No events yet.</p> : null}
      <ul>
        {shown.map((e) => (
          <li>
            <When at={e.at} /> <b>{e.kind}</b> {e.detail}
          </li>
        ))}
      </ul>
    </div>
  );
}
