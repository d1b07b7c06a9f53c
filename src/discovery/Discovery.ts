/**
 * The site's JSON-RPC methods as each kind of caller sees them. Drupal lists only the methods
 * the calling user may execute, so the method set is kept per partition (callers who see the
 * same set), fingerprinted (its version), refreshed in the background on a schedule, and
 * compared on every refresh: added, removed and changed methods are logged and counted.
 *
 * Bounded: at most `maxPartitions` partitions are kept (least recently used dropped first).
 *
 * @since 0.1.0
 */
import { Context, Data, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { DiscoveryConfig } from "../Config.js"
import * as SingleFlight from "../concurrency/SingleFlight.js"
import type { Credentials } from "../drupal/Credentials.js"
import type { DrupalError } from "../drupal/DrupalError.js"
import { DrupalRpc } from "../drupal/DrupalRpc.js"
import { ArgumentValidator, type InvalidArguments } from "./ArgumentValidator.js"
import { decodeMethodList, type MethodInfo } from "./DiscoveryDocument.js"
import { diff, fingerprint, isEmptyDiff, type MethodSetDiff } from "./Fingerprint.js"
import { type McpTool, toTools } from "./McpTools.js"

/** Methods found added, removed or changed by discovery refreshes (label `change` from a fixed set). */
export const discoveryChanges = Metric.counter("accelerator_discovery_method_changes_total", {
  description: "Methods found added, removed or changed by discovery refreshes",
  incremental: true
})

const countChanges = (change: MethodSetDiff) =>
  Effect.all([
    Metric.incrementBy(Metric.tagged(discoveryChanges, "change", "added"), change.added.length),
    Metric.incrementBy(Metric.tagged(discoveryChanges, "change", "removed"), change.removed.length),
    Metric.incrementBy(Metric.tagged(discoveryChanges, "change", "changed"), change.changed.length)
  ], { discard: true })

/** The method is not in the caller's method set (unknown, or not allowed for this caller). */
export class UnknownMethod extends Data.TaggedError("UnknownMethod")<{ readonly method: string }> {
  override get message() {
    return `The method '${this.method}' does not exist or is not available to this caller`
  }
}

/** One partition's view of the site's methods. */
export interface MethodSet {
  readonly methods: ReadonlyArray<MethodInfo>
  readonly byId: ReadonlyMap<string, MethodInfo>
  /** sha256 of the canonical method set: changes exactly when the set changes. */
  readonly fingerprint: string
  readonly tools: ReadonlyArray<McpTool>
  /** Epoch ms of the fetch. */
  readonly fetchedAt: number
}

/** Options of {@link make}. */
export interface DiscoveryOptions {
  readonly refreshInterval: Duration.DurationInput
  readonly maxPartitions: number
  /** Which partition a caller belongs to (callers of one partition see the same methods). */
  readonly partitionOf: (credentials: Credentials) => string
  /** Told the method ids of every set fetched (e.g. to register metric labels). */
  readonly onMethods?: (ids: ReadonlyArray<string>) => void
  /** Run on every change found by a refresh (e.g. to invalidate cached tool lists). */
  readonly onChange?: (partition: string, change: MethodSetDiff) => Effect.Effect<void>
}

/** The discovery service. */
export interface Discovery {
  /** The caller's method set, fetched on first use and kept fresh in the background. */
  readonly methodSet: (credentials: Credentials) => Effect.Effect<MethodSet, DrupalError>
  /** The method, or `UnknownMethod` when the caller's set lacks it. */
  readonly ensureMethod: (credentials: Credentials, method: string) => Effect.Effect<MethodInfo, DrupalError | UnknownMethod>
  /** Checks `args` against the method's translated input schema (after `ensureMethod`). */
  readonly validate: (
    credentials: Credentials,
    method: string,
    args: unknown
  ) => Effect.Effect<MethodInfo, DrupalError | UnknownMethod | InvalidArguments>
  /** Refreshes every known partition now (what the background loop does on its schedule). */
  readonly refreshAll: Effect.Effect<void>
}

/** Tag of the discovery service. */
export const Discovery = Context.GenericTag<Discovery>("accelerator/Discovery")

const toMethodSet = (methods: ReadonlyArray<MethodInfo>): MethodSet => ({
  methods,
  byId: new Map(methods.map((m) => [m.id, m])),
  fingerprint: fingerprint(methods),
  tools: toTools(methods),
  fetchedAt: Date.now()
})

/** Creates the service; its refresh loop runs in the current scope. */
export const make = (options: DiscoveryOptions) =>
  Effect.gen(function*() {
    const rpc = yield* DrupalRpc
    const validator = yield* ArgumentValidator
    // Insertion order is recency order: a hit re-inserts, eviction takes the first key.
    const partitions = new Map<string, { credentials: Credentials; set: MethodSet }>()
    const singleFlight = yield* SingleFlight.make({ maxKeys: options.maxPartitions })

    const fetch = (credentials: Credentials) =>
      Effect.flatMap(rpc.discovery(credentials), decodeMethodList).pipe(
        Effect.map(toMethodSet),
        Effect.tap((set) => Effect.sync(() => options.onMethods?.(set.methods.map((m) => m.id))))
      )

    const store = (partition: string, credentials: Credentials, set: MethodSet) => {
      partitions.delete(partition)
      partitions.set(partition, { credentials, set })
      while (partitions.size > options.maxPartitions) partitions.delete(partitions.keys().next().value!)
    }

    const load = (partition: string, credentials: Credentials) =>
      singleFlight.run(
        partition,
        Effect.tap(fetch(credentials), (set) => Effect.sync(() => store(partition, credentials, set)))
      )

    const methodSet = (credentials: Credentials) =>
      Effect.suspend(() => {
        const partition = options.partitionOf(credentials)
        const known = partitions.get(partition)
        if (known === undefined) return load(partition, credentials)
        store(partition, credentials, known.set)
        return Effect.succeed(known.set)
      })

    const ensureMethod = (credentials: Credentials, method: string) =>
      Effect.flatMap(methodSet(credentials), (set) => {
        const info = set.byId.get(method)
        return info === undefined ? Effect.fail(new UnknownMethod({ method })) : Effect.succeed(info)
      })

    const validate = (credentials: Credentials, method: string, args: unknown) =>
      Effect.flatMap(methodSet(credentials), (set): Effect.Effect<MethodInfo, UnknownMethod | InvalidArguments> => {
        const info = set.byId.get(method)
        if (info === undefined) return Effect.fail(new UnknownMethod({ method }))
        return Effect.as(validator.validate(set.fingerprint, info, args), info)
      })

    const refreshOne = (partition: string, credentials: Credentials, previous: MethodSet) =>
      fetch(credentials).pipe(
        Effect.tap((next) =>
          Effect.gen(function*() {
            if (next.fingerprint === previous.fingerprint) return
            const change = diff(previous.methods, next.methods)
            if (!isEmptyDiff(change)) {
              if (options.onChange !== undefined) yield* options.onChange(partition, change)
              yield* countChanges(change)
              yield* Effect.logInfo("discovery: the method set changed").pipe(
                Effect.annotateLogs({
                  partition: partition.slice(0, 12),
                  added: change.added.join(","),
                  removed: change.removed.join(","),
                  changed: change.changed.join(","),
                  fingerprint: next.fingerprint.slice(0, 16)
                })
              )
            }
            if (partitions.has(partition)) store(partition, credentials, next)
          })
        ),
        Effect.catchAll((error) =>
          Effect.logWarning("discovery: refresh failed; keeping the previous method set").pipe(
            Effect.annotateLogs({ partition: partition.slice(0, 12), error: error.message })
          )
        )
      )

    const refreshAll = Effect.suspend(() =>
      Effect.forEach([...partitions.entries()], ([partition, { credentials, set }]) => refreshOne(partition, credentials, set), {
        concurrency: 4,
        discard: true
      })
    )

    yield* Effect.forkScoped(
      Effect.repeat(refreshAll, Schedule.spaced(options.refreshInterval)).pipe(Effect.delay(options.refreshInterval))
    )

    // Every public operation is a span (`Discovery.<op>`).
    return Discovery.of({
      methodSet: Effect.fn("Discovery.methodSet")(methodSet),
      ensureMethod: Effect.fn("Discovery.ensureMethod")(ensureMethod),
      validate: Effect.fn("Discovery.validate")(validate),
      refreshAll: refreshAll.pipe(Effect.withSpan("Discovery.refreshAll"))
    })
  })

/** The service over explicit options. */
export const layer = (options: DiscoveryOptions) => Layer.scoped(Discovery, make(options))

/** The service from `DiscoveryConfig`, partitioned by credentials fingerprint. */
export const layerConfig = (overrides: Partial<DiscoveryOptions> = {}) =>
  Layer.scoped(
    Discovery,
    Effect.flatMap(DiscoveryConfig, (config) =>
      make({
        refreshInterval: config.refreshInterval,
        maxPartitions: config.maxPartitions,
        partitionOf: (credentials) => credentials.fingerprint,
        ...overrides
      }))
  )
