/**
 * The multi-level cache: memory → Redis → PostgreSQL → origin, behind one service.
 *
 * Read path: the memory tier first, then each configured remote tier (a remote failure is a
 * fall-through, never a failed request); a hit in a lower tier backfills the tiers above it;
 * after a miss the origin `lookup` runs once per key per process (single-flight) and its value
 * goes to memory at once and to the remote tiers through a bounded background writer.
 *
 * Freshness: an entry is fresh until `freshUntil`, then stale until `staleUntil` (`grace`).
 * A stale entry is answered at once and refreshed in the background, one refresh per key
 * (stale-while-revalidate); when the origin fails, times out (soft timeout) or its circuit is
 * open, a stale entry is answered instead of the error (fail-safe). Past `staleUntil` an entry
 * is gone. TTLs are jittered so entries written together do not expire together.
 *
 * Invalidation (`delete`, `invalidateTags`, `clear`) runs on every tier and is published on the
 * {@link CacheBus} so other instances drop their memory copies. A load that started before an
 * invalidation of its key or tags is answered but not stored, so an invalidation is never undone
 * by a slow load already in flight.
 *
 * @since 0.1.0
 */
import { Clock, Context, Data, Duration, Effect, type Exit, FiberSet, Layer, Option, Queue, type Scope } from "effect"
import * as SingleFlight from "../concurrency/SingleFlight.js"
import { type CacheItem, type CacheTier, type TierName } from "./CacheTier.js"
import type { CacheEntry } from "./Envelope.js"
import type { MemoryCacheTier } from "./MemoryTier.js"

/** How an answer was found; the `X-Cache` header value. */
export type CacheStatus = "HIT-MEMORY" | "HIT-REDIS" | "HIT-POSTGRES" | "MISS" | "STALE"

const hitStatus: Record<TierName, CacheStatus> = {
  memory: "HIT-MEMORY",
  redis: "HIT-REDIS",
  postgres: "HIT-POSTGRES"
}

/** How long entries of one namespace live, and how loads are bounded. */
export interface CachePolicy {
  /** Time an entry is fresh. */
  readonly fresh: Duration.DurationInput
  /** Time after `fresh` during which a stale entry may still be served. */
  readonly grace: Duration.DurationInput
  /** Relative jitter applied to `fresh` (0.1 = ±10 %). */
  readonly jitter: number
  /** Time a not-found answer is kept (0 = not cached). */
  readonly negative: Duration.DurationInput
  /** After this long, an origin load answers a stale entry if there is one and goes on in the background. */
  readonly softTimeout: Duration.DurationInput
  /** An origin load taking longer fails. */
  readonly hardTimeout: Duration.DurationInput
  /**
   * `true` (default): a stale entry is answered at once and refreshed in the background.
   * `false`: a stale entry triggers a load that is awaited up to `softTimeout`; the stale entry is
   * answered only when the load fails or takes longer (it then goes on in the background).
   */
  readonly staleWhileRevalidate?: boolean
  /** Remote tiers to use for this namespace (default: all configured). */
  readonly remote?: { readonly redis?: boolean; readonly postgres?: boolean }
}

/** What an origin load produces. */
export interface Loaded {
  readonly value: Uint8Array
  readonly contentType: string
  readonly tags: ReadonlyArray<string>
  /** A not-found answer: cached for the policy's `negative` time instead of `fresh`. */
  readonly notFound?: boolean
}

/** An answer: the entry and how it was found. */
export interface CacheHit {
  readonly entry: CacheEntry
  readonly status: CacheStatus
}

/** An origin load exceeded the policy's hard timeout. */
export class LoadTimeout extends Data.TaggedError("LoadTimeout")<{ readonly key: string; readonly after: Duration.Duration }> {}

/** Cross-instance invalidation: what one instance publishes and every other applies to its memory. */
export interface InvalidationMessage {
  readonly keys?: ReadonlyArray<string>
  readonly tags?: ReadonlyArray<string>
  readonly namespace?: string
}

/** The bus other instances hear invalidations on (Redis pub/sub, PostgreSQL NOTIFY, or none). */
export interface CacheBus {
  readonly publish: (message: InvalidationMessage) => Effect.Effect<void>
}

