/**
 * The one interface every cache tier implements (memory, Redis, PostgreSQL), so the tiered
 * cache can stack them and one conformance suite (`test/cache/conformance.ts`) can hold them to
 * the same contract.
 *
 * Keys are `"<namespace>:<rest>"`; the namespace is the text before the first `:` and is what
 * {@link CacheTier.clear} removes. A key without `:` belongs to no namespace. Tags are free text.
 *
 * Contract shared by all tiers:
 * - **Batches.** `getMany` answers in the order of its keys (duplicates allowed), `setMany`
 *   lets the last item win when a key appears twice. Empty batches are no-ops that touch nothing.
 * - **Expiry.** An entry is served while `now < staleUntil` (fresh or stale: the caller decides
 *   with {@link Envelope.isFresh}); past that it is a miss, however it is stored. Writing an
 *   entry whose `staleUntil` has already passed deletes the key instead. The physical TTL of a
 *   remote copy is `staleUntil - now`.
 * - **Unreadable data is a miss.** Bytes of another envelope version, truncated or corrupt bytes
 *   read back from a remote tier give `None`, never an error.
 * - **Failures.** Every failure is a {@link TierError} naming the tier and the operation; a tier
 *   never dies on bad data or a dead server. Remote tiers bound every operation by a timeout and
 *   fail fast (circuit breaker) while their server is down, so callers can fall through. A
 *   timeout while the server kept answering other operations (`busy`) does not count against
 *   the breaker, and a fail-safe read (`ReadOptions.failSafe`) skips it with a longer bound.
 * - **Concurrency.** All operations may run concurrently from any number of fibers. There is no
 *   ordering between concurrent operations on the same key: the last write to reach the store
 *   wins, and a read concurrent with a write sees the old or the new entry, never a mix. An
 *   invalidation or clear removes what was stored when it ran; an entry written concurrently may
 *   survive it (a cache that needs stronger ordering versions its keys).
 * - **Invalidation is exact.** `invalidateTags` removes the entries that carry one of the tags
 *   now; an entry that was overwritten without the tag survives.
 * - **Interruption** of an operation is safe; a write or delete may or may not have happened.
 *
 * @since 0.1.0
 */
import * as Deadline from "../concurrency/Deadline.js"
import { Cause, Data, Duration, Effect, Option } from "effect"
import type { CircuitBreaker, CircuitBreakerOptions } from "../resilience/CircuitBreaker.js"
import type * as Envelope from "./Envelope.js"

/** The tiers that exist. Used as a metric / log label: keep the set fixed. */
export type TierName = "memory" | "redis" | "postgres"

/** The operations a {@link TierError} can come from. */
export type TierOp = "getMany" | "setMany" | "delete" | "invalidateTags" | "clear" | "migrate" | "sweep"

/** A tier operation failed: server down or slow (timeout), circuit open, unexpected reply. */
export class TierError extends Data.TaggedError("TierError")<{
  readonly tier: TierName
  readonly op: TierOp
  readonly cause: unknown
  /**
   * Set on a timeout during which the server went on answering other operations of the tier
   * (the reply was queued behind others: a large value, a busy pool): the tier is busy, not
   * down, so its circuit breaker does not count it.
   */
  readonly busy?: boolean
}> {
  override get message(): string {
    const cause = this.cause as { readonly message?: unknown; readonly _tag?: unknown } | null | undefined
    const detail = typeof cause?.message === "string" && cause.message !== ""
      ? cause.message
      : typeof cause?._tag === "string"
      ? cause._tag
      : String(this.cause)
    return `cache tier ${this.tier} ${this.op} failed: ${detail}`
  }
}

/** Wraps any failure of `tier`'s operation `op` in a {@link TierError} (a `TierError` is kept as is). */
export const tierError = (tier: TierName, op: TierOp) => (cause: unknown): TierError =>
  cause instanceof TierError ? cause : new TierError({ tier, op, cause })

/** Options of {@link guarded}. */
export interface GuardOptions {
  /** Leave a slow operation to finish in the background instead of waiting while it is interrupted. */
  readonly abandon?: boolean
  /**
   * A counter of the tier's progress (bytes or replies received, statements completed) that
   * grows while the server answers. A timeout during which it grew is a busy tier, not a dead
   * one: the {@link TierError} is marked `busy` and the breaker does not count it.
   */
  readonly progress?: () => number
}

