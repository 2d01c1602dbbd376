// pm2 process file for the hub: `pm2 start deployment/ecosystem.config.cjs`.
// One process in fork mode: SQLite wants a single writer. The hub calls process.send("ready")
// only once the database is open and the port listens, so wait_ready makes reloads safe.
const path = require("node:path");

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
      kill_timeout: 10000,
      max_memory_restart: "1G",
      env: {
        NODE_ENV: "production",
        PORT: "8080",
        LABRIG_BIND: "0.0.0.0",
        LABRIG_DATA_DIR: "/var/lib/labrig-hub",
        LOG_LEVEL: "info",
      },
    },
  ],
};
