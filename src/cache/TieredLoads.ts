/**
 * The load path of the tiered cache: what happens once the read path has answered (an entry
 * or nothing): origin loads, single-flight, the cross-instance lease, stale serving and
 * refresh, and storing a loaded value.
 *
 * Single-flight: after a miss the origin `lookup` runs once per key per process; a caller that
 * joins a load an invalidation overtook before it joined runs its own (see
 * `InvalidationGuard.ts`). Before calling the origin, a load looks at memory again, so a caller
 * that missed just before another caller's load stored its value does not call the origin a
 * second time. With a lease (Redis), one instance loads a cold key and the others wait briefly
 * (`lease.wait`) for its value in the shared tiers, or for its lease to go; the holder answers
 * its caller at once and gives the lease back once the value is written to the shared tiers
 * (with the other leases written in the same turn, in one round trip). A loaded value goes
 * to memory at once and to the remote tiers through the writer (never awaited by the reader),
 * unless an invalidation overtook the load: it is then answered to its caller but not stored.
 *
 * Freshness: an entry is fresh until `freshUntil`, then stale until `staleUntil` (`grace`).
 * A stale entry is answered at once and refreshed in the background, one refresh per key at a
 * time (stale-while-revalidate); the refresh first looks for a fresh copy in the remote tiers
 * (another instance may have refreshed it; with the lease, in Redis once the lease is taken),
 * then asks the origin. With
 * `staleWhileRevalidate: false` the load is awaited up to `softTimeout`. When the origin fails,
 * times out (soft timeout) or its circuit is open, a stale entry is answered instead of the
 * error (fail-safe). When a load fails transiently and no tier had answered, the remote tiers
 * are asked once more past their breakers (`TieredReads.recheck`): a copy a busy tier held is
 * answered instead of the error. Past `staleUntil` an entry is gone. `fresh` is jittered (±`jitter`) so
 * entries written together do not expire together. A not-found answer (`notFound`) is fresh for
 * `negative`, a denial (`denied`) for `denied` (with 0 it is not cached); either may then be
 * answered stale for `negativeGrace` (default 0) while it is refreshed. When a negative answer is
 * what the refresh of a stale entry brings (a refusal) and the entry held something else, the
 * entry is first deleted on every tier and every instance (as for a refused load, `forget`),
 * then the negative answer is stored in its place; a negative answer refreshed into the same
 * answer is simply renewed.
 *
 * Failure: a load fails only with `lookup`'s error, or `LoadTimeout` past `hardTimeout`, and
 * only when no usable entry exists; a failed background refresh is logged and keeps the stale
 * entry.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Deferred, Duration, Effect, Exit, type Fiber, FiberId, FiberSet, Option } from "effect"
import * as Deadline from "../concurrency/Deadline.js"
import type * as SingleFlight from "../concurrency/SingleFlight.js"
import { type CacheItem, type CacheTier, namespaceOf } from "./CacheTier.js"
import type { CacheEntry } from "./Envelope.js"
import type { CacheLease } from "./CacheLease.js"
import type { InvalidationGuard } from "./InvalidationGuard.js"
import type { MemoryTier } from "./MemoryTier.js"
import type { RemoteWriter } from "./RemoteWriter.js"
import type { TieredReads } from "./TieredReads.js"
import {
  type CacheHit,
  type CachePolicy,
  type CacheStatus,
  type Loaded,
  LoadTimeout,
  remotesFor,
  type TieredCacheHooks
} from "./TieredModel.js"

/** Most leases one release round trip gives back. */
const RELEASE_BATCH = 256

const jittered = (policy: CachePolicy, base: Duration.DurationInput) => {
  const ms = Duration.toMillis(base)
  const spread = Math.max(0, Math.min(policy.jitter, 1))
  return Math.round(ms * (1 - spread + Math.random() * 2 * spread))
}

/** The entry with its fresh and stale times cut to `now + cap` (unchanged without a cap). */
const capped = (entry: CacheEntry, cap: Duration.DurationInput | undefined, now: number): CacheEntry => {
  if (cap === undefined) return entry
  const until = now + Duration.toMillis(cap)
  return until >= entry.staleUntil
    ? entry
    : { ...entry, freshUntil: Math.min(entry.freshUntil, until), staleUntil: until }
}