/** Options of one guarded operation. */
export interface GuardCall {
  /**
   * The fail-safe read: the breaker is not asked (it may have opened on a busy tier) and the
   * caller's longer bound applies. Used once the origin has failed, when the answer is an error.
   */
  readonly failSafe?: boolean
}

/**
 * The guard every remote tier puts around each operation: its failures become a
 * {@link TierError} naming the tier and the operation; the whole operation is bounded by `bound`
 * (a `TimeoutException` cause, marked `busy` when the tier made progress meanwhile; with
 * `abandon`, a slow operation is left to finish in the background instead of being waited for
 * while it is interrupted); and it runs through the tier's circuit breaker when it has one (an
 * open circuit is a `TierError` too), except for a fail-safe read.
 */
export const guarded = (tier: TierName, breaker: CircuitBreaker | undefined, options: GuardOptions = {}) =>
<A, E>(op: TierOp, bound: Duration.Duration, self: Effect.Effect<A, E>, call: GuardCall = {}): Effect.Effect<A, TierError> => {
  const typed = Effect.mapError(self, tierError(tier, op))
  const timedOut = timeoutOf(tier, op, bound, options.progress)
  // A deadline that forgives a busy event loop: a reply already in the socket buffer when the
  // timer fires is read first (a loop held for longer than the bound is not a slow tier).
  const bounded = Effect.suspend(() => {
    const onTimeout = timedOut()
    return Deadline.timeoutFail(options.abandon === true ? Effect.disconnect(typed) : typed, { duration: bound, onTimeout })
  })
  return throughBreaker(tier, op, breaker, call, bounded)
}

/**
 * {@link guarded} for an operation that is one promise (a command sent to the server): the same
 * error, bound and breaker, without a fiber (`Deadline.promiseWithin`; a promise is never
 * interrupted, so a slow one is always abandoned). `evaluate` is called when the effect runs.
 */
export const guardedPromise = (tier: TierName, breaker: CircuitBreaker | undefined, options: Omit<GuardOptions, "abandon"> = {}) =>
<A>(op: TierOp, bound: Duration.Duration, evaluate: () => PromiseLike<A>, call: GuardCall = {}): Effect.Effect<A, TierError> => {
  const onError = tierError(tier, op)
  const timedOut = timeoutOf(tier, op, bound, options.progress)
  const bounded = Effect.suspend(() => Deadline.promiseWithin(evaluate, { duration: bound, onTimeout: timedOut(), onError }))
  return throughBreaker(tier, op, breaker, call, bounded)
}

/**
 * Called as an operation starts: the `TierError` of its timeout, marked `busy` when `progress`
 * grew between the start and the timeout.
 */
const timeoutOf = (tier: TierName, op: TierOp, bound: Duration.Duration, progress: (() => number) | undefined) => () => {
  const before = progress?.()
  return () =>
    new TierError({
      tier,
      op,
      cause: new Cause.TimeoutException(`${tier} ${op} exceeded ${Duration.format(bound)}`),
      busy: progress !== undefined && progress() !== before
    })
}

/** `bounded` through the tier's breaker (an open circuit is a `TierError`), unless there is none or the read is fail-safe. */
const throughBreaker = <A>(
  tier: TierName,
  op: TierOp,
  breaker: CircuitBreaker | undefined,
  call: GuardCall,
  bounded: Effect.Effect<A, TierError>
): Effect.Effect<A, TierError> =>
  breaker === undefined || call.failSafe === true
    ? bounded
    : Effect.catchTag(breaker.withBreaker(bounded), "CircuitOpenError", (cause) => Effect.fail(tierError(tier, op)(cause)))

/** The breaker rule of a remote tier: every failure counts, except a timeout of a busy tier. */
export const countsAgainstTier = (error: unknown): boolean => !(error instanceof TierError && error.busy === true)

/** Bound of a fail-safe read ({@link ReadOptions.failSafe}): this many times the tier's read bound. */
export const FAIL_SAFE_FACTOR = 4

/**
 * Circuit-breaker settings of a remote tier; `name` (the tier) and `isFailure`
 * ({@link countsAgainstTier}) are set by the tier. See `resilience/CircuitBreaker.ts` for defaults.
 */
export type TierBreakerOptions = Omit<CircuitBreakerOptions, "name" | "isFailure">

/** One item of {@link CacheTier.setMany}. */
export interface CacheItem {
  readonly key: string
  readonly entry: Envelope.CacheEntry
}

