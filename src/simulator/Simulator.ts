/**
 * The Drupal JSON-RPC simulator as an infrastructure adapter: a tag, a scoped `make`, `layer`
 * and `layerConfig` over the same `make` (the `PgClient` shape).
 *
 * `make` builds the corpus and search index, starts a `node:http` listener and returns the
 * service; closing the scope stops the listener: idle and hung connections are cut at once,
 * replies in flight get `shutdownTimeoutMs` to finish, then every remaining socket is destroyed.
 * The release is interruptible and time-boxed.
 *
 * @since 0.1.0
 */
import { Context, Data, Duration, Effect, Layer, type Scope } from "effect"
import type { ConfigError } from "effect/ConfigError"
import type { Corpus } from "./Corpus.js"
import { type FaultConfig, makeFaultInjector, noFaults } from "./Faults.js"
import type { MethodDefinition } from "./Methods.js"
import { listen, makeRequestHandler } from "./Server.js"
import { defaultSwitches, makeSite, type Switches } from "./Site.js"
import { SimulatorConfig } from "./SimulatorConfig.js"
import { makeStats, type SimulatorStats } from "./Stats.js"
import { type CostConfig, defaultCost, makeWorkerPool } from "./Workers.js"

export type { Corpus, CorpusItem } from "./Corpus.js"
export type { FaultConfig, LatencyConfig } from "./Faults.js"
export type { MethodDefinition, ParameterDefinition } from "./Methods.js"
export type { Switches } from "./Site.js"
export type { SimulatorStats } from "./Stats.js"
export type { CostConfig } from "./Workers.js"
export { defaultCost } from "./Workers.js"
export { DEMO_BASIC_AUTH, DEMO_TOKENS } from "./Users.js"

/** The simulator could not be built or could not listen. */
export class SimulatorError extends Data.TaggedError("SimulatorError")<{
  readonly reason: "build" | "listen"
  readonly cause: unknown
}> {
  override get message() {
    return `simulator ${this.reason} failed: ${String((this.cause as Error)?.message ?? this.cause)}`
  }
}

/** Options of {@link make}; `SimulatorConfig` gives the defaults of the `SIM_*` keys. */
export interface SimulatorOptions {
  /** Port to listen on; 0 picks a free one. */
  readonly port: number
  /** Interface to listen on (default 127.0.0.1). */
  readonly host?: string | undefined
  /** Number of corpus items (ids 1..corpusSize). */
  readonly corpusSize: number
  /** Corpus seed: same seed, same metadata and bodies, byte for byte. */
  readonly seed: number
  /** Share (0..1) of items with a 1–30 MB body. */
  readonly largeShare: number
  /** An item forced free whose HTML body is `hugeItemBytes` long (≈ bytes); none when absent. */
  readonly hugeItemId?: number | undefined
  /** Size of the huge item's HTML body (default 50 MiB). */
  readonly hugeItemBytes?: number | undefined
  /** Base of the tutorials' `url` (default: the simulator's own base URL). */
  readonly siteUrl?: string | undefined
  /** Bodies longer than this are streamed chunk by chunk (default 64 KiB). */
  readonly streamThresholdBytes?: number | undefined
  /** Size of streamed chunks (default 64 KiB). */
  readonly streamChunkBytes?: number | undefined
  /** Largest request body (default 1 MiB; larger: 413). */
  readonly maxBodyBytes?: number | undefined
  /** Largest batch (default 500; larger: 413). */
  readonly maxBatchSize?: number | undefined
  /** How long replies in flight may take to finish at shutdown (default 2 s). */
  readonly shutdownTimeoutMs?: number | undefined
  /** What a real site can differ in (defaults: the module's 2.0.5 source, see `Switches`). */
  readonly switches?: Partial<Switches> | undefined
  /** Fault injection at start (default: none). */
  readonly faults?: Partial<FaultConfig> | undefined
  /**
   * The cost of a request (PHP workers, bootstrap, per-item cost). Default: `defaultCost`, the
   * model ON; fast specs pass `{ enabled: false }` explicitly.
   */
  readonly cost?: Partial<CostConfig> | undefined
}

/** The running simulator. */
export interface Simulator {
  /** Base URL, `http://127.0.0.1:<port>`; the API is at `url + "/jsonrpc"`. */
  readonly url: string
  readonly port: number
  /** Counters since start or the last `reset`. */
  readonly stats: Effect.Effect<SimulatorStats>
  /** Zeroes the counters. */
  readonly reset: Effect.Effect<void>
  /** The fault configuration in force. */
  readonly faults: Effect.Effect<FaultConfig>
  /** Changes fault injection from now on (merged into the current configuration; re-seeds). */
  readonly setFaults: (faults: Partial<FaultConfig>) => Effect.Effect<void>
  /** Adds (or replaces, same id) a method, visible at once in discovery and callable. */
  readonly addMethod: (method: MethodDefinition) => Effect.Effect<void>
  /** Removes a method (no-op when absent). */
  readonly removeMethod: (id: string) => Effect.Effect<void>
  /** Read access to the corpus (item metadata by id, bodies). */
  readonly corpus: Corpus
}

