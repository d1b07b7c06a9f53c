/**
 * The site's JSON-RPC methods as each kind of caller sees them. Drupal lists only the methods
 * the calling user may execute, so the method set is kept per partition (callers who see the
 * same set), fingerprinted (its version), refreshed in the background on a schedule, and
 * compared on every refresh: added, removed and changed methods are logged and counted.
 *
 * Bounded: at most `maxPartitions` partitions are kept (least recently used dropped first).
 *
 * **Credentials.** A partition is an access partition (callers who see the same things), never a
 * token, so an unknown token (refused when its partition is looked up) never gets one. To refresh
 * a partition in the background the service needs a caller's credentials: it keeps those of the
 * partition's latest caller for `credentialTtl` (the access scope's TTL) after that call and
 * forgets them afterwards. Only partitions with credentials still held (used within that time)
 * are refreshed; a partition used again after its credentials were forgotten, whose set is older
 * than the refresh interval, is fetched again with the new caller's credentials.
 *
 * @since 0.1.0
 */
import { Clock, Context, Data, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { DiscoveryConfig } from "../Config.js"
import * as SingleFlight from "../concurrency/SingleFlight.js"
import type { Credentials } from "../drupal/Credentials.js"
import type { DrupalError } from "../drupal/DrupalError.js"
import { DrupalRpc } from "../drupal/DrupalRpc.js"
import { ArgumentValidator, type InvalidArguments } from "./ArgumentValidator.js"
import { decodeMethodList, type MethodInfo } from "./DiscoveryDocument.js"
import { diff, fingerprint, isEmptyDiff, type MethodSetDiff } from "./Fingerprint.js"
import { type McpTool, toTools } from "./McpTools.js"
import * as Traced from "../telemetry/Traced.js"

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
  /** Epoch ms of the fetch (the fiber's `Clock`). */
  readonly fetchedAt: number
}

/** Options of {@link make}. */
export interface DiscoveryOptions {
  readonly refreshInterval: Duration.DurationInput
  readonly maxPartitions: number
  /**
   * Which partition a caller belongs to (callers of one partition see the same methods); fails
   * for a caller Drupal refuses (e.g. an unknown token), who then gets no partition.
   */
  readonly partitionOf: (credentials: Credentials) => string | Effect.Effect<string, DrupalError>
  /** Callers whose method sets are fetched in the background at start (failures are logged, not fatal). */
  readonly prefetch?: ReadonlyArray<Credentials>
  /** How long after a caller's last call its credentials are kept for refreshes (default: the refresh interval). */
  readonly credentialTtl?: Duration.DurationInput
  /** Told the method ids of every set fetched, with its partition (e.g. to register metric labels). */
  readonly onMethods?: (ids: ReadonlyArray<string>, partition: string) => void
  /** Run on every change found by a refresh (e.g. to invalidate cached tool lists). */
  readonly onChange?: (partition: string, change: MethodSetDiff) => Effect.Effect<void>
}

/** The discovery service. */
export interface Discovery {
  /** The caller's method set, fetched on first use and kept fresh in the background. */
  readonly methodSet: (credentials: Credentials) => Effect.Effect<MethodSet, DrupalError>
  /**
   * The partition's set when it is held and {@link Discovery.methodSet} would answer it without a
   * fetch, else `undefined`. Synchronous, no I/O; leaves recency and held credentials as they are
   * (for the synchronous MCP fast path, which falls back to `methodSet` when it gets nothing).
   */
  readonly peek: (partition: string) => MethodSet | undefined
  /** The method, or `UnknownMethod` when the caller's set lacks it. */
  readonly ensureMethod: (credentials: Credentials, method: string) => Effect.Effect<MethodInfo, DrupalError | UnknownMethod>
  /** Checks `args` against the method's translated input schema (after `ensureMethod`). */
  readonly validate: (
    credentials: Credentials,
    method: string,
    args: unknown
  ) => Effect.Effect<MethodInfo, DrupalError | UnknownMethod | InvalidArguments>
  /**
   * Refreshes now every partition whose latest caller's credentials are still held (what the
   * background loop does on its schedule), after forgetting the credentials held too long.
   */
  readonly refreshAll: Effect.Effect<void>
}

/** Tag of the discovery service. */
export const Discovery = Context.GenericTag<Discovery>("accelerator/Discovery")

const toMethodSet = (methods: ReadonlyArray<MethodInfo>, fetchedAt: number): MethodSet => ({
  methods,
  byId: new Map(methods.map((m) => [m.id, m])),
  fingerprint: fingerprint(methods),
  tools: toTools(methods),
  fetchedAt
})