/** Telemetry hooks; each must be cheap and must not throw. */
export interface TieredCacheHooks {
  readonly onLookup?: (tier: TierName, outcome: "hit" | "miss" | "stale" | "error") => void
  readonly onOriginLoad?: () => void
  readonly onWriteFailed?: (tier: TierName) => void
}

/** Options of {@link make}. */
export interface TieredCacheOptions {
  readonly memory: MemoryCacheTier
  readonly redis?: CacheTier | undefined
  readonly postgres?: CacheTier | undefined
  readonly bus?: CacheBus | undefined
  /** Capacity of the remote write queue; writes beyond it are dropped (and counted). */
  readonly writeQueueCapacity: number
  /** Most items one remote write carries. */
  readonly writeBatchSize: number
  /** Most invalidated keys/tags remembered to reject loads that started before them. */
  readonly invalidationMemory: number
  readonly hooks?: TieredCacheHooks
}

/** The cache service. */
export interface TieredCache {
  /**
   * The entry for `key`, loading it with `lookup` on a miss. See the module documentation for
   * the read path, stale serving and failure behaviour. Fails only with `lookup`'s error (or
   * `LoadTimeout`) when no usable entry exists.
   */
  readonly getOrSet: <E>(
    key: string,
    lookup: Effect.Effect<Loaded, E>,
    policy: CachePolicy
  ) => Effect.Effect<CacheHit, E | LoadTimeout>
  /** {@link getOrSet} for many keys at once (remote tiers read in one batch per tier). */
  readonly getOrSetMany: <E>(
    requests: ReadonlyArray<{ readonly key: string; readonly lookup: Effect.Effect<Loaded, E> }>,
    policy: CachePolicy
  ) => Effect.Effect<ReadonlyArray<Exit.Exit<CacheHit, E | LoadTimeout>>>
  /** A usable entry, from the first tier that has one (backfilling the tiers above). */
  readonly get: (key: string) => Effect.Effect<Option.Option<CacheHit>>
  /** Usable entries for many keys (one batch per remote tier). */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Option.Option<CacheHit>>>
  /** Stores a value as if loaded from the origin now. */
  readonly set: (key: string, loaded: Loaded, policy: CachePolicy) => Effect.Effect<CacheEntry>
  /** Removes keys on every tier and every instance. */
  readonly delete: (keys: ReadonlyArray<string>) => Effect.Effect<void>
  /** Removes every entry carrying one of the tags, on every tier and every instance. */
  readonly invalidateTags: (tags: ReadonlyArray<string>) => Effect.Effect<void>
  /** Removes a namespace on every tier and every instance. */
  readonly clear: (namespace: string) => Effect.Effect<void>
  /** Applies an invalidation heard from another instance to this instance's memory tier. */
  readonly applyRemote: (message: InvalidationMessage) => Effect.Effect<void>
  /** Drops this instance's whole memory tier (after a bus outage, entries may have missed invalidations). */
  readonly dropMemory: (namespaces: ReadonlyArray<string>) => Effect.Effect<void>
  /** Remote writes waiting in the queue. */
  readonly pendingWrites: Effect.Effect<number>
  /** The memory tier (e.g. for a synchronous hit path). */
  readonly memory: MemoryCacheTier
}

/** Tag of the cache. */
export class TieredCacheService extends Context.Tag("accelerator/TieredCache")<TieredCacheService, TieredCache>() {}

interface PendingWrite {
  readonly item: CacheItem
  readonly remote: ReadonlyArray<CacheTier>
}

