import type { ActionRecord } from "@labrig/shared";
import { api } from "./api.js";
import { hosts } from "./live.js";
import { tokenFor } from "./leases.js";

/** Runs one catalogue action on a device through the REST API, with this tab's lease token when the device is leased to it. */
export function runAction(host: string, device: string, action: string, params: Record<string, unknown> = {}, resource?: string): Promise<ActionRecord> {
  const leaseId = hosts.value.find((h) => h.id === host)?.devices.find((d) => d.id === device)?.lease?.id;
  const token = tokenFor(leaseId);
  return api<ActionRecord>("POST", `/api/hosts/${encodeURIComponent(host)}/devices/${encodeURIComponent(device)}/actions`, {
    action,
    params,
    ...(resource ? { resource } : {}),
    ...(token ? { lease_token: token } : {}),
  });
}

/** The record's error as one line, or null when it succeeded. */
export function failureOf(record: ActionRecord): string | null {
  if (record.status === "succeeded") return null;
  return record.error ? `${record.error.error_code}: ${record.error.message}` : record.status;
}
