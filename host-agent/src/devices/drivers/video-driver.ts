import type { VideoCapture } from "../../capture/video-capture.js";
import type { Logger } from "../../logger.js";
import type { ActionHandlers, ResourceDriver } from "./resource-driver.js";

/** A video input: snapshots and clips as artifacts (the live stream is driven by the hub link, not by actions). */
export class VideoDriver implements ResourceDriver<"video"> {
  readonly kind = "video" as const;

  constructor(
    readonly resource: string,
    private readonly deviceId: string,
    readonly capture: VideoCapture,
    private readonly logger: Logger,
  ) {}

  readonly handlers: ActionHandlers<"video"> = {
    "capture.snapshot": async (p, signal) => ({ ...(await this.capture.snapshot(signal, p.max_edge)) }),
    "capture.record": async (p, signal) => ({ ...(await this.capture.record(p.duration_s, p.format, signal)) }),
  };

  /** Never fails the device: a missing dongle or ffmpeg shows as the resource's state. */
  start(): Promise<void> {
    return this.capture.start();
  }

  async stop(): Promise<void> {
    try {
      await this.capture.stop();
    } catch (err) {
      this.logger.error({ device: this.deviceId, resource: this.resource, err: (err as Error).message }, "stopping video capture failed; continuing");
    }
  }
}
