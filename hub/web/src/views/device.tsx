import { useEffect, useState } from "preact/hooks";
import { errorText } from "../api.js";
import { hosts } from "../live.js";
import { DEFAULT_LEASE_TTL_S, keepLease, leaseTokens, rememberLease, releaseLease, takeLease } from "../leases.js";
import { href } from "../router.js";
import { can, session } from "../session.js";
import { Badge, ErrorLine, Guarded, When, tone } from "../ui.js";
import { ConsolePanel } from "./console-panel.js";
import { Controls } from "./controls.js";
import { powerOf } from "./fleet.js";
import { HostEvents } from "./host-events.js";
import { VideoPanel } from "./video-panel.js";

/** The device's lease: who holds it until when; take one, use a token someone gave you, or release it. */
function LeaseBox(props: { host: string; device: string; lease: { id: string; owner: string; expires_at: string } | null }) {
  const [error, setError] = useState<string | null>(null);
  const [given, setGiven] = useState("");
  const lease = props.lease;
  const mine = lease !== null && leaseTokens.value[lease.id] !== undefined;
  // Keep a lease this tab holds alive while the page is open.
  useEffect(() => {
    if (!lease || !mine) return;
    const timer = setInterval(() => void keepLease(lease.id).catch((err: unknown) => setError(errorText(err))), (DEFAULT_LEASE_TTL_S * 1000) / 3);
    return () => clearInterval(timer);
  }, [lease?.id, mine]);
  const act = (fn: () => Promise<unknown>) => () => void fn().then(() => setError(null), (err: unknown) => setError(errorText(err)));
  return (
    <div class="lease" data-testid="lease-box">
      {lease === null ? (
        <>
          <span>Not leased: anyone with the operator role may use it.</span>
          <Guarded role="operator" onClick={act(() => takeLease(props.host, props.device))} testid="take-lease">
            Take a lease ({DEFAULT_LEASE_TTL_S / 60} min)
          </Guarded>
        </>
      ) : mine ? (
        <>
          <span>
            Leased by you (<b>{lease.owner}</b>) until <When at={lease.expires_at} />; kept alive while this page is open.
          </span>
          <Guarded role="operator" onClick={act(() => releaseLease(lease.id))} testid="release-lease">
            Release
          </Guarded>
        </>
      ) : (
        <>
          <span>
            Leased to <b>{lease.owner}</b> until <When at={lease.expires_at} />. Actions and typing need its token.
          </span>
          <input type="password" placeholder="lease token (lrl_…)" value={given} onInput={(e) => setGiven((e.target as HTMLInputElement).value)} aria-label="lease token" />
          <Guarded role="operator" disabledReason={given.trim() === "" ? "Paste the lease's token first." : null} onClick={() => rememberLease(lease.id, given.trim())}>
            Use this lease
          </Guarded>
          {can("admin") ? (
            <Guarded role="admin" kind="danger" onClick={act(() => releaseLease(lease.id))}>
              Release (admin)
            </Guarded>
          ) : null}
        </>
      )}
      <ErrorLine text={error} />
    </div>
  );
}

export function DevicePage(props: { host: string; device: string }) {
  const host = hosts.value.find((h) => h.id === props.host);
  const device = host?.devices.find((d) => d.id === props.device);
  if (!host || !device) {
    return (
      <section>
        <p>
          <a href={href({ page: "fleet" })}>← Fleet</a>
        </p>
        <p class="muted">{hosts.value.length === 0 ? "Loading…" : `No device ${props.host}/${props.device}.`}</p>
      </section>
    );
  }
  const serial = device.resources.filter((r) => r.kind === "serial");
  const video = device.resources.filter((r) => r.kind === "video");
  const power = powerOf(device);
  const lease = device.lease;
  const leaseBlocked = lease && leaseTokens.value[lease.id] === undefined ? `Leased to ${lease.owner}: controls need that lease's token (use it above).` : null;
  return (
    <section class="device-page" data-testid="device-page">
      <p>
        <a href={href({ page: "fleet" })}>← Fleet</a>
      </p>
      <h1>
        {host.id} / {device.id}{" "}
        <Badge tone={tone(host.state)} testid="device-host-state">
          {host.state}
        </Badge>{" "}
        <Badge tone={tone(device.health)}>{device.health}</Badge> {power ? <Badge tone={tone(power)}>power {power}</Badge> : null}{" "}
        <span class="muted small">load {device.load}</span>
      </h1>
      {device.health_reason && device.health !== "good" ? <p class="note">Health: {device.health_reason}</p> : null}
      <LeaseBox host={host.id} device={device.id} lease={lease} />
      <div class="panes">
        <div class="pane">
          {serial.map((r) => (
            <>
              <h2>Console · {r.name}</h2>
              <ConsolePanel host={host.id} device={device.id} resource={r.name} leaseId={lease?.id} />
            </>
          ))}
        </div>
        <div class="pane">
          {video.map((r) => (
            <>
              <h2>Video · {r.name}</h2>
              <VideoPanel host={host.id} device={device.id} resource={r.name} jpeg={new URLSearchParams(location.hash.split("?")[1] ?? "").get("jpeg") === "1"} />
            </>
          ))}
          <h2>Controls</h2>
          <Controls host={host.id} device={device} leaseBlocked={leaseBlocked} />
        </div>
      </div>
      <h2>Recent events</h2>
      <HostEvents host={host.id} device={device.id} />
      <p class="muted small">Signed in as {session.value?.name}.</p>
    </section>
  );
}
