import { signal } from "@preact/signals";

// Client-side routes live in the URL's fragment (#/device/sim-1/dut1): the hub serves one page at
// "/", so there is exactly one page route to declare and every route survives a reload.

export type Route =
  | { page: "fleet" }
  | { page: "device"; host: string; device: string }
  | { page: "actions" }
  | { page: "runs" }
  | { page: "run"; id: string }
  | { page: "plans" }
  | { page: "leases" };

export function parseRoute(hash: string): Route {
  const parts = (hash.split("?")[0] ?? "").replace(/^#\/?/, "").split("/").filter((p) => p !== "").map(decodeURIComponent);
  switch (parts[0]) {
    case "device":
      if (parts[1] && parts[2]) return { page: "device", host: parts[1], device: parts[2] };
      break;
    case "actions":
      return { page: "actions" };
    case "runs":
      return parts[1] ? { page: "run", id: parts[1] } : { page: "runs" };
    case "plans":
      return { page: "plans" };
    case "leases":
      return { page: "leases" };
  }
  return { page: "fleet" };
}

export const route = signal<Route>(parseRoute(location.hash));
window.addEventListener("hashchange", () => (route.value = parseRoute(location.hash)));

/** The href of a route, for links. */
export function href(r: Route): string {
  switch (r.page) {
    case "fleet":
      return "#/";
    case "device":
      return `#/device/${encodeURIComponent(r.host)}/${encodeURIComponent(r.device)}`;
    case "run":
      return `#/runs/${encodeURIComponent(r.id)}`;
    default:
      return `#/${r.page}`;
  }
}
