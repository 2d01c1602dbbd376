import { closeSync, constants, openSync, readSync } from "node:fs";
import { createRequire } from "node:module";
import { constants as osConstants } from "node:os";
import { fileURLToPath } from "node:url";

/**
 * The system calls the character-device driver makes, and nothing more: open a chip, ioctl,
 * read edge events, be told when a line request is readable, close. The structs live in
 * uapi-layout.ts; the kernel (or, in tests, a stand-in for it) sits below this interface.
 */
export interface GpioUapi {
  /** Opens /dev/gpiochipN for reading and writing; the fd is close-on-exec. */
  open(path: string): number;
  close(fd: number): void;
  /** ioctl(fd, request, buf); throws an UapiError carrying the errno. */
  ioctl(fd: number, request: number, buf: Buffer): void;
  /** One read(2) into `buf`; returns the bytes read. Called only after onReadable fired. */
  read(fd: number, buf: Buffer): number;
  /** Calls `onReadable` whenever `fd` has data (edge events), from the event loop; returns the stop function. */
  watch(fd: number, onReadable: () => void): () => void;
}

/** A failed system call: `code` is the errno name (EBUSY, EINVAL, EACCES, …). */
export class UapiError extends Error {
  constructor(
    readonly code: string,
    readonly errno: number,
    message: string,
  ) {
    super(message);
    this.name = "UapiError";
  }
}

interface NativeAddon {
  ioctl(fd: number, request: number, buf: Buffer): number;
  watch(fd: number, callback: (status: number) => void): unknown;
  unwatch(handle: unknown): void;
}

const ERRNO_NAMES = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** Where node-gyp puts the addon (host-agent/binding.gyp, built by `npm ci`). */
export const ADDON_PATH = fileURLToPath(new URL("../../../build/Release/labrig_gpio.node", import.meta.url));

let addon: NativeAddon | null = null;

/**
 * The addon, loaded on first use: machines that never drive a character-device line never load
 * it. A missing build says how to make it.
 */
function loadAddon(): NativeAddon {
  if (addon) return addon;
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  } catch (err) {
    throw new UapiError("ENOADDON", 0, `the GPIO character-device addon is not built (${(err as Error).message}); run npm ci (or npm rebuild -w host-agent), which builds it with node-gyp`);
  }
  return addon;
}

function fromNative(err: unknown, what: string): UapiError {
  const e = err as Error & { errno?: number; code?: string };
  const errno = typeof e.errno === "number" ? Math.abs(e.errno) : 0;
  const code = typeof e.code === "string" ? e.code : (ERRNO_NAMES.get(errno) ?? "EIO");
  return new UapiError(code, errno, `${what}: ${e.message}`);
}

/** The real kernel: fs for open/read/close, the addon for ioctl and for polling fds on the event loop. */
export function nativeUapi(): GpioUapi {
  const native = loadAddon();
  return {
    open(path) {
      try {
        // libuv adds O_CLOEXEC itself, so ffmpeg and socat children never inherit a chip.
        return openSync(path, constants.O_RDWR);
      } catch (err) {
        throw fromNative(err, `open ${path}`);
      }
    },
    close(fd) {
      closeSync(fd);
    },
    ioctl(fd, request, buf) {
      try {
        native.ioctl(fd, request, buf);
      } catch (err) {
        throw fromNative(err, `ioctl 0x${request.toString(16)}`);
      }
    },
    read(fd, buf) {
      return readSync(fd, buf, 0, buf.length, null);
    },
    watch(fd, onReadable) {
      const handle = native.watch(fd, (status) => {
        // A poll error (the line request went away) reads as readable: the read then says what happened.
        if (status <= 0) onReadable();
      });
      let stopped = false;
      // The handle is freed once stopped; a second unwatch must not reach it.
      return () => {
        if (stopped) return;
        stopped = true;
        native.unwatch(handle);
      };
    },
  };
}
