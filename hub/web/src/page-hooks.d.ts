// What the dashboard leaves on `window` for the browser tests and benchmarks to read (never to
// write): figures of the video canvas and the console. A global script (no imports), so test code
// can reference it without compiling the page's sources.

/** Figures of what the video canvas showed. */
interface LabrigVideoStats {
  mode: "webcodecs" | "jpeg";
  frames: number;
  fps: number;
  /** Capture (agent wall clock) → painted, per painted frame, most recent last (bounded). */
  latencies: number[];
  decodeErrors: number;
}

/** What the console panel has shown. */
interface LabrigConsoleStats {
  /** The last 64 KiB the terminal was given. */
  text: string;
  /** console.write events acknowledged. */
  writes: number;
  /** performance.now() when the terminal last finished drawing output. */
  lastEchoAtMs: number;
}

interface Window {
  __labrigVideo?: LabrigVideoStats;
  __labrigConsole?: LabrigConsoleStats;
}
