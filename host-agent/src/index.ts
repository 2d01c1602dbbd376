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
  type VideoResourceConfig,
  type ArtifactsConfig,
} from "./config.js";
export { ArtifactStore, ARTIFACT_TYPES, parseArtifactId, type ArtifactExt, type ArtifactInfo, type ArtifactLimits } from "./capture/artifact-store.js";
export { recordClip, type ClipOptions, type ClipResult } from "./capture/clip-recorder.js";
export { FrameEncoder, webCodecsCodec, type EncodedChunk, type FrameEncoderOptions } from "./capture/encoder.js";
export { FFMPEG_INSTALL_HINT, FfmpegFrameSource, ffmpegFrameArgs, findExecutable, v4l2InputArgs, type FfmpegSourceOptions } from "./capture/ffmpeg-source.js";
export { FrameFanout, frameBytes, i420ToRgba, rgbaToI420, toRgba, type Frame, type FrameSource, type FrameSubscription, type PixelFormat } from "./capture/frame.js";
export { LiveStream, type LiveStreamOptions, type LiveStreamStats, type StreamSink } from "./capture/live-stream.js";
export { TestPatternSource, type ScreenOverlay, type TestPatternOptions } from "./capture/test-pattern.js";
export { VideoCapture, type VideoCaptureDeps } from "./capture/video-capture.js";
export { ConsoleStream, type ConsoleSink, type ConsoleStreamOptions } from "./console-stream.js";
export { Device, type DeviceCollaborators, type ResourceStateReport } from "./devices/device.js";
export { listGpioChips, resolveSysfsNumber, type GpioChip } from "./devices/gpio/chips.js";
export type { Bit, GpioDriverName, GpioLine, LineBias, LineDirection, LineFactory, LineSpec } from "./devices/gpio/gpio-line.js";
export { MemoryLine, MemoryLineFactory } from "./devices/gpio/memory-line.js";
export { SysfsLine, SysfsLineFactory } from "./devices/gpio/sysfs-line.js";
export { ChardevLine, ChardevLineFactory } from "./devices/gpio/chardev-line.js";
export { chooseGpioDriver, createLineFactory, type GpioDriverChoice } from "./devices/gpio/driver-choice.js";
export { UapiError, nativeUapi, type GpioUapi } from "./devices/gpio/uapi.js";
export { ExpectEngine, type ExpectEngineOptions } from "./devices/expect-engine.js";
export { PowerSwitch, type PowerState } from "./devices/power-switch.js";
export { ConsoleHistory, type ConsoleEntry } from "./devices/console-history.js";
export { ConsoleLogFile, consoleLogPath, type ConsoleLogFileOptions } from "./devices/console-log-file.js";
export { InputWatcher, type EdgeSetting, type InputWatcherOptions, type WatchMode } from "./devices/gpio/input-watcher.js";
export { listSerialPorts, type SerialPortInfo, type SerialPortList } from "./devices/serial-ports.js";
export { formatDoctorReport, runDoctor, SERVICE_GROUPS, type DoctorCheck, type DoctorOptions, type DoctorReport } from "./doctor.js";
export { defaultHostId, renderInitConfig, writeInitConfig, type InitOptions } from "./init.js";
export { SerialConsole, type ExpectOptions, type ExpectResult, type SerialConsoleHooks, type SerialConsoleOptions } from "./devices/serial-console.js";
export { Executor, toActionError, type ExecutorOptions, type RunnableDevice } from "./executor.js";
export { HubLink, type HubLinkHandlers, type HubLinkOptions } from "./hub-link.js";
export { createLogger, LOG_LEVELS, type LogLevel, type Logger } from "./logger.js";
export { Outbox, type OutboxOptions, type ResultTransport } from "./outbox.js";
export { SimPty, findSocat, SOCAT_INSTALL_HINT, type SimPtyOptions } from "./sim/pty.js";
export { SimulatedDut, type DutConsole, type DutState, type SimulatedDutOptions } from "./sim/simulated-dut.js";
export { BoardJournal, type BoardJournalEntry } from "./sim/board-journal.js";
export { AGENT_VERSION } from "./version.js";
