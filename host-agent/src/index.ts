export { createAgent, type Agent, type AgentOptions } from "./agent.js";
export {
  ConfigError,
  DEFAULT_CONFIG_PATH,
  configPathFrom,
  formatKeyPath,
  loadConfig,
  parseConfig,
  type AgentConfig,
  type DeviceConfig,
  type GpioResourceConfig,
  type PowerResourceConfig,
  type ResourceConfig,
  type SerialResourceConfig,
} from "./config.js";
export { ConsoleStream, type ConsoleSink, type ConsoleStreamOptions } from "./console-stream.js";
export { Device, type DeviceCollaborators, type ResourceStateReport } from "./devices/device.js";
export { listGpioChips, resolveSysfsNumber, type GpioChip } from "./devices/gpio/chips.js";
export type { Bit, GpioLine, LineDirection, LineFactory, LineSpec } from "./devices/gpio/gpio-line.js";
export { MemoryLine, MemoryLineFactory } from "./devices/gpio/memory-line.js";
export { SysfsLine, SysfsLineFactory } from "./devices/gpio/sysfs-line.js";
export { PowerSwitch, type PowerState } from "./devices/power-switch.js";
export { SerialConsole, type ExpectOptions, type ExpectResult, type SerialConsoleHooks, type SerialConsoleOptions } from "./devices/serial-console.js";
export { Executor, toActionError, type ExecutorOptions, type RunnableDevice } from "./executor.js";
export { HubLink, type HubLinkHandlers, type HubLinkOptions } from "./hub-link.js";
export { createLogger, LOG_LEVELS, type LogLevel, type Logger } from "./logger.js";
export { Outbox, type OutboxOptions, type ResultTransport } from "./outbox.js";
export { SimPty, findSocat, SOCAT_INSTALL_HINT, type SimPtyOptions } from "./sim/pty.js";
export { SimulatedDut, type DutConsole, type SimulatedDutOptions } from "./sim/simulated-dut.js";
export { AGENT_VERSION } from "./version.js";
