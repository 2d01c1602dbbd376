export { createHub, type Hub, type HubAddress, type HubOptions } from "./hub.js";
export { loadConfig, configSummary, LOG_LEVELS, type HubConfig, type LogLevel } from "./config.js";
export { createLogger, type Logger } from "./logger.js";
export { runCli, USAGE, type CliIo, type CliResult, type Served } from "./cli/commands.js";
export { HUB_VERSION } from "./version.js";
export { scaleJpeg, type ScaledFrame } from "./services/planner/frame.js";