/** Options of one {@link CacheTier.getMany}. */
export interface ReadOptions {
  /**
   * The fail-safe read, made once the origin has failed and the answer would be an error: past
   * the tier's circuit breaker, bounded by {@link FAIL_SAFE_FACTOR} times its read bound. A copy
   * a busy tier holds is worth more than a 5xx. Tiers without a breaker or bound ignore it.
   */
  readonly failSafe?: boolean
  /**
   * Take a cross-instance load lease in the same round trip as the read, which must then be of
   * one key: the tier sets `lease.key` to `lease.owner` for `lease.ttlMs` unless another owner
   * holds it, and reads the key only when the lease is now `owner`'s. Honoured by the Redis tier
   * (the lease must live in the Redis it reads); `lease.taken` tells the outcome once the tier
   * answered. A tier that does not call it (the read failed, or it holds no leases) took none.
   */
  readonly lease?: LeaseRead
}

/** The lease of {@link ReadOptions.lease}. */
export interface LeaseRead {
  /** The lease's own key on the tier's server. */
  readonly key: string
  readonly owner: string
  readonly ttlMs: number
  /** The read's bound while it takes the lease, when longer than the tier's own (the lease's bound). */
  readonly boundMs: number
  /** `true`: the lease is now `owner`'s (and the read's result is the key's); `false`: another holds it (the key was not read). */
  readonly taken: (ours: boolean) => void
}

/**
 * A cache tier. See the module documentation for the contract every implementation keeps.
 */
export interface CacheTier {
  readonly name: TierName
  /** One lookup per key, same order as `keys`; a missing, expired or unreadable entry is `None`. */
  readonly getMany: (
    keys: ReadonlyArray<string>,
    options?: ReadOptions
  ) => Effect.Effect<ReadonlyArray<Option.Option<Envelope.CacheEntry>>, TierError>
  /** Stores the items (last wins per key); entries already past `staleUntil` delete their key. */
  readonly setMany: (items: ReadonlyArray<CacheItem>) => Effect.Effect<void, TierError>
  /** Removes the keys; absent keys are ignored. */
  readonly delete: (keys: ReadonlyArray<string>) => Effect.Effect<void, TierError>
  /** Removes every entry that carries at least one of `tags`. */
  readonly invalidateTags: (tags: ReadonlyArray<string>) => Effect.Effect<void, TierError>
  /**
   * Removes every key of `namespace` (keys `"<namespace>:…"`) and nothing else. Dies with an
   * `IllegalArgumentException` when `namespace` is empty or contains `:` (a programming error).
   */
  readonly clear: (namespace: string) => Effect.Effect<void, TierError>
  /** `getMany([key])`. */
  readonly get: (key: string) => Effect.Effect<Option.Option<Envelope.CacheEntry>, TierError>
  /** `setMany([{ key, entry }])`. */
  readonly set: (key: string, entry: Envelope.CacheEntry) => Effect.Effect<void, TierError>
}

/** The batch operations a tier implements; {@link make} adds the single-key sugar. */
export type CacheTierOps = Omit<CacheTier, "get" | "set">

/** Completes `ops` into a {@link CacheTier} with `get` and `set` over the batch forms. */
export const make = <T extends CacheTierOps>(ops: T): NoInfer<T> & CacheTier => ({
  ...ops,
  get: (key: string) => Effect.map(ops.getMany([key]), (found) => found[0] ?? Option.none()),
  set: (key: string, entry: Envelope.CacheEntry) => ops.setMany([{ key, entry }])
})

/** The namespace of `key` (the text before the first `:`), or `undefined` when it has none. */
export const namespaceOf = (key: string): string | undefined => {
  const colon = key.indexOf(":")
  return colon < 0 ? undefined : key.slice(0, colon)
}

/** Dies unless `namespace` is a valid argument of {@link CacheTier.clear}. */
export const checkNamespace = (namespace: string): Effect.Effect<void> =>
  namespace === "" || namespace.includes(":")
    ? Effect.die(
      new Cause.IllegalArgumentException(
        `cache namespace must be non-empty and contain no ':', got ${JSON.stringify(namespace)}`
      )
    )
    : Effect.void

/**
 * Collapses a batch to its last item per key, keeping first-seen order. Tiers use it so that a
 * key written twice in one batch behaves like two writes in a row.
 */
export const lastPerKey = (items: ReadonlyArray<CacheItem>): ReadonlyArray<CacheItem> => {
  if (items.length < 2) return items
  const byKey = new Map<string, CacheItem>()
  for (const item of items) byKey.set(item.key, item)
  return byKey.size === items.length ? items : Array.from(byKey.values())
}
