import { useState } from "preact/hooks";
import { hosts, type DeviceRow, type HostRow } from "../live.js";
import { href } from "../router.js";
import { Badge, When, tone } from "../ui.js";
import { HostEvents } from "./host-events.js";

/** The power state a device's power resources last reported ("on", "off" or null when unknown). */
export function powerOf(d: DeviceRow): string | null {
  for (const r of d.resources) {
    if (r.kind !== "power") continue;
    const s = d.state[r.name] as { power?: string } | undefined;
    if (s?.power) return s.power;
  }
  return null;
}

function matches(d: DeviceRow, label: string, capability: string): boolean {
  if (capability !== "" && !d.capabilities.includes(capability)) return false;
  const want = label.trim();
  if (want === "") return true;
  return want.split(/[\s,]+/).every((term) => {
    const [k, v] = term.split("=");
    if (k === undefined || k === "") return true;
    return v === undefined ? Object.hasOwn(d.labels, k) || Object.values(d.labels).includes(k) : d.labels[k] === v;
  });
}

function DeviceCard(props: { host: HostRow; device: DeviceRow }) {
  const { host, device: d } = props;
  const power = powerOf(d);
  return (
    <a class="card device" href={href({ page: "device", host: host.id, device: d.id })} data-testid={`device-${host.id}-${d.id}`}>
      <div class="title">
        <b>{d.id}</b>
        <Badge tone={tone(host.state)} testid="device-online">
          {host.state}
        </Badge>
        <Badge tone={tone(d.health)}>{d.health}</Badge>
        {power ? <Badge tone={tone(power)}>power {power}</Badge> : null}
      </div>
      <div class="meta">
        <span>load {d.load}</span>
        <span>{d.lease ? <>leased to {d.lease.owner} until <When at={d.lease.expires_at} /></> : "not leased"}</span>
      </div>
      <div class="labels">
        {Object.entries(d.labels).map(([k, v]) => (
          <code>
            {k}={v}
          </code>
        ))}
        {d.capabilities.map((c) => (
          <span class="cap">{c}</span>
        ))}
      </div>
    </a>
  );
}

export function FleetPage() {
  const [label, setLabel] = useState("");
  const [capability, setCapability] = useState("");
  const [open, setOpen] = useState<string | null>(null);
  const all = hosts.value;
  const capabilities = [...new Set(all.flatMap((h) => h.devices.flatMap((d) => d.capabilities)))].sort();
  return (
    <section>
      <h1>Fleet</h1>
      <div class="filters">
        <label>
          Labels <input placeholder="board=rpi4" value={label} onInput={(e) => setLabel((e.target as HTMLInputElement).value)} data-testid="filter-label" />
        </label>
        <label>
          Capability
          <select value={capability} onChange={(e) => setCapability((e.target as HTMLSelectElement).value)} data-testid="filter-capability">
            <option value="">any</option>
            {capabilities.map((c) => (
              <option value={c}>{c}</option>
            ))}
          </select>
        </label>
      </div>
      {all.length === 0 ? <p class="muted">No hosts yet. Enrol one (see the README) and start its agent.</p> : null}
      {all.map((h) => {
        const devices = h.devices.filter((d) => matches(d, label, capability));
        if (devices.length === 0 && (label !== "" || capability !== "")) return null;
        return (
          <div class="host" data-testid={`host-${h.id}`}>
            <h2>
              {h.id}{" "}
              <Badge tone={tone(h.state)} testid="host-state">
                {h.state}
              </Badge>{" "}
              <span class="muted small">
                agent {h.agent_version ?? "?"} · last seen <When at={h.last_seen} />
              </span>{" "}
              <button type="button" class="link" onClick={() => setOpen(open === h.id ? null : h.id)}>
                {open === h.id ? "hide events" : "events"}
              </button>
            </h2>
            {open === h.id ? <HostEvents host={h.id} /> : null}
            <div class="grid">
              {devices.map((d) => (
                <DeviceCard host={h} device={d} />
              ))}
            </div>
          </div>
        );
      })}
    </section>
  );
}
