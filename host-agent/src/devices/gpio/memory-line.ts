import { LabrigError } from "@labrig/shared";
import type { Bit, GpioLine, LineDirection, LineFactory, LineSpec } from "./gpio-line.js";

export type LineListener = (value: Bit) => void;

/**
 * A line that lives in memory: for machines without GPIO and for the simulated rig,
 * which watches it through change listeners the way a board watches its pins.
 */
export class MemoryLine implements GpioLine {
  readonly name: string;
  readonly direction: LineDirection;
  readonly activeLow: boolean;
  /** Electrical level on the wire (what a multimeter would show). */
  private physical: Bit;
  private readonly listeners = new Set<LineListener>();
  private released = false;

  constructor(spec: Pick<LineSpec, "name" | "direction" | "activeLow" | "initial">) {
    this.name = spec.name;
    this.direction = spec.direction;
    this.activeLow = spec.activeLow;
    this.physical = this.toPhysical(spec.direction === "out" ? spec.initial : 0);
  }

  read(): Bit {
    this.assertOpen();
    return this.toLogical(this.physical);
  }

  write(value: Bit): void {
    this.assertOpen();
    this.setPhysical(this.toPhysical(value));
  }

  /** The electrical level, as the far end of the wire sees it. */
  readPhysical(): Bit {
    return this.physical;
  }

  /** Drives the wire from the outside (a simulated button on an input line). */
  setPhysical(level: Bit): void {
    if (level === this.physical) return;
    this.physical = level;
    const logical = this.toLogical(level);
    for (const listener of [...this.listeners]) listener(logical);
  }

  /** Calls `listener` with the new logical value whenever the level changes; returns the unsubscribe. */
  onChange(listener: LineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  release(): void {
    this.released = true;
    this.listeners.clear();
  }

  private toPhysical(v: Bit): Bit {
    return this.activeLow ? ((1 - v) as Bit) : v;
  }

  private toLogical(v: Bit): Bit {
    return this.activeLow ? ((1 - v) as Bit) : v;
  }

  private assertOpen(): void {
    if (this.released) throw new LabrigError("device_unavailable", `GPIO line ${this.name} was released; the agent is stopping.`);
  }
}

/** Opens MemoryLines and remembers them by name so a simulator can find the ones it drives. */
export class MemoryLineFactory implements LineFactory {
  readonly driver = "memory" as const;
  private readonly lines = new Map<string, MemoryLine>();

  async open(spec: LineSpec): Promise<MemoryLine> {
    const line = new MemoryLine(spec);
    this.lines.set(spec.name, line);
    return line;
  }

  get(name: string): MemoryLine | undefined {
    return this.lines.get(name);
  }
}
