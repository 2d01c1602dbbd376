import { getHeapSnapshot, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let gc: (() => void) | null = null;

/** What the heap holds after a full garbage collection, in bytes: everything, and the part that is compiled code. */
export interface HeapFigures {
  total: number;
  code: number;
}

/**
 * The heap after a full garbage collection, from a heap snapshot: V8 keeps compiling and
 * re-optimising hot functions for minutes, so compiled code grows while no object is retained; it is
 * counted apart from the objects the hub keeps.
 */
export async function heapAfterGc(): Promise<HeapFigures> {
  if (gc === null) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
  }
  gc();
  gc();
  const chunks: Buffer[] = [];
  for await (const chunk of getHeapSnapshot()) chunks.push(chunk as Buffer);
  const snapshot = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[] };
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const typeAt = fields.indexOf("type");
  const sizeAt = fields.indexOf("self_size");
  const figures: HeapFigures = { total: 0, code: 0 };
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    const size = snapshot.nodes[i + sizeAt] as number;
    figures.total += size;
    if (types[snapshot.nodes[i + typeAt] as number] === "code") figures.code += size;
  }
  return figures;
}
