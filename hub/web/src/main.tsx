import "@xterm/xterm/css/xterm.css";
import "./styles.css";
import { effect } from "@preact/signals";
import { render } from "preact";
import { api } from "./api.js";
import { connectLive, connected, disconnectLive, liveError } from "./live.js";
import { href, route, type Route } from "./router.js";
import { credential, session, signOut } from "./session.js";
import { ActionsPage } from "./views/actions.js";
import { DevicePage } from "./views/device.js";
import { FleetPage } from "./views/fleet.js";
import { LeasesPage } from "./views/leases.js";
import { PlansPage } from "./views/plans.js";
import { RunPage, RunsPage } from "./views/runs.js";
import { SignIn } from "./views/signin.js";
import type { SessionView } from "@labrig/shared";

const NAV: { label: string; route: Route; pages: Route["page"][] }[] = [
  { label: "Fleet", route: { page: "fleet" }, pages: ["fleet", "device"] },
  { label: "Actions", route: { page: "actions" }, pages: ["actions"] },
  { label: "Runs", route: { page: "runs" }, pages: ["runs", "run"] },
  { label: "Plans", route: { page: "plans" }, pages: ["plans"] },
  { label: "Leases & queue", route: { page: "leases" }, pages: ["leases"] },
];

function Page() {
  const r = route.value;
  switch (r.page) {
    case "fleet":
      return <FleetPage />;
    case "device":
      return <DevicePage host={r.host} device={r.device} key={`${r.host}/${r.device}`} />;
    case "actions":
      return <ActionsPage />;
    case "runs":
      return <RunsPage />;
    case "run":
      return <RunPage id={r.id} key={r.id} />;
    case "plans":
      return <PlansPage />;
    case "leases":
      return <LeasesPage />;
  }
}

function App() {
  const s = session.value;
  if (!s) return <SignIn />;
  return (
    <div class="shell">
      <header>
        <a class="brand" href="#/">
          labrig
        </a>
        <nav>
          {NAV.map((n) => (
            <a href={href(n.route)} class={n.pages.includes(route.value.page) ? "active" : ""}>
              {n.label}
            </a>
          ))}
        </nav>
        <span class="who" data-testid="who">
          <span class={`dot ${connected.value ? "ok" : "bad"}`} title={connected.value ? "live" : (liveError.value ?? "connecting")} />
          {s.name} · {s.role}
          <button type="button" class="link" onClick={() => signOut()}>
            Sign out
          </button>
        </span>
      </header>
      {liveError.value && !connected.value ? <p class="banner">Live updates paused: {liveError.value}</p> : null}
      <main>
        <Page />
      </main>
    </div>
  );
}

// One live connection per signed-in credential; signing out closes it.
effect(() => {
  if (session.value) connectLive();
  else disconnectLive();
});

async function boot(): Promise<void> {
  if (credential.value) {
    try {
      session.value = await api<SessionView>("GET", "/api/session");
    } catch {
      // api() signs out on 401; anything else leaves the sign-in page with its message.
      if (session.value === null) signOut("Could not reach the hub with the saved credential; sign in again.");
    }
  }
  const root = document.getElementById("app");
  if (root) render(<App />, root);
}

void boot();
