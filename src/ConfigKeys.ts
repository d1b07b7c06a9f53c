/**
 * Builders of validated configuration keys, shared by every config module (`Config.ts`,
 * `cache/CacheConfig.ts`, `telemetry/TelemetryConfig.ts`): durations in whole milliseconds,
 * counts, ratios — each with its default and a message that names the key.
 *
 * @since 0.1.0
 */
import { Config, Duration } from "effect"

/** A duration given in whole milliseconds, at least `minimum` (default 0). */
export const millis = (name: string, defaultMs: number, minimum = 0): Config.Config<Duration.Duration> =>
  Config.integer(name).pipe(
    Config.validate({
      message: `${name} must be a whole number of milliseconds ${minimum === 0 ? ">= 0" : `>= ${minimum}`}`,
      validation: (n) => n >= minimum
    }),
    Config.withDefault(defaultMs),
    Config.map(Duration.millis)
  )

/** A whole number > 0. */
export const positiveInt = (name: string, defaultValue: number): Config.Config<number> =>
  Config.integer(name).pipe(
    Config.validate({ message: `${name} must be a whole number > 0`, validation: (n) => n > 0 }),
    Config.withDefault(defaultValue)
  )

/** A whole number >= 0. */
export const nonNegativeInt = (name: string, defaultValue: number): Config.Config<number> =>
  Config.integer(name).pipe(
    Config.validate({ message: `${name} must be a whole number >= 0`, validation: (n) => n >= 0 }),
    Config.withDefault(defaultValue)
  )

/** A number in (0, 1]. */
export const ratio = (name: string, defaultValue: number): Config.Config<number> =>
  Config.number(name).pipe(
    Config.validate({ message: `${name} must be a number in (0, 1]`, validation: (n) => n > 0 && n <= 1 }),
    Config.withDefault(defaultValue)
  )