/** Creates the cache in the current scope (its writer and refresh fibers live there). */
export const make = (options: TieredCacheOptions): Effect.Effect<TieredCache, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { memory } = options
    const hooks = options.hooks ?? {}
    const remotes = [options.redis, options.postgres].filter((t): t is CacheTier => t !== undefined)
    const loads = yield* SingleFlight.make({ maxKeys: 100_000 })
    const background = yield* FiberSet.make()
    const writes = yield* Queue.dropping<PendingWrite>(options.writeQueueCapacity)

    // When each key / tag was last invalidated (epoch ms), bounded: oldest forgotten first.
    const invalidatedAt = new Map<string, number>()
    const remember = (id: string, at: number) => {
      invalidatedAt.delete(id)
      invalidatedAt.set(id, at)
      while (invalidatedAt.size > options.invalidationMemory) invalidatedAt.delete(invalidatedAt.keys().next().value!)
    }
    const invalidatedSince = (key: string, tags: ReadonlyArray<string>, since: number) => {
      if ((invalidatedAt.get(`k:${key}`) ?? -1) >= since) return true
      for (const tag of tags) if ((invalidatedAt.get(`t:${tag}`) ?? -1) >= since) return true
      return false
    }

    const remotesFor = (policy: CachePolicy) =>
      remotes.filter((tier) => (tier.name === "redis" ? policy.remote?.redis : policy.remote?.postgres) !== false)

    // ---- writer -------------------------------------------------------------------------------
    const writeBatch = (batch: ReadonlyArray<PendingWrite>) =>
      Effect.forEach(remotes, (tier) => {
        const items = batch.filter((w) => w.remote.includes(tier)).map((w) => w.item)
        if (items.length === 0) return Effect.void
        return tier.setMany(items).pipe(
          Effect.catchAll((error) =>
            Effect.sync(() => hooks.onWriteFailed?.(tier.name)).pipe(
              Effect.zipRight(
                Effect.logWarning("cache: remote write failed; the entry stays in the tiers above").pipe(
                  Effect.annotateLogs({ tier: tier.name, entries: items.length, error: error.message })
                )
              )
            )
          )
        )
      }, { concurrency: "unbounded", discard: true }) // one fiber per remote tier: at most two

    yield* Effect.forkScoped(
      Effect.forever(Effect.flatMap(Queue.takeBetween(writes, 1, options.writeBatchSize), (chunk) => writeBatch([...chunk])))
    )
    // Let writes already queued reach the remote tiers at shutdown (bounded by the tiers' timeouts).
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Queue.takeAll(writes), (chunk) => (chunk.length === 0 ? Effect.void : writeBatch([...chunk])))
    )

    const enqueue = (item: CacheItem, remote: ReadonlyArray<CacheTier>) =>
      remote.length === 0
        ? Effect.void
        : Effect.flatMap(Queue.offer(writes, { item, remote }), (accepted) =>
          accepted
            ? Effect.void
            : Effect.sync(() => remote.forEach((tier) => hooks.onWriteFailed?.(tier.name))).pipe(
              Effect.zipRight(Effect.logWarning("cache: remote write queue full; write dropped").pipe(
                Effect.annotateLogs({ capacity: options.writeQueueCapacity })
              ))
            ))

    // ---- reads --------------------------------------------------------------------------------
    const usable = (entry: Option.Option<CacheEntry>, now: number): Option.Option<CacheEntry> =>
      Option.filter(entry, (e) => now < e.staleUntil)

    /** Reads `keys` tier by tier; a tier is asked only for the keys the tiers above missed. */
    const readTiers = (keys: ReadonlyArray<string>, remote: ReadonlyArray<CacheTier>) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const found: Array<Option.Option<CacheHit>> = keys.map(() => Option.none())
        const fromMemory = yield* Effect.orElseSucceed(memory.getMany(keys), () => keys.map(() => Option.none<CacheEntry>()))
        let missing: Array<number> = []
        keys.forEach((_, i) => {
          const entry = usable(fromMemory[i] ?? Option.none(), now)
          if (Option.isSome(entry)) {
            found[i] = Option.some({ entry: entry.value, status: "HIT-MEMORY" })
            hooks.onLookup?.("memory", now < entry.value.freshUntil ? "hit" : "stale")
          } else {
            missing.push(i)
            hooks.onLookup?.("memory", "miss")
          }
        })
        const above: Array<CacheTier> = []
        for (const tier of remote) {
          if (missing.length === 0) break
          const result = yield* Effect.either(tier.getMany(missing.map((i) => keys[i]!)))
          if (result._tag === "Left") {
            hooks.onLookup?.(tier.name, "error")
            above.push(tier)
            continue
          }
          const stillMissing: Array<number> = []
          const backfill: Array<CacheItem> = []
          missing.forEach((index, j) => {
            const entry = usable(result.right[j] ?? Option.none(), now)
            if (Option.isSome(entry)) {
              found[index] = Option.some({ entry: entry.value, status: hitStatus[tier.name] })
              hooks.onLookup?.(tier.name, now < entry.value.freshUntil ? "hit" : "stale")
              backfill.push({ key: keys[index]!, entry: entry.value })
            } else {
              stillMissing.push(index)
              hooks.onLookup?.(tier.name, "miss")
            }
          })
          if (backfill.length > 0) {
            yield* Effect.ignore(memory.setMany(backfill))
            yield* Effect.forEach(backfill, (item) => enqueue(item, above), { discard: true })
          }
          above.push(tier)
          missing = stillMissing
        }
        return found
      })

    const jittered = (policy: CachePolicy, base: Duration.DurationInput) => {
      const ms = Duration.toMillis(base)
      const spread = Math.max(0, Math.min(policy.jitter, 1))
      return Math.round(ms * (1 - spread + Math.random() * 2 * spread))
    }

    const entryFor = (loaded: Loaded, policy: CachePolicy, now: number): CacheEntry => {
      const fresh = loaded.notFound === true ? Duration.toMillis(policy.negative) : jittered(policy, policy.fresh)
      const freshUntil = now + fresh
      return {
        value: loaded.value,
        contentType: loaded.contentType,
        createdAt: now,
        freshUntil,
        staleUntil: loaded.notFound === true ? freshUntil : freshUntil + Duration.toMillis(policy.grace),
        tags: loaded.tags
      }
    }

    /** Stores a loaded value unless an invalidation overtook the load. */
    const store = (key: string, loaded: Loaded, policy: CachePolicy, startedAt: number) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const entry = entryFor(loaded, policy, now)
        if (entry.staleUntil <= now || invalidatedSince(key, loaded.tags, startedAt)) return entry
        yield* Effect.ignore(memory.setMany([{ key, entry }]))
        yield* enqueue({ key, entry }, remotesFor(policy))
        return entry
      })

    /** One origin load of `key`, shared by concurrent callers, stored when it succeeds. */
    const load = <E>(key: string, lookup: Effect.Effect<Loaded, E>, policy: CachePolicy) =>
      loads.run(
        key,
        Effect.gen(function*() {
          const startedAt = yield* Clock.currentTimeMillis
          hooks.onOriginLoad?.()
          const hard = Duration.decode(policy.hardTimeout)
          const loaded = yield* lookup.pipe(
            Effect.timeoutFail({ duration: hard, onTimeout: () => new LoadTimeout({ key, after: hard }) })
          )
          return yield* store(key, loaded, policy, startedAt)
        })
      )

    const refreshInBackground = <E>(key: string, lookup: Effect.Effect<Loaded, E>, policy: CachePolicy) =>
      FiberSet.run(
        background,
        Effect.catchAllCause(load(key, lookup, policy), (cause) =>
          Effect.logDebug("cache: background refresh failed; the stale entry is kept").pipe(
            Effect.annotateLogs({ namespace: key.slice(0, key.indexOf(":")), cause: String(cause).slice(0, 200) })
          ))
      )

    const resolve = <E>(
      key: string,
      found: Option.Option<CacheHit>,
      lookup: Effect.Effect<Loaded, E>,
      policy: CachePolicy
    ): Effect.Effect<CacheHit, E | LoadTimeout> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (Option.isSome(found)) {
          if (now < found.value.entry.freshUntil) return found.value
          const stale: CacheHit = { entry: found.value.entry, status: "STALE" }
          if (policy.staleWhileRevalidate !== false) {
            // Stale within grace: answer it now, refresh once in the background.
            yield* refreshInBackground(key, lookup, policy)
            return stale
          }
          // Fail-safe with a soft timeout: wait for the load a little; on failure or when it is
          // slow, answer the stale entry (the shared load goes on and stores its result).
          const fresh = yield* load(key, lookup, policy).pipe(Effect.timeoutOption(policy.softTimeout), Effect.option)
          return Option.isSome(fresh) && Option.isSome(fresh.value)
            ? { entry: fresh.value.value, status: "MISS" as const }
            : stale
        }
        const entry = yield* load(key, lookup, policy)
        return { entry, status: "MISS" as const }
      })

    const getOrSet = <E>(key: string, lookup: Effect.Effect<Loaded, E>, policy: CachePolicy) =>
      Effect.flatMap(readTiers([key], remotesFor(policy)), ([found]) => resolve(key, found ?? Option.none(), lookup, policy))

    const getOrSetMany = <E>(
      requests: ReadonlyArray<{ readonly key: string; readonly lookup: Effect.Effect<Loaded, E> }>,
      policy: CachePolicy
    ) =>
      Effect.flatMap(readTiers(requests.map((r) => r.key), remotesFor(policy)), (found) =>
        Effect.forEach(requests, (request, i) => Effect.exit(resolve(request.key, found[i] ?? Option.none(), request.lookup, policy)), {
          concurrency: "unbounded" // one fiber per requested key; callers bound the batch size
        }))

    const set = (key: string, loaded: Loaded, policy: CachePolicy) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => store(key, loaded, policy, now))

    // ---- invalidation -------------------------------------------------------------------------
    const everywhere = (op: string, run: (tier: CacheTier) => Effect.Effect<void, unknown>) =>
      Effect.forEach([memory as CacheTier, ...remotes], (tier) =>
        run(tier).pipe(
          Effect.catchAll((error) =>
            Effect.logWarning(`cache: ${op} failed on a tier`).pipe(
              Effect.annotateLogs({ tier: tier.name, error: String((error as Error)?.message ?? error) })
            )
          )
        ), { concurrency: "unbounded", discard: true }) // one fiber per tier: at most three

    const publish = (message: InvalidationMessage) => options.bus === undefined ? Effect.void : options.bus.publish(message)

    const mark = (ids: ReadonlyArray<string>) => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => ids.forEach((id) => remember(id, now))))

    const deleteKeys = (keys: ReadonlyArray<string>) =>
      keys.length === 0 ? Effect.void : Effect.all([
        mark(keys.map((k) => `k:${k}`)),
        everywhere("delete", (tier) => tier.delete(keys)),
        publish({ keys })
      ], { discard: true })

    const invalidateTags = (tags: ReadonlyArray<string>) =>
      tags.length === 0 ? Effect.void : Effect.all([
        mark(tags.map((t) => `t:${t}`)),
        everywhere("invalidateTags", (tier) => tier.invalidateTags(tags)),
        publish({ tags })
      ], { discard: true })

    const clear = (namespace: string) =>
      Effect.all([everywhere("clear", (tier) => tier.clear(namespace)), publish({ namespace })], { discard: true })

    const applyRemote = (message: InvalidationMessage) =>
      Effect.all([
        message.keys === undefined ? Effect.void : Effect.zipRight(mark(message.keys.map((k) => `k:${k}`)), Effect.ignore(memory.delete(message.keys))),
        message.tags === undefined ? Effect.void : Effect.zipRight(mark(message.tags.map((t) => `t:${t}`)), Effect.ignore(memory.invalidateTags(message.tags))),
        message.namespace === undefined ? Effect.void : Effect.ignore(memory.clear(message.namespace))
      ], { discard: true })

    const dropMemory = (namespaces: ReadonlyArray<string>) =>
      Effect.forEach(namespaces, (ns) => Effect.ignore(memory.clear(ns)), { discard: true })

    return {
      getOrSet,
      getOrSetMany,
      get: (key) => Effect.map(readTiers([key], remotes), ([found]) => found ?? Option.none()),
      getMany: (keys) => readTiers(keys, remotes),
      set,
      delete: deleteKeys,
      invalidateTags,
      clear,
      applyRemote,
      dropMemory,
      pendingWrites: Queue.size(writes),
      memory
    } satisfies TieredCache
  })

/** The cache as a layer over explicit options. */
export const layer = (options: TieredCacheOptions): Layer.Layer<TieredCacheService> =>
  Layer.scoped(TieredCacheService, make(options))
