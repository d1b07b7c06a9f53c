/**
 * Latency and fault injection: what can go wrong between a client and the simulated site, and
 * the seeded decisions of when it does.
 *
 * Decisions come from one PRNG seeded with `seed` (re-seeded whenever the configuration is set),
 * so a run with the same requests in the same order makes the same decisions. Rates of exactly
 * `0` and `1` are exact (never / always) and draw nothing.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { chance, makeRng, normal, type Rng } from "./Random.js"

const Rate = Schema.Number.pipe(Schema.between(0, 1))
const Millis = Schema.Number.pipe(Schema.between(0, 600_000))

/** How long the site takes before it answers. */
export const LatencyConfig = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("none") }),
  /** Always `ms`. */
  Schema.Struct({ kind: Schema.Literal("fixed"), ms: Millis }),
  /** Uniform in `[minMs, maxMs]`. */
  Schema.Struct({ kind: Schema.Literal("uniform"), minMs: Millis, maxMs: Millis }),
  /** Log-normal with the given mean and 99th percentile. */
  Schema.Struct({ kind: Schema.Literal("lognormal"), meanMs: Millis, p99Ms: Millis })
)
/** How long the site takes before it answers. */
export type LatencyConfig = typeof LatencyConfig.Type

/** The fault configuration (also the JSON of `GET /__sim/faults`). */
export const FaultConfig = Schema.Struct({
  latency: LatencyConfig,
  /** Failure rate per method id; `"*"` applies to methods without their own entry. */
  errorRates: Schema.Record({ key: Schema.String, value: Rate }),
  /** A failure is an HTTP 503 for the whole request, or a per-item -32603 naming a backend. */
  errorKind: Schema.Literal("http503", "rpc"),
  /** Share of API requests never answered (until the client gives up or the server stops). */
  hangRate: Rate,
  /** Share of API requests whose connection is reset (TCP RST) after the request was read. */
  resetRate: Rate,
  /** Share of streamed replies paced at `streamBytesPerSecond`. */
  slowStreamRate: Rate,
  streamBytesPerSecond: Schema.Number.pipe(Schema.between(1, 1e12)),
  seed: Schema.Int
})
/** The fault configuration. */
export type FaultConfig = typeof FaultConfig.Type

/** A partial configuration, as `POST /__sim/faults` accepts it. */
export const FaultPatch = Schema.partialWith(FaultConfig, { exact: true })

/** No faults, no added latency. */
export const noFaults: FaultConfig = {
  latency: { kind: "none" },
  errorRates: {},
  errorKind: "rpc",
  hangRate: 0,
  resetRate: 0,
  slowStreamRate: 0,
  streamBytesPerSecond: 1024 * 1024,
  seed: 1
}

/** The decisions, for one simulator. Synchronous; used from the event loop. */
export interface FaultInjector {
  readonly config: () => FaultConfig
  /** Merges `patch` into the configuration and re-seeds the PRNG. */
  readonly set: (patch: Partial<FaultConfig>) => void
  readonly shouldReset: () => boolean
  readonly shouldHang: () => boolean
  /** Delay to add before answering, in ms (0 for `none`). */
  readonly latencyMs: () => number
  /** Whether a call of `methodId` fails (by its rate, else `"*"`, else 0). */
  readonly shouldFail: (methodId: string) => boolean
  /** Pace of a streamed reply, when this one is slow. */
  readonly slowStream: () => number | undefined
}

const Z99 = 2.3263478740408408

/** `sigma` and `mu` of a log-normal with the given mean and 99th percentile (sigma 0 when p99 ≤ mean). */
export const lognormalParams = (mean: number, p99: number): { mu: number; sigma: number } => {
  if (mean <= 0 || p99 <= mean) return { mu: Math.log(Math.max(mean, 1e-9)), sigma: 0 }
  // ln p99 = mu + z·sigma and ln mean = mu + sigma²/2  →  sigma²/2 − z·sigma + ln(p99/mean) = 0
  const d = Z99 * Z99 - 2 * Math.log(p99 / mean)
  const sigma = d >= 0 ? Z99 - Math.sqrt(d) : Z99
  return { mu: Math.log(mean) - (sigma * sigma) / 2, sigma }
}

/** A fault injector starting from `initial`. */
export const makeFaultInjector = (initial: FaultConfig): FaultInjector => {
  let config = initial
  let rng: Rng = makeRng(config.seed)
  const sampleLatency = (): number => {
    const l = config.latency
    switch (l.kind) {
      case "none":
        return 0
      case "fixed":
        return l.ms
      case "uniform":
        return Math.min(l.minMs, l.maxMs) + rng.next() * Math.abs(l.maxMs - l.minMs)
      case "lognormal": {
        const { mu, sigma } = lognormalParams(l.meanMs, l.p99Ms)
        return Math.min(600_000, Math.exp(mu + sigma * normal(rng)))
      }
    }
  }
  return {
    config: () => config,
    set: (patch) => {
      config = { ...config, ...patch }
      rng = makeRng(config.seed)
    },
    shouldReset: () => chance(rng, config.resetRate),
    shouldHang: () => chance(rng, config.hangRate),
    latencyMs: sampleLatency,
    shouldFail: (methodId) => chance(rng, config.errorRates[methodId] ?? config.errorRates["*"] ?? 0),
    slowStream: () => (chance(rng, config.slowStreamRate) ? config.streamBytesPerSecond : undefined)
  }
}
