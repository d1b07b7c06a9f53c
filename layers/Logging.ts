/**
 * Structured logs: JSON lines by default (`LOG_FORMAT=pretty` for a terminal), minimum level
 * from `LOG_LEVEL`.
 */
import { Effect, Layer, Logger, LogLevel } from "effect"
import { LogConfig } from "../src/Config.js"

const levels = {
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error
} as const

export const LoggingLive = Layer.unwrapEffect(
  Effect.map(LogConfig, (config) =>
    Layer.merge(
      config.format === "json" ? Logger.json : Logger.pretty,
      Logger.minimumLogLevel(levels[config.level])
    ))
)
