import { randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, statSync, unlinkSync } from "node:fs";
import { open, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ARTIFACT_FETCH_MAX_BYTES, ArtifactIdSchema, LabrigError } from "@labrig/shared";
import type { Logger } from "../logger.js";

/** The kinds of files the agent stores, by extension, with the MIME type they are served as. */
export const ARTIFACT_TYPES = {
  jpg: "image/jpeg",
  webm: "video/webm",
  mp4: "video/mp4",
} as const;
export type ArtifactExt = keyof typeof ARTIFACT_TYPES;

const FILE_NAME = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(jpg|webm|mp4)$/;

export interface ArtifactLimits {
  maxBytes: number;
  maxCount: number;
  maxAgeS: number;
}

export interface ArtifactInfo {
  id: string;
  ext: ArtifactExt;
  mimeType: string;
  size: number;
  createdMs: number;
}

export interface ArtifactSlice {
  mime_type: string;
  size: number;
  offset: number;
  data: Buffer;
}

/** Checks an id from outside (the hub) before it goes anywhere near a path. */
export function parseArtifactId(id: unknown): string {
  const parsed = ArtifactIdSchema.safeParse(id);
  if (!parsed.success) throw new LabrigError("validation_failed", `'${String(id).slice(0, 80)}' is not an artifact id; ids are the uuids capture actions return.`);
  return parsed.data;
}

/**
 * Snapshots and clips waiting on the agent until the hub fetches them, under
 * `data_dir/artifacts/<uuid>.<ext>`. Bounded by count, bytes and age, oldest deleted first.
 * File names are made here from fresh uuids; ids coming back from the hub are validated
 * against the uuid pattern and looked up in the index, never joined into a path raw.
 */
export class ArtifactStore {
  private readonly index = new Map<string, ArtifactInfo>();
  private bytes = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly dir: string,
    private readonly limits: ArtifactLimits,
    private readonly logger: Logger,
  ) {}

  /** Indexes what an earlier run left (the hub may still fetch it), removes half-written files, applies the bounds. */
  start(): void {
    mkdirSync(this.dir, { recursive: true });
    const found: ArtifactInfo[] = [];
    for (const name of readdirSync(this.dir)) {
      const path = join(this.dir, name);
      if (name.endsWith(".part")) {
        unlinkSync(path);
        continue;
      }
      const m = FILE_NAME.exec(name);
      if (!m) continue;
      const st = statSync(path);
      const ext = m[2] as ArtifactExt;
      found.push({ id: m[1] as string, ext, mimeType: ARTIFACT_TYPES[ext], size: st.size, createdMs: st.mtimeMs });
    }
    found.sort((a, b) => a.createdMs - b.createdMs);
    for (const a of found) this.add(a);
    this.prune();
    this.logger.info({ dir: this.dir, artifacts: this.index.size, bytes: this.bytes }, "artifact store ready");
    this.timer = setInterval(() => this.prune(), 60_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get count(): number {
    return this.index.size;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  has(id: string): boolean {
    return this.index.has(id);
  }

  info(id: string): ArtifactInfo | undefined {
    return this.index.get(id);
  }

  /** A fresh id and the temporary path to write its file to; commit() makes it visible. */
  reserve(ext: ArtifactExt): { id: string; partPath: string } {
    const id = randomUUID();
    return { id, partPath: join(this.dir, `${id}.${ext}.part`) };
  }

  /** Moves a finished `.part` file into place and indexes it. */
  async commit(id: string, ext: ArtifactExt): Promise<ArtifactInfo> {
    const final = this.pathOf(id, ext);
    await rename(`${final}.part`, final);
    const st = await stat(final);
    const info: ArtifactInfo = { id, ext, mimeType: ARTIFACT_TYPES[ext], size: st.size, createdMs: Date.now() };
    this.add(info);
    this.prune(id);
    return info;
  }

  /** Stores a buffer as a new artifact; on failure nothing of it stays on disk (a full disk must not fill up further with halves). */
  async put(data: Buffer, ext: ArtifactExt): Promise<ArtifactInfo> {
    const { id, partPath } = this.reserve(ext);
    try {
      await writeFile(partPath, data);
      return await this.commit(id, ext);
    } catch (err) {
      await this.discard(partPath);
      throw this.storageFailure(err);
    }
  }

  /**
   * What a failed capture reports: a full disk (ENOSPC or EDQUOT, from a write here or from ffmpeg)
   * as `storage_full` — the device is fine, so it does not count against its health — and other
   * errors as they are.
   */
  storageFailure(err: unknown): unknown {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOSPC" && code !== "EDQUOT") return err;
    return new LabrigError("storage_full", `No space left on the agent's disk for the artifact (${this.dir}): free space there, or lower artifacts.max_bytes so older artifacts go first. Then retry.`, { cause: err });
  }

  /** Removes a `.part` file of a capture that failed. */
  async discard(partPath: string): Promise<void> {
    await rm(partPath, { force: true });
  }

  /** Reads up to `maxBytes` of an artifact from `offset`; `not_found` for ids the store does not hold. */
  async read(rawId: unknown, offset = 0, maxBytes = ARTIFACT_FETCH_MAX_BYTES): Promise<ArtifactSlice> {
    const id = parseArtifactId(rawId);
    const info = this.index.get(id);
    if (!info) throw new LabrigError("not_found", `No artifact ${id} on this agent: it was never made here, was fetched and deleted, or aged out.`);
    const start = Math.min(Math.max(0, offset), info.size);
    const length = Math.min(maxBytes, info.size - start);
    const data = Buffer.alloc(length);
    const fh = await open(this.pathOf(id, info.ext), "r");
    try {
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(data, done, length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } finally {
      await fh.close();
    }
    return { mime_type: info.mimeType, size: info.size, offset: start, data };
  }

  /** Deletes an artifact; false when it was not there. */
  async delete(rawId: unknown): Promise<boolean> {
    const id = parseArtifactId(rawId);
    const info = this.index.get(id);
    if (!info) return false;
    this.remove(info);
    return true;
  }

  private pathOf(id: string, ext: ArtifactExt): string {
    return join(this.dir, `${id}.${ext}`);
  }

  private add(info: ArtifactInfo): void {
    this.index.set(info.id, info);
    this.bytes += info.size;
  }

  private remove(info: ArtifactInfo): void {
    this.index.delete(info.id);
    this.bytes -= info.size;
    try {
      unlinkSync(this.pathOf(info.id, info.ext));
    } catch (err) {
      this.logger.warn({ artifact: info.id, err: (err as Error).message }, "could not delete an artifact file; it is no longer indexed");
    }
  }

  /** Applies age, count and size bounds, oldest first; `keep` (the artifact just made) goes last. */
  private prune(keep?: string): void {
    const cutoff = Date.now() - this.limits.maxAgeS * 1000;
    // Map iteration is insertion order, which is creation order here.
    for (const info of [...this.index.values()]) {
      const tooOld = info.createdMs < cutoff;
      const overBounds = this.index.size > this.limits.maxCount || this.bytes > this.limits.maxBytes;
      if (!tooOld && !overBounds) break;
      if (info.id === keep && !tooOld) continue;
      this.logger.info({ artifact: info.id, size: info.size, reason: tooOld ? "max_age_s" : "max_count/max_bytes" }, "artifact deleted to stay within bounds");
      this.remove(info);
    }
  }
}
