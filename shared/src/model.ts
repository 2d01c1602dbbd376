import { z } from "zod";
import { lineText } from "./text.js";

/** Ids of hosts, devices and resources: lowercase slugs, safe in URLs and file names. */
export const IdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "must be 1-63 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit");
export type Id = z.infer<typeof IdSchema>;

/** Labels such as `board=rpi4`: what selectors match against. */
export const LabelsSchema = z.record(
  z.string().regex(/^[a-z0-9][a-z0-9._/-]{0,62}$/, "label keys are lowercase slugs"),
  lineText(128, { min: 0, trim: false }),
);
export type Labels = z.infer<typeof LabelsSchema>;

/** The kinds of hardware a device can have; each action needs one kind (or none). */
export const ResourceKindSchema = z.enum(["serial", "power", "gpio", "video"]);
export type ResourceKind = z.infer<typeof ResourceKindSchema>;

/** A resource as the hub sees it: its name on the device and its kind. */
export const ResourceDescriptionSchema = z.object({
  name: IdSchema,
  kind: ResourceKindSchema,
});
export type ResourceDescription = z.infer<typeof ResourceDescriptionSchema>;

/** A device (unit under test) as an agent describes it in `hello`. */
export const DeviceDescriptionSchema = z.object({
  id: IdSchema,
  labels: LabelsSchema.default({}),
  capabilities: z.array(z.string().max(64)).default([]),
  resources: z.array(ResourceDescriptionSchema).max(64),
});
export type DeviceDescription = z.infer<typeof DeviceDescriptionSchema>;

export const HostStateSchema = z.enum(["online", "offline"]);

/** A device's fitness for work, as in a lab's device states: only `good` devices are given work. */
export const DEVICE_HEALTH = ["good", "unknown", "bad", "maintenance"] as const;
export const DeviceHealthSchema = z.enum(DEVICE_HEALTH);
export type DeviceHealth = z.infer<typeof DeviceHealthSchema>;
export type HostState = z.infer<typeof HostStateSchema>;

/** Capabilities follow from resources: a device with a serial resource can do `serial`, and so on. Extra ones come from config. */
export function deriveCapabilities(resources: readonly ResourceDescription[], extra: readonly string[] = []): string[] {
  return [...new Set([...resources.map((r) => r.kind), ...extra])].sort();
}
