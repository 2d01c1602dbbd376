import type { ActionRecord, StreamChunk, VideoSubscribeAck } from "@labrig/shared";
import { useEffect, useRef, useState } from "preact/hooks";
import { runAction } from "../actions.js";
import { blobOf, errorText } from "../api.js";
import { liveSocket, onReconnect, request } from "../live.js";
import { whyNot } from "../session.js";
import { ErrorLine } from "../ui.js";

export type VideoStats = LabrigVideoStats;

const now = (): number => performance.timeOrigin + performance.now();
const JPEG_INTERVAL_MS = 333;

type Chunk = StreamChunk & { data: ArrayBuffer | Uint8Array };

/**
 * Live video on a canvas: the agent's H.264/VP8 chunks decoded by WebCodecs (starting at a
 * keyframe, newest frame wins), or JPEG snapshots a few times a second where WebCodecs is missing
 * (or `jpeg` is asked for). Latency is the capture wall clock the agent stamped on the chunk to
 * the moment the frame is painted, so it needs the agent's and this machine's clocks in sync (NTP).
 */
export function VideoPanel(props: { host: string; device: string; resource: string; jpeg?: boolean }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [stats, setStats] = useState<VideoStats | null>(null);
  const [error, setError] = useState<string | null>(null);
  const webcodecs = typeof VideoDecoder !== "undefined" && props.jpeg !== true;

  useEffect(() => {
    const c = canvas.current;
    const ctx = c?.getContext("2d");
    if (!c || !ctx) return;
    const st: VideoStats = { mode: webcodecs ? "webcodecs" : "jpeg", frames: 0, fps: 0, latencies: [], decodeErrors: 0 };
    window.__labrigVideo = st;
    const paintedAt: number[] = [];
    const painted = (capturedAtMs: number | undefined): void => {
      const t = now();
      st.frames++;
      paintedAt.push(t);
      while (paintedAt.length > 0 && (paintedAt[0] as number) < t - 1000) paintedAt.shift();
      st.fps = paintedAt.length;
      if (capturedAtMs !== undefined) {
        st.latencies.push(t - capturedAtMs);
        if (st.latencies.length > 2000) st.latencies.splice(0, st.latencies.length - 2000);
      }
    };
    const ui = setInterval(() => setStats({ ...st, latencies: st.latencies.slice(-30) }), 500);
    const sel = { host: props.host, device: props.device, resource: props.resource };
    let stop = (): void => undefined;

    if (webcodecs) {
      let decoder: VideoDecoder | null = null;
      let configured = "";
      const captured = new Map<number, number | undefined>();
      let latest: VideoFrame | null = null;
      let raf = 0;
      const paint = (): void => {
        raf = 0;
        const frame = latest;
        latest = null;
        if (!frame) return;
        if (c.width !== frame.displayWidth || c.height !== frame.displayHeight) {
          c.width = frame.displayWidth;
          c.height = frame.displayHeight;
        }
        ctx.drawImage(frame, 0, 0);
        const at = captured.get(frame.timestamp);
        captured.delete(frame.timestamp);
        frame.close();
        painted(at);
      };
      const reset = (): void => {
        if (decoder && decoder.state !== "closed") decoder.close();
        decoder = null;
        configured = "";
      };
      const onChunk = (chunk: Chunk): void => {
        if (chunk.host !== sel.host || chunk.device !== sel.device || chunk.resource !== sel.resource) return;
        const shape = `${chunk.codec} ${chunk.width}x${chunk.height}`;
        if (!decoder || configured !== shape) {
          // A decoder starts at a keyframe; deltas before one are useless.
          if (chunk.type !== "key") return;
          reset();
          decoder = new VideoDecoder({
            output: (frame) => {
              // Newest wins: a frame not yet painted is replaced, never queued.
              latest?.close();
              latest = frame;
              if (raf === 0) raf = requestAnimationFrame(paint);
            },
            error: (e) => {
              st.decodeErrors++;
              setError(`decoder: ${e.message}; waiting for the next keyframe`);
              reset();
            },
          });
          decoder.configure({ codec: chunk.codec, codedWidth: chunk.width, codedHeight: chunk.height, optimizeForLatency: true });
          configured = shape;
        }
        // Keep at most a few frames in the decoder: under load drop to the next keyframe rather than fall behind.
        if (decoder.decodeQueueSize > 3 && chunk.type !== "key") return;
        captured.set(chunk.timestamp_us, chunk.captured_at_ms);
        if (captured.size > 64) captured.delete(captured.keys().next().value as number);
        decoder.decode(new EncodedVideoChunk({ type: chunk.type, timestamp: chunk.timestamp_us, data: chunk.data }));
      };
      const socket = liveSocket();
      socket?.on("video.chunk", onChunk);
      const subscribe = async (): Promise<void> => {
        const ack = await request<VideoSubscribeAck>("video.subscribe", sel).catch((err: unknown) => ({ ok: false as const, error: { error_code: "internal_error", message: errorText(err) } }));
        if (!ack.ok) setError(`${ack.error.error_code}: ${ack.error.message}`);
        else setError(null);
      };
      void subscribe();
      const offReconnect = onReconnect(() => {
        reset();
        void subscribe();
      });
      stop = () => {
        offReconnect();
        socket?.off("video.chunk", onChunk);
        void request("video.unsubscribe", sel).catch(() => undefined);
        if (raf !== 0) cancelAnimationFrame(raf);
        latest?.close();
        reset();
      };
    } else {
      // Without WebCodecs: JPEG snapshots through the catalogue's capture.snapshot (an operator action).
      let alive = true;
      const loop = async (): Promise<void> => {
        while (alive) {
          const started = now();
          const refusal = whyNot("operator");
          if (refusal) {
            setError(`This browser has no WebCodecs, and the JPEG fallback takes snapshots: ${refusal}`);
            return;
          }
          try {
            const record: ActionRecord = await runAction(sel.host, sel.device, "capture.snapshot", {}, sel.resource);
            const artifact = record.result?.artifact;
            if (record.status !== "succeeded" || typeof artifact !== "string") throw new Error(record.error?.message ?? `snapshot ${record.status}`);
            const bitmap = await createImageBitmap(await blobOf(`/api/hosts/${encodeURIComponent(sel.host)}/artifacts/${artifact}`));
            if (c.width !== bitmap.width || c.height !== bitmap.height) {
              c.width = bitmap.width;
              c.height = bitmap.height;
            }
            ctx.drawImage(bitmap, 0, 0);
            bitmap.close();
            await new Promise((r) => requestAnimationFrame(r));
            // The agent took the frame when the action started (at most one frame interval after it was captured).
            painted(record.started_at ? Date.parse(record.started_at) : undefined);
            setError(null);
          } catch (err) {
            setError(errorText(err));
          }
          await new Promise((r) => setTimeout(r, Math.max(0, JPEG_INTERVAL_MS - (now() - started))));
        }
      };
      void loop();
      stop = () => {
        alive = false;
      };
    }
    return () => {
      clearInterval(ui);
      stop();
    };
  }, [props.host, props.device, props.resource, webcodecs]);

  const last = stats?.latencies.at(-1);
  return (
    <div class="video">
      <canvas ref={canvas} width={320} height={240} data-testid="video-canvas" />
      <div class="overlay" data-testid="video-stats">
        {stats ? `${stats.mode} · ${stats.fps} fps · ${last === undefined ? "latency —" : `${Math.round(last)} ms capture→display`}` : "connecting…"}
      </div>
      <ErrorLine text={error} />
    </div>
  );
}