/** Tag of the simulator. */
export const Simulator = Context.GenericTag<Simulator>("accelerator/Simulator")

const urlHost = (host: string): string =>
  host === "0.0.0.0" || host === "" ? "127.0.0.1" : host === "::" ? "[::1]" : host.includes(":") ? `[${host}]` : host

/**
 * Starts a simulator in the current scope. Building the corpus and index is synchronous
 * (about 0.3 s for 10,000 items); fails with `SimulatorError` when the port cannot be bound.
 */
export const make = (options: SimulatorOptions): Effect.Effect<Simulator, SimulatorError, Scope.Scope> =>
  Effect.gen(function*() {
    const host = options.host ?? "127.0.0.1"
    const shutdownMs = options.shutdownTimeoutMs ?? 2_000
    const site = yield* Effect.try({
      try: () =>
        makeSite({
          corpusSize: options.corpusSize,
          seed: options.seed,
          largeShare: options.largeShare,
          hugeItemId: options.hugeItemId,
          hugeItemChars: options.hugeItemBytes,
          switches: { ...defaultSwitches, ...options.switches },
          streamThresholdChars: options.streamThresholdBytes ?? 64 * 1024,
          streamChunkChars: options.streamChunkBytes ?? 64 * 1024,
          siteUrl: options.siteUrl
        }),
      catch: (cause) => new SimulatorError({ reason: "build", cause })
    })
    const faults = makeFaultInjector({ ...noFaults, ...options.faults })
    const stats = makeStats()
    const workers = makeWorkerPool({ ...defaultCost, ...options.cost }, {
      onQueued: (ms) => (stats.counters.queue_ms += ms),
      onReleased: (ms) => (stats.counters.worker_ms += ms)
    })
    stats.pool = () => ({ busy: workers.busy(), waiting: workers.waiting() })
    let baseUrl = ""
    const handler = makeRequestHandler({
      site,
      registry: site.registry,
      faults,
      stats,
      workers,
      limits: { maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024, maxBatchSize: options.maxBatchSize ?? 500 },
      baseUrl: () => baseUrl
    })
    const running = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => listen(handler, host, options.port),
        catch: (cause) => new SimulatorError({ reason: "listen", cause })
      }),
      (server) =>
        Effect.promise(() => server.close(shutdownMs)).pipe(
          Effect.interruptible,
          Effect.timeoutOption(Duration.millis(shutdownMs + 1_000)),
          Effect.ensuring(Effect.sync(() => server.server.closeAllConnections()))
        )
    )
    baseUrl = `http://${urlHost(host)}:${running.port}`
    if (site.state.siteUrl === "") site.state.siteUrl = baseUrl
    return Simulator.of({
      url: baseUrl,
      port: running.port,
      stats: Effect.sync(() => stats.snapshot()),
      reset: Effect.sync(() => stats.reset()),
      faults: Effect.sync(() => faults.config()),
      setFaults: (patch) => Effect.sync(() => faults.set(patch)),
      addMethod: (method) => Effect.sync(() => site.registry.add(method)),
      removeMethod: (id) => Effect.sync(() => void site.registry.remove(id)),
      corpus: site.corpus
    })
  }).pipe(Effect.withSpan("Simulator.make"))

/** The simulator as a layer over explicit options. */
export const layer = (options: SimulatorOptions): Layer.Layer<Simulator, SimulatorError> =>
  Layer.scoped(Simulator, make(options))

const merge = (base: SimulatorOptions, overrides: Partial<SimulatorOptions>): SimulatorOptions => ({
  ...base,
  ...overrides,
  switches: { ...base.switches, ...overrides.switches },
  faults: { ...base.faults, ...overrides.faults },
  cost: { ...base.cost, ...overrides.cost }
})

/** The simulator from the `SIM_*` keys (see `SimulatorConfig`), with `overrides` on top. */
export const layerConfig = (
  overrides: Partial<SimulatorOptions> = {}
): Layer.Layer<Simulator, SimulatorError | ConfigError> =>
  Layer.scoped(Simulator, Effect.flatMap(SimulatorConfig, (config) => make(merge(config, overrides))))
