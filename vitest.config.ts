import { defineConfig } from "vitest/config";

// Tests start real processes, sockets and pseudo-terminals; each file runs in its own fork.
export default defineConfig({
  test: {
    include: ["shared/test/**/*.test.ts", "hub/test/**/*.test.ts", "host-agent/test/**/*.test.ts", "test/**/*.test.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default"],
  },
});
