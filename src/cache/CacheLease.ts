/**
 * A load lease across instances: before loading a missing key from the origin, an instance
 * takes `SET <prefix>lease:<key> <instance> NX PX <ttl>` in Redis. The winner loads; the others
 * wait briefly for its result to appear in the shared tiers before loading themselves. A Redis
 * failure counts as "taken by us" (load at once): the lease only ever saves origin calls, it
 * never fails or stalls a request beyond `wait`. With `inReads`, the Redis tier takes the lease
 * in its read of the key (one script, one round trip: `CacheLease.inRead`).
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"
import type { Redis } from "../redis/Redis.js"
import type { LeaseRead } from "./CacheTier.js"
import { errorText, throttledWarning } from "../telemetry/ThrottledLog.js"

/** What `TieredCache` needs from a lease. */
export interface CacheLease {
  /** `true` when this instance should load `key` now (it took the lease, or Redis is down). */
  readonly acquire: (key: string) => Effect.Effect<boolean>
  /** Gives the lease back after the load (best effort; it expires anyway). */
  readonly release: (key: string) => Effect.Effect<void>
  /** Gives several leases back in one round trip (best effort). */
  readonly releaseMany: (keys: ReadonlyArray<string>) => Effect.Effect<void>
  /** How long a loser waits for the winner's value before loading itself. */
  readonly wait: Duration.Duration
  /**
   * The lease of `key` taken by the Redis tier's read of `key`, in the same round trip
   * (`ReadOptions.lease`), instead of {@link acquire} and a read after it. Only for a lease in
   * the Redis the tier reads (`inReads` of {@link redisLease}, as `CacheStack` wires them).
   */
  readonly inRead?: (key: string, taken: (ours: boolean) => void) => LeaseRead
}

/**
 * Bound on taking the lease. Longer than a plain command's: the lease is asked for by the first
 * of a stampede's requests, while the instance accepts and parses the rest (1,000 requests on a
 * 2-core machine held a `SET` past the 250 ms command bound, and the key was loaded twice), and
 * a second origin load costs more than waiting. A dead Redis still fails at once (no offline queue).
 */
export const ACQUIRE_BOUND = Duration.seconds(1)
const ACQUIRE_BOUND_MS = Duration.toMillis(ACQUIRE_BOUND)

// Deletes the lease only when it is still ours (it may have expired and been taken by another).
const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`
// The same for every key given.
const RELEASE_MANY =
  `local n = 0 for _, k in ipairs(KEYS) do if redis.call("GET", k) == ARGV[1] then n = n + redis.call("DEL", k) end end return n`

/** A lease over the Redis adapter. */
export const redisLease = (
  redis: Redis,
  options: {
    readonly prefix: string
    readonly instanceId: string
    readonly ttl: Duration.DurationInput
    readonly wait: Duration.DurationInput
    /** The Redis tier reads the same Redis: it may take the lease in its read ({@link CacheLease.inRead}). */
    readonly inReads?: boolean
  }
): CacheLease => {
  const ttlMs = Duration.toMillis(options.ttl)
  const leaseKey = (key: string) => `${options.prefix}lease:${key}`
  // A key loaded without the lease may be loaded by another instance too: said at most every 5 s.
  const warn = throttledWarning(5_000)
  const unleased = (error: unknown) =>
    Effect.as(warn("lease", "cache lease: Redis did not answer; loading without the lease", { error: errorText(error) }), true)
  return {
    acquire: (key) =>
      redis.use("SET", (c) => c.set(leaseKey(key), options.instanceId, "PX", ttlMs, "NX"), ACQUIRE_BOUND).pipe(
        Effect.map((reply) => reply === "OK"),
        Effect.catchAll(unleased)
      ),
    release: (key) =>
      Effect.ignore(redis.use("EVAL", (c) => c.eval(RELEASE, 1, leaseKey(key), options.instanceId))),
    releaseMany: (keys) =>
      keys.length === 0
        ? Effect.void
        : Effect.ignore(redis.use("EVAL", (c) => c.eval(RELEASE_MANY, keys.length, ...keys.map(leaseKey), options.instanceId))),
    wait: Duration.decode(options.wait),
    ...(options.inReads === true
      ? { inRead: (key: string, taken: (ours: boolean) => void): LeaseRead => ({ key: leaseKey(key), owner: options.instanceId, ttlMs, boundMs: ACQUIRE_BOUND_MS, taken }) }
      : {})
  }
}