/** Whether a loaded value is a negative answer (not-found or denial): short-lived, `negativeGrace`. */
const isNegative = (loaded: Loaded): boolean => loaded.notFound === true || loaded.denied === true

/** Whether `loaded` is the answer `previous` already held (same type and bytes): nothing changed. */
const sameAnswer = (previous: CacheEntry | undefined, loaded: Loaded): boolean => {
  if (previous === undefined || previous.contentType !== loaded.contentType) return false
  const a = previous.value
  const b = loaded.value
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

const entryFor = (loaded: Loaded, policy: CachePolicy, now: number): CacheEntry => {
  const fresh = loaded.notFound === true
    ? Duration.toMillis(policy.negative)
    : loaded.denied === true
    ? Duration.toMillis(policy.denied ?? 0)
    : jittered(policy, policy.fresh)
  const freshUntil = now + fresh
  return {
    value: loaded.value,
    contentType: loaded.contentType,
    createdAt: now,
    freshUntil,
    // A negative answer kept for 0 is not kept at all: no grace either.
    staleUntil: freshUntil + (isNegative(loaded) ? (fresh > 0 ? Duration.toMillis(policy.negativeGrace ?? 0) : 0) : Duration.toMillis(policy.grace)),
    tags: loaded.tags,
    ...(loaded.upstreamValidator === undefined ? {} : { upstreamValidator: loaded.upstreamValidator })
  }
}

/** Options of {@link make}. */
export interface TieredLoadsOptions {
  readonly memory: MemoryTier
  /** Every remote tier, in order. */
  readonly remotes: ReadonlyArray<CacheTier>
  readonly guard: InvalidationGuard
  readonly writer: Pick<RemoteWriter, "enqueue" | "whenWritten">
  /** Stores items in the memory tier (and remembers their namespaces). */
  readonly writeMemory: (items: ReadonlyArray<CacheItem>) => Effect.Effect<void>
  readonly readRemote: TieredReads["readRemote"]
  /** The fail-safe read, made when a load fails with nothing to answer instead. */
  readonly recheck: TieredReads["recheck"]
  readonly hooks: TieredCacheHooks
  readonly lease?: CacheLease | undefined
  /** Shares the origin load of a key among concurrent callers (owned by the cache's scope). */
  readonly loads: SingleFlight.SingleFlight
  /** Where background refreshes run (owned by the cache's scope). */
  readonly background: FiberSet.FiberSet
  /** Runs an effect in `background` from outside a fiber (a writer's callback); its fiber. */
  readonly runInBackground: (effect: Effect.Effect<void>) => Fiber.RuntimeFiber<void>
  /** Deletes `key` on every tier and instance (the origin refused it; see `CachePolicy.isRefusal`). */
  readonly forget: (key: string) => Effect.Effect<void>
}

/** The load path. */
export interface TieredLoads {
  /**
   * Stores a loaded value unless an invalidation overtook the load (guard epoch `since`), and
   * returns its entry. A value that is not to be kept (negative 0) removes the entry it
   * replaces (`replacing`), else touches nothing.
   */
  readonly store: (key: string, loaded: Loaded, policy: CachePolicy, since: number, replacing: boolean) => Effect.Effect<CacheEntry>
  /**
   * The answer for `key` given what the read path `found`: a fresh entry as is, a stale one
   * served and refreshed per the policy, nothing loaded (single-flight).
   */
  readonly resolve: <E>(
    key: string,
    found: Option.Option<CacheHit>,
    lookup: Effect.Effect<Loaded, E>,
    policy: CachePolicy
  ) => Effect.Effect<CacheHit, E | LoadTimeout>
  /**
   * After a load with nothing to answer instead failed with `error`: a refusal under `policy`
   * fails with it; for a transient failure the remote tiers are asked once more past their
   * breakers (`TieredReads.recheck`), and a copy within grace is the answer, else `error` is.
   */
  readonly failSafe: <E>(key: string, policy: CachePolicy, error: E) => Effect.Effect<CacheHit, E>
  /**
   * Waits until the leases of the loads whose values were written so far are given back: after
   * the writer's `flush`, everything a load left to do in the background is done.
   */
  readonly settled: Effect.Effect<void>
}

/** Creates the load path. */
export const make = (options: TieredLoadsOptions): TieredLoads => {
  const { background, guard, hooks, loads, memory, readRemote, recheck, remotes, writeMemory } = options
  const { overtaken, sharedRun } = guard
  const { enqueue, whenWritten } = options.writer

  // Leases whose values have reached the shared tiers, given back together: one round trip per
  // turn of the event loop (at most RELEASE_BATCH keys each), from one background fiber.
  let toRelease: Array<string> = []
  // Release round trips under way, each done when its deferred is (for `settled`).
  const releasing = new Set<Deferred.Deferred<void>>()
  const releaseAll = (lease: CacheLease) => {
    const keys = toRelease
    toRelease = []
    for (let i = 0; i < keys.length; i += RELEASE_BATCH) {
      const done = Deferred.unsafeMake<void>(FiberId.none)
      releasing.add(done)
      // An observer, not `ensuring`: it also fires for a fiber interrupted before it ran.
      options.runInBackground(lease.releaseMany(keys.slice(i, i + RELEASE_BATCH))).addObserver(() => {
        releasing.delete(done)
        Deferred.unsafeDone(done, Exit.void)
      })
    }
  }
  /**
   * Gives the lease of `key` back once its value is written to the shared tiers (the others poll
   * them while it is held, and load themselves once it goes). The caller does not wait: it has
   * its answer from memory already.
   */
  const releaseWhenWritten = (lease: CacheLease, key: string) =>
    whenWritten(() => {
      toRelease.push(key)
      if (toRelease.length === 1) setImmediate(() => releaseAll(lease))
    })
  const settled: Effect.Effect<void> = Effect.suspend(() => {
    if (toRelease.length > 0 && options.lease !== undefined) releaseAll(options.lease)
    const waits = [...releasing].map((done) => Deferred.await(done))
    return waits.length === 0 ? Effect.void : Effect.all(waits, { discard: true })
  })

  /**
   * Stores a loaded value unless an invalidation overtook the load (`since`). A value that is
   * not to be kept (negative 0) removes the entry it replaces (`replacing`), else touches nothing.
   */
  const store = (key: string, loaded: Loaded, policy: CachePolicy, since: number, replacing: boolean) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const entry = entryFor(loaded, policy, now)
      if (overtaken(key, loaded.tags, since)) return entry
      if (entry.staleUntil <= now && !replacing) return entry
      yield* writeMemory([{ key, entry: capped(entry, policy.tierTtl?.memory, now) }])
      const remote = remotesFor(remotes, policy)
      if (policy.tierTtl?.redis === undefined && policy.tierTtl?.postgres === undefined) {
        yield* enqueue([{ key, entry }], remote, since)
      } else {
        for (const tier of remote) {
          const cap = tier.name === "redis" ? policy.tierTtl?.redis : policy.tierTtl?.postgres
          yield* enqueue([{ key, entry: capped(entry, cap, now) }], [tier], since)
        }
      }
      return entry
    })

  /** One origin load of `key` (unless memory, or for a refresh a remote tier, now has it fresh). */
  const loadOnce = <E>(key: string, lookup: Effect.Effect<Loaded, E>, policy: CachePolicy, replacing: boolean, previous?: CacheEntry) =>
    Effect.gen(function*() {
      const since = guard.epoch()
      const now = yield* Clock.currentTimeMillis
      const current = yield* Effect.orElseSucceed(memory.get(key), () => Option.none<CacheEntry>())
      if (Option.isSome(current) && now < current.value.freshUntil) {
        return { value: { entry: current.value, status: "HIT-MEMORY" as CacheStatus }, since }
      }
      const remote = remotesFor(remotes, policy)
      const lease = options.lease
      const useLease = lease !== undefined && remote.some((tier) => tier.name === "redis")
      // A refresh looks for a copy another instance refreshed first. With a lease that look
      // comes once the lease is ours (below): any holder before us stored its value before it
      // let go, so one read after the acquire sees it, and one before it would be a second read.
      if (replacing && remote.length > 0 && !useLease) {
        const [found] = yield* readRemote([key], remote, since)
        if (found !== undefined && Option.isSome(found) && now < found.value.entry.freshUntil) return { value: found.value, since }
      }
      const redisOnly = remote.filter((tier) => tier.name === "redis")
      /**
       * Takes the lease and, when it is ours, looks at Redis once more: the holder before us (if
       * any) may have stored its value and let the lease go since our last read of the shared
       * tiers (this get's, or a poll's). With `lease.inRead`, both in the one round trip of the
       * Redis tier's read; should that read take no lease (Redis failed), as two steps. The look
       * reads Redis only: a holder writes Redis before it lets the lease go (`releaseWhenWritten`), and
       * a PostgreSQL read there cost a miss about a quarter of its cache CPU. A value too large
       * for Redis is then loaded twice in that narrow race, never answered wrong.
       */
      const takeLease = (l: CacheLease) =>
        Effect.gen(function*() {
          if (l.inRead !== undefined) {
            let ours: boolean | undefined
            const [found] = yield* readRemote([key], redisOnly, since, l.inRead(key, (taken) => (ours = taken)))
            if (ours !== undefined) return { ours, found }
          }
          if (!(yield* l.acquire(key))) return { ours: false, found: undefined }
          const [found] = yield* readRemote([key], redisOnly, since)
          return { ours: true, found }
        })
      /** The lease is ours, with a fresh copy in Redis after all: it is the answer, and the lease goes back. */
      const foundAfterLease = (l: CacheLease, found: Option.Option<CacheHit> | undefined, at: number) =>
        found !== undefined && Option.isSome(found) && at < found.value.entry.freshUntil
          ? Effect.as(l.release(key), { value: found.value, since })
          : undefined
      let leased = false
      if (useLease) {
        const taken = yield* takeLease(lease)
        if (taken.ours) {
          const answer = foundAfterLease(lease, taken.found, yield* Clock.currentTimeMillis)
          if (answer !== undefined) return yield* answer
          leased = true
        }
      }
      if (useLease && !leased) {
        // Another instance is loading this key: wait briefly for its value in the shared tiers,
        // or for its lease to go (its load failed), whichever comes first.
        // Polled every 20 ms at first, backing off to 100 ms: a long load is not worth more reads.
        const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(lease.wait)
        let pause = 20
        while ((yield* Clock.currentTimeMillis) < deadline) {
          yield* Effect.sleep(Duration.millis(pause))
          pause = Math.min(100, Math.round(pause * 1.5))
          const [found] = yield* readRemote([key], remote, since)
          const at = yield* Clock.currentTimeMillis
          if (found !== undefined && Option.isSome(found) && at < found.value.entry.freshUntil) return { value: found.value, since }
          const taken = yield* takeLease(lease)
          if (taken.ours) {
            const answer = foundAfterLease(lease, taken.found, yield* Clock.currentTimeMillis)
            if (answer !== undefined) return yield* answer
            leased = true
            break
          }
        }
      }
      hooks.onOriginLoad?.()
      const hard = Duration.decode(policy.hardTimeout)
      // A `Deadline` (one fiber, a plain timer) rather than `Effect.timeoutFail` (two fibers and
      // a race): it bounds every origin load. It runs on the real clock, not on a `TestClock`.
      const loaded = yield* Deadline.timeoutFail(lookup, { duration: hard, onTimeout: () => new LoadTimeout({ key, after: hard }) }).pipe(
        Effect.onExit((exit) =>
          Exit.isInterrupted(exit) ? Effect.void : Effect.sync(() => hooks.onOriginResult?.(Exit.isSuccess(exit)))
        ),
        // A failed load gives the lease back at once, so the others load instead of waiting.
        Effect.tapErrorCause(() => (leased && lease !== undefined ? lease.release(key) : Effect.void))
      )
      let storeSince = since
      if (replacing && isNegative(loaded) && !sameAnswer(previous, loaded) && !overtaken(key, loaded.tags, since)) {
        // A refusal replaces a stale copy: every instance drops its copy first (the refusal
        // rule), then the negative answer is stored under an epoch after that deletion.
        yield* options.forget(key)
        storeSince = guard.epoch()
      }
      const entry = yield* store(key, loaded, policy, storeSince, replacing)
      if (leased && lease !== undefined) releaseWhenWritten(lease, key)
      // Joiners judge the answer by the epoch it was stored under (after this load's own forget).
      return { value: { entry, status: "MISS" as CacheStatus }, since: storeSince }
    })

  /** The shared load of `key` (single-flight; see {@link sharedRun} for joiners it overtook). */
  const load = <E>(key: string, lookup: Effect.Effect<Loaded, E>, policy: CachePolicy, replacing: boolean, previous?: CacheEntry) =>
    sharedRun(loads, key, loadOnce(key, lookup, policy, replacing, previous), (hit: CacheHit, since) => overtaken(key, hit.entry.tags, since))

  /** Whether `cause` is the origin's definite refusal under `policy`. */
  const refused = (policy: CachePolicy, cause: Cause.Cause<unknown>): boolean => {
    if (policy.isRefusal === undefined) return false
    const failure = Cause.failureOption(cause)
    return Option.isSome(failure) && policy.isRefusal(failure.value)
  }

  // Keys with a background refresh running: one refresh per key, however many stale reads.
  const refreshing = new Set<string>()
  const refreshInBackground = <E>(key: string, lookup: Effect.Effect<Loaded, E>, policy: CachePolicy, previous: CacheEntry) =>
    Effect.suspend(() => {
      if (refreshing.has(key)) return Effect.void
      refreshing.add(key)
      return FiberSet.run(
        background,
        Effect.catchAllCause(load(key, lookup, policy, true, previous), (cause) =>
          refused(policy, cause)
            ? Effect.zipRight(
              Effect.logDebug("cache: the origin refused the refresh; the entry is deleted").pipe(
                Effect.annotateLogs({ namespace: namespaceOf(key) ?? "" })
              ),
              options.forget(key)
            )
            : Effect.logDebug("cache: background refresh failed; the stale entry is kept").pipe(
              Effect.annotateLogs({ namespace: namespaceOf(key) ?? "", cause: String(cause).slice(0, 200) })
            ))
      ).pipe(
        // An observer, not `ensuring`: it also fires for a fiber interrupted before it ran.
        Effect.map((fiber) => fiber.addObserver(() => refreshing.delete(key)))
      )
    })

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
          yield* refreshInBackground(key, lookup, policy, found.value.entry)
          return stale
        }
        // Fail-safe with a soft timeout: wait for the load a little; on failure or when it is
        // slow, answer the stale entry (the shared load goes on and stores its result).
        const fresh = yield* load(key, lookup, policy, true, found.value.entry).pipe(
          Effect.timeoutOption(policy.softTimeout),
          // A refusal is answered, and the stale copy goes; other failures fall back to it
          // (defects and interruptions propagate, as before).
          Effect.catchAll((error) =>
            policy.isRefusal?.(error) === true
              ? Effect.zipRight(options.forget(key), Effect.fail(error))
              : Effect.succeed(Option.none<CacheHit>())
          )
        )
        return Option.isSome(fresh) ? fresh.value : stale
      }
      return yield* load(key, lookup, policy, false).pipe(
        Effect.catchAll((error) => failSafe(key, policy, error))
      )
    })

  /**
   * A load with nothing to fall back on failed. A refusal is answered. For a transient failure,
   * the remote tiers are asked once more, past their breakers (fail-safe read): a read that
   * failed or timed out on a busy tier may have hidden a copy within grace, which is worth more
   * than the error.
   */
  const failSafe = <E>(key: string, policy: CachePolicy, error: E): Effect.Effect<CacheHit, E> => {
    const remote = remotesFor(remotes, policy)
    if (remote.length === 0 || policy.isRefusal?.(error) === true) return Effect.fail(error)
    return Effect.flatMap(recheck(key, remote), (found) =>
      Effect.clockWith((clock) => {
        if (Option.isNone(found)) return Effect.fail(error)
        const hit = found.value
        return Effect.succeed<CacheHit>(clock.unsafeCurrentTimeMillis() < hit.entry.freshUntil ? hit : { entry: hit.entry, status: "STALE" })
      }))
  }

  return { store, resolve, failSafe, settled }
}