/** Creates the service; its refresh loop runs in the current scope. */
export const make = (options: DiscoveryOptions) =>
  Effect.gen(function*() {
    const rpc = yield* DrupalRpc
    const validator = yield* ArgumentValidator
    const refreshMs = Duration.toMillis(options.refreshInterval)
    const credentialMs = Duration.toMillis(options.credentialTtl ?? options.refreshInterval)
    /** A partition's set, and the credentials of its latest caller until `until` (epoch ms). */
    interface Known {
      readonly set: MethodSet
      credentials: Credentials | undefined
      until: number
    }
    // Insertion order is recency order: a hit re-inserts, eviction takes the first key.
    const partitions = new Map<string, Known>()
    const singleFlight = yield* SingleFlight.make({ maxKeys: options.maxPartitions })

    const fetch = (partition: string, credentials: Credentials) =>
      Effect.flatMap(rpc.discovery(credentials), decodeMethodList).pipe(
        Effect.flatMap((methods) => Effect.map(Clock.currentTimeMillis, (now) => toMethodSet(methods, now))),
        Effect.tap((set) => Effect.sync(() => options.onMethods?.(set.methods.map((m) => m.id), partition)))
      )

    const store = (partition: string, known: Known) => {
      partitions.delete(partition)
      partitions.set(partition, known)
      while (partitions.size > options.maxPartitions) partitions.delete(partitions.keys().next().value!)
    }

    const load = (partition: string, credentials: Credentials) =>
      singleFlight.run(
        partition,
        Effect.flatMap(fetch(partition, credentials), (set) =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            store(partition, { set, credentials, until: now + credentialMs })
            return set
          }))
      )

    const partitionOf = (credentials: Credentials): Effect.Effect<string, DrupalError> => {
      const partition = options.partitionOf(credentials)
      return typeof partition === "string" ? Effect.succeed(partition) : partition
    }

    const methodSet = (credentials: Credentials) =>
      Effect.gen(function*() {
        const partition = yield* partitionOf(credentials)
        const now = yield* Clock.currentTimeMillis
        const known = partitions.get(partition)
        // Unknown, or not refreshed since its credentials were forgotten: fetch as this caller.
        if (known === undefined || (known.credentials === undefined && now - known.set.fetchedAt > refreshMs)) {
          return yield* load(partition, credentials)
        }
        known.credentials = credentials
        known.until = now + credentialMs
        store(partition, known)
        return known.set
      })

    const peek = (partition: string): MethodSet | undefined => {
      const known = partitions.get(partition)
      if (known === undefined || (known.credentials === undefined && Date.now() - known.set.fetchedAt > refreshMs)) return undefined
      return known.set
    }

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
      fetch(partition, credentials).pipe(
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
          })
        ),
        Effect.tap((next) =>
          Effect.sync(() => {
            const current = partitions.get(partition)
            // Replaced in place (recency unchanged), keeping the credentials of the latest caller.
            if (current !== undefined) partitions.set(partition, { ...current, set: next })
          })
        ),
        Effect.catchAll((error) =>
          Effect.logWarning("discovery: refresh failed; keeping the previous method set").pipe(
            Effect.annotateLogs({ partition: partition.slice(0, 12), error: error.message })
          )
        )
      )

    /** Forgets expired credentials, then refreshes the partitions whose callers' credentials are still held. */
    const refreshAll = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const due: Array<readonly [string, Credentials, MethodSet]> = []
      for (const [partition, known] of partitions) {
        if (known.credentials !== undefined && known.until <= now) known.credentials = undefined
        if (known.credentials !== undefined) due.push([partition, known.credentials, known.set])
      }
      yield* Effect.forEach(due, ([partition, credentials, set]) => refreshOne(partition, credentials, set), {
        concurrency: 4,
        discard: true
      })
    })

    yield* Effect.forkScoped(
      Effect.repeat(refreshAll, Schedule.spaced(options.refreshInterval)).pipe(Effect.delay(options.refreshInterval))
    )
    if (options.prefetch !== undefined && options.prefetch.length > 0) {
      yield* Effect.forkScoped(
        Effect.forEach(options.prefetch, (credentials) =>
          methodSet(credentials).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning("discovery: prefetch failed").pipe(Effect.annotateLogs({ error: error.message }))
            )
          ), { discard: true })
      )
    }

    // Every public operation is a span (`Discovery.<op>`).
    return Discovery.of({
      methodSet: Traced.fn("Discovery.methodSet")(methodSet),
      peek,
      ensureMethod: Traced.fn("Discovery.ensureMethod")(ensureMethod),
      validate: Traced.fn("Discovery.validate")(validate),
      refreshAll: refreshAll.pipe(Traced.withSpan("Discovery.refreshAll"))
    })
  })

/** The service over explicit options. */
export const layer = (options: DiscoveryOptions) => Layer.scoped(Discovery, make(options))

/** The service from `DiscoveryConfig`; without a `partitionOf` override, partitioned by credentials fingerprint. */
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
