import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";

/** What the hub writes holds transcripts, frames and key hashes: readable by its own user only. */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates `dir` and its missing parents as 0700, whatever the umask (mkdir's mode passes through it;
 * chmod does not). Directories that already existed are left as they are.
 */
export function makePrivateDir(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first === undefined) return;
  const top = resolve(first);
  for (let d = resolve(dir); ; d = dirname(d)) {
    chmodSync(d, PRIVATE_DIR_MODE);
    if (d === top || d === dirname(d)) return;
  }
}

/** Writes `data` to a file that is 0600 whatever the umask; `exclusive` refuses to replace or follow anything already there. */
export function writePrivateFile(path: string, data: Uint8Array | string, exclusive = false): void {
  const fd = openSync(path, exclusive ? "wx" : "w", PRIVATE_FILE_MODE);
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/** Makes an existing file 0600 (one an older version created world-readable); a missing one is fine. */
export function restrictFile(path: string): void {
  try {
    chmodSync(path, PRIVATE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/** Creates `path` empty as 0600 when it does not exist, and makes it 0600 when it does. */
export function ensurePrivateFile(path: string): void {
  closeSync(openSync(path, "a", PRIVATE_FILE_MODE));
  chmodSync(path, PRIVATE_FILE_MODE);
}
