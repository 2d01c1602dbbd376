import { LabrigError, type Hello } from "@labrig/shared";

/** How much one host may declare in its hello: every device and resource costs the hub memory and routing work. */
export interface HostLimits {
  /** LABRIG_MAX_DEVICES_PER_HOST */
  maxDevicesPerHost: number;
  /** LABRIG_MAX_RESOURCES_PER_DEVICE */
  maxResourcesPerDevice: number;
  /** LABRIG_MAX_RESOURCES_PER_HOST */
  maxResourcesPerHost: number;
}

/** Why the hub refuses `hello` (what it declares exceeds a limit), or null when it fits. */
export function helloRefusal(hello: Hello, limits: HostLimits): LabrigError | null {
  const fix = "Split the devices over more hosts (each with its own token), or raise the setting on the hub and restart it.";
  if (hello.devices.length > limits.maxDevicesPerHost) {
    return new LabrigError("validation_failed", `The hello declares ${hello.devices.length} devices; this hub accepts at most ${limits.maxDevicesPerHost} per host (LABRIG_MAX_DEVICES_PER_HOST). ${fix}`);
  }
  let total = 0;
  for (const device of hello.devices) {
    if (device.resources.length > limits.maxResourcesPerDevice) {
      return new LabrigError(
        "validation_failed",
        `Device '${device.id}' declares ${device.resources.length} resources; this hub accepts at most ${limits.maxResourcesPerDevice} per device (LABRIG_MAX_RESOURCES_PER_DEVICE). ${fix}`,
      );
    }
    total += device.resources.length;
  }
  if (total > limits.maxResourcesPerHost) {
    return new LabrigError("validation_failed", `The hello declares ${total} resources in all; this hub accepts at most ${limits.maxResourcesPerHost} per host (LABRIG_MAX_RESOURCES_PER_HOST). ${fix}`);
  }
  return null;
}
