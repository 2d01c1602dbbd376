// pm2 process file for the hub: `npx pm2 start deployment/ecosystem.config.cjs` (pm2 is a dependency
// of the hub workspace, so `npm ci` installs it; no global install).
// One process in fork mode: SQLite wants a single writer. The hub calls process.send("ready") only
// once the database is open and the port listens, so wait_ready makes start, restart and reload safe.
// On SIGINT (pm2's stop signal) the hub drains: it refuses new work with a recoverable 503, fails
// what still waits for a device, and lets running actions finish for LABRIG_DRAIN_MS; kill_timeout
// leaves room for that plus closing sockets and the database before pm2 sends SIGKILL.
// Settings below are defaults: a variable set where you run pm2 wins (PORT=9000 npx pm2 start …);
// after changing one, `npx pm2 restart labrig-hub --update-env`.
const path = require("node:path");

const fromEnv = (name, fallback) => process.env[name] || fallback;

module.exports = {
  apps: [
    {
      name: "labrig-hub",
      cwd: path.resolve(__dirname, ".."),
      script: "hub/dist/cli.js",
      args: "serve",
      exec_mode: "fork",
      instances: 1,
      wait_ready: true,
      listen_timeout: 15000,
      kill_timeout: 15000,
      max_memory_restart: "1G",
      // A hub that cannot start (bad config) is retried with growing delays instead of a tight loop.
      exp_backoff_restart_delay: 200,
      // One process, so one log file pair without the instance number (labrig-hub-out.log).
      merge_logs: true,
      env: {
        NODE_ENV: "production",
        PORT: fromEnv("PORT", "8080"),
        // nginx on this machine terminates TLS and proxies to loopback (deployment/nginx/labrig-hub.conf).
        LABRIG_BIND: fromEnv("LABRIG_BIND", "127.0.0.1"),
        LABRIG_TLS_UPSTREAM: fromEnv("LABRIG_TLS_UPSTREAM", "true"),
        LABRIG_DATA_DIR: fromEnv("LABRIG_DATA_DIR", "/var/lib/labrig-hub"),
        LABRIG_DRAIN_MS: fromEnv("LABRIG_DRAIN_MS", "10000"),
        LOG_LEVEL: fromEnv("LOG_LEVEL", "info"),
      },
    },
  ],
};
