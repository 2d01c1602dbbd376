import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

// Tests start real processes, sockets and pseudo-terminals; each file runs in its own fork. They
// mostly wait on those, so at least two files run at once even on a 2-core machine (vitest's default
// there is one): the suite takes about 5 minutes instead of 8.
export default defineConfig({
  test: {
    include: ["shared/test/**/*.test.ts", "hub/test/**/*.test.ts", "host-agent/test/**/*.test.ts", "test/**/*.test.ts"],
    pool: "forks",
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default"],
  },
});
