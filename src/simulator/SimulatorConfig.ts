/**
 * Every configuration key of the Drupal simulator, with its default, in one place (the README's
 * simulator table lists the same keys). Read only through Effect `Config`.
 *
 * @since 0.1.0
 */
import { Config, ConfigError, Either } from "effect"
import type { FaultConfig, LatencyConfig } from "./Faults.js"
import { MODULE_VERSIONS } from "./Methods.js"
import { type CostConfig, defaultCost } from "./Workers.js"

const int = (name: string, defaultValue: number, min: number, max: number): Config.Config<number> =>
  Config.integer(name).pipe(
    Config.validate({
      message: `${name} must be a whole number between ${min} and ${max}`,
      validation: (n) => n >= min && n <= max
    }),
    Config.withDefault(defaultValue)
  )

const rate = (name: string, defaultValue: number): Config.Config<number> =>
  Config.number(name).pipe(
    Config.validate({ message: `${name} must be a number between 0 and 1`, validation: (n) => n >= 0 && n <= 1 }),
    Config.withDefault(defaultValue)
  )

const millis = (name: string, defaultValue: number) => int(name, defaultValue, 0, 600_000)

/** `method=rate,method=rate` → record; `*` is every other method. */
const errorRates = Config.string("SIM_ERROR_RATES").pipe(
  Config.withDefault(""),
  Config.mapOrFail((text) => {
    const out: Record<string, number> = {}
    for (const entry of text.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
      const eq = entry.lastIndexOf("=")
      const method = entry.slice(0, eq).trim()
      const value = Number(entry.slice(eq + 1))
      if (eq <= 0 || method === "" || !Number.isFinite(value) || value < 0 || value > 1) {
        return Either.left(
          ConfigError.InvalidData(["SIM_ERROR_RATES"], `SIM_ERROR_RATES entry "${entry}" is not <method>=<rate in 0..1>`)
        )
      }
      out[method] = value
    }
    return Either.right(out)
  })
)

/** Latency: `SIM_LATENCY` picks the distribution, the other keys its parameters. */
const LatencyFromConfig: Config.Config<LatencyConfig> = Config.all({
  kind: Config.literal("none", "fixed", "uniform", "lognormal")("SIM_LATENCY").pipe(Config.withDefault("none" as const)),
  ms: millis("SIM_LATENCY_MS", 20),
  minMs: millis("SIM_LATENCY_MIN_MS", 5),
  maxMs: millis("SIM_LATENCY_MAX_MS", 50),
  meanMs: millis("SIM_LATENCY_MEAN_MS", 30),
  p99Ms: millis("SIM_LATENCY_P99_MS", 200)
}).pipe(Config.map((l): LatencyConfig => {
  switch (l.kind) {
    case "none":
      return { kind: "none" }
    case "fixed":
      return { kind: "fixed", ms: l.ms }
    case "uniform":
      return { kind: "uniform", minMs: l.minMs, maxMs: l.maxMs }
    case "lognormal":
      return { kind: "lognormal", meanMs: l.meanMs, p99Ms: l.p99Ms }
  }
}))

/** Fault injection at start (changeable at run time with `setFaults` / `POST /__sim/faults`). */
export const FaultsFromConfig: Config.Config<FaultConfig> = Config.all({
  latency: LatencyFromConfig,
  errorRate: rate("SIM_ERROR_RATE", 0),
  errorRates,
  errorKind: Config.literal("rpc", "http503")("SIM_ERROR_KIND").pipe(Config.withDefault("rpc" as const)),
  hangRate: rate("SIM_HANG_RATE", 0),
  resetRate: rate("SIM_RESET_RATE", 0),
  slowStreamRate: rate("SIM_SLOW_STREAM_RATE", 0),
  streamBytesPerSecond: int("SIM_STREAM_BYTES_PER_SEC", 1024 * 1024, 1, 1_000_000_000_000),
  seed: int("SIM_FAULT_SEED", 1, -2_147_483_648, 2_147_483_647)
}).pipe(Config.map(({ errorRate, errorRates, ...rest }): FaultConfig => ({
  ...rest,
  errorRates: errorRate > 0 ? { "*": errorRate, ...errorRates } : errorRates
})))

