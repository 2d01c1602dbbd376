export * from "./errors.js";
export * from "./abort.js";
export * from "./validation.js";
export * from "./text.js";
export * from "./paging.js";
export * from "./image.js";
export * from "./pattern.js";
export * from "./model.js";
export * from "./actions.js";
export * from "./records.js";
export * from "./requests.js";
export * from "./events.js";
export * from "./socket-types.js";
export * from "./dashboard-streams.js";
export * from "./auth.js";
export * from "./json-schema.js";
export * from "./time.js";
export * from "./log-redaction.js";
export * from "./plans.js";
export * from "./campaigns.js";
export * from "./system-status.js";

/** The protocol version agents and hub announce to each other. */
export const PROTOCOL_VERSION = 1;
