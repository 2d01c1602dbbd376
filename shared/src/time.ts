/** Current time as an ISO 8601 string; the one timestamp format on the wire. */
export function nowIso(): string {
  return new Date().toISOString();
}