/** What a real site can differ in (defaults: the module's 2.0.5 source, see `Site.Switches`). */
export const SwitchesFromConfig = Config.all({
  moduleVersion: Config.literal(...MODULE_VERSIONS)("SIM_MODULE_VERSION").pipe(Config.withDefault("2.0.5" as const)),
  accessContext: Config.literal("on", "off")("SIM_ACCESS_CONTEXT").pipe(
    Config.withDefault("on" as const),
    Config.map((v) => v === "on")
  ),
  missingItem: Config.literal("parse", "item")("SIM_MISSING_ITEM").pipe(Config.withDefault("item" as const))
})

/** The cost of a request (see `Workers`); `SIM_COST=off` turns the whole model off. */
export const CostFromConfig: Config.Config<CostConfig> = Config.all({
  enabled: Config.literal("on", "off")("SIM_COST").pipe(Config.withDefault("on" as const), Config.map((v) => v === "on")),
  workers: int("SIM_WORKERS", defaultCost.workers, 1, 100_000),
  queueMax: int("SIM_QUEUE_MAX", defaultCost.queueMax, 0, 10_000_000),
  bootstrapMeanMs: millis("SIM_BOOTSTRAP_MS", defaultCost.bootstrapMeanMs),
  bootstrapP99Ms: millis("SIM_BOOTSTRAP_P99_MS", defaultCost.bootstrapP99Ms),
  itemMs: millis("SIM_ITEM_MS", defaultCost.itemMs),
  searchMs: millis("SIM_SEARCH_MS", defaultCost.searchMs),
  seed: int("SIM_COST_SEED", defaultCost.seed, -2_147_483_648, 2_147_483_647)
})

/** All simulator options from `SIM_*` keys (a `SimulatorOptions`; typed where `Simulator.ts` uses it). */
export const SimulatorConfig = Config.all({
  port: int("SIM_PORT", 8090, 0, 65535),
  host: Config.string("SIM_HOST").pipe(Config.withDefault("127.0.0.1")),
  siteUrl: Config.option(Config.url("SIM_SITE_URL")),
  corpusSize: int("SIM_CORPUS_SIZE", 10_000, 1, 1_000_000),
  seed: int("SIM_SEED", 42, -2_147_483_648, 2_147_483_647),
  largeShare: rate("SIM_LARGE_SHARE", 0.01),
  hugeItemId: int("SIM_HUGE_ITEM_ID", 0, 0, 1_000_000),
  hugeItemBytes: int("SIM_HUGE_ITEM_BYTES", 50 * 1024 * 1024, 1024, 2_000_000_000),
  streamThresholdBytes: int("SIM_STREAM_THRESHOLD_BYTES", 64 * 1024, 0, 1_000_000_000),
  streamChunkBytes: int("SIM_STREAM_CHUNK_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024),
  maxBodyBytes: int("SIM_MAX_BODY_BYTES", 1024 * 1024, 1024, 1_000_000_000),
  maxBatchSize: int("SIM_MAX_BATCH_SIZE", 500, 1, 1_000_000),
  shutdownTimeoutMs: millis("SIM_SHUTDOWN_TIMEOUT_MS", 2_000),
  switches: SwitchesFromConfig,
  faults: FaultsFromConfig,
  cost: CostFromConfig
}).pipe(Config.map(({ hugeItemId, siteUrl, ...rest }) => ({
  ...rest,
  hugeItemId: hugeItemId === 0 ? undefined : hugeItemId,
  siteUrl: siteUrl._tag === "Some" ? siteUrl.value.origin + siteUrl.value.pathname.replace(/\/+$/, "") : undefined
})))
