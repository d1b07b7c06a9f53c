/**
 * The vocabulary shared by the tiered cache's parts (`TieredCache.ts` wires them): policies,
 * loaded values, answers, the load timeout, invalidation messages, the bus and the telemetry
 * hooks. Re-exported by `TieredCache.ts`, which is where callers import them from.
 *
 * @since 0.1.0
 */
import { Data, Duration, type Effect } from "effect"
import type { CacheTier, TierName } from "./CacheTier.js"
import type { CacheEntry } from "./Envelope.js"

/** How an answer was found; the `X-Cache` header value. */
export type CacheStatus = "HIT-MEMORY" | "HIT-REDIS" | "HIT-POSTGRES" | "MISS" | "STALE"

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
  /** Time a denial (`Loaded.denied`) is kept (0 or absent = not cached). Kept per key, so per partition. */
  readonly denied?: Duration.DurationInput
  /**
   * Time after its `negative` or `denied` time during which a not-found or a denial may still be
   * answered, stale, while it is refreshed in the background (as `grace` is for values). Default 0:
   * a negative answer is gone when it expires. A stale negative answer never hides content (it
   * refuses), and an invalidation of its key or tags removes it like any entry.
   */
  readonly negativeGrace?: Duration.DurationInput
  /** After this long, an origin load answers a stale entry if there is one and goes on in the background. */
  readonly softTimeout: Duration.DurationInput
  /**
   * An origin load taking longer fails (`LoadTimeout`). Measured on the real clock (a
   * `Deadline`): a `TestClock` does not move it.
   */
  readonly hardTimeout: Duration.DurationInput
  /**
   * `true` (default): a stale entry is answered at once and refreshed in the background.
   * `false`: a stale entry triggers a load that is awaited up to `softTimeout`; the stale entry is
   * answered only when the load fails or takes longer (it then goes on in the background).
   */
  readonly staleWhileRevalidate?: boolean
  /**
   * Whether a load's failure is a definite refusal by the origin (this caller may not have this
   * value: it is gone, forbidden, unknown). A refusal is never hidden behind a stale copy: the
   * key is deleted on every tier (and on other instances) and the refusal answered. Stale copies
   * stand in only for other failures (the origin down, slow, erring). Default: none is.
   */
  readonly isRefusal?: (error: unknown) => boolean
  /** Remote tiers to use for this namespace (default: all configured). */
  readonly remote?: { readonly redis?: boolean; readonly postgres?: boolean }
  /**
   * Per-tier caps on how long a stored value lives in that tier (fresh and stale time both cut
   * to the cap), e.g. a short memory TTL so instances re-read the shared tiers often. They apply
   * when a loaded value is stored; a copy backfilled from a lower tier keeps that tier's times.
   */
  readonly tierTtl?: { readonly memory?: Duration.DurationInput; readonly redis?: Duration.DurationInput; readonly postgres?: Duration.DurationInput }
}

/** What an origin load produces. */
export interface Loaded {
  readonly value: Uint8Array
  readonly contentType: string
  readonly tags: ReadonlyArray<string>
  /** A not-found answer: cached for the policy's `negative` time instead of `fresh`. */
  readonly notFound?: boolean
  /** The origin's validators of this value (see `CacheEntry.upstreamValidator`). */
  readonly upstreamValidator?: CacheEntry["upstreamValidator"]
  /** A denial (this caller's partition may not read it): cached for the policy's `denied` time instead of `fresh`. */
  readonly denied?: boolean
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
  /** An origin load starts. */
  readonly onOriginLoad?: () => void
  /** An origin load ended: `ok` false when the lookup failed or hit the hard timeout. */
  readonly onOriginResult?: (ok: boolean) => void
  /** `count` entries (default 1) a remote tier did not get: dropped (queue full) or their write failed. */
  readonly onWriteFailed?: (tier: TierName, count?: number) => void
  /** After an invalidation heard from another instance was applied to this instance's memory. */
  readonly onRemoteApplied?: (message: InvalidationMessage) => void
  /** After `TieredCache.dropMemory` emptied the memory tier. */
  readonly onMemoryDropped?: () => void
}

/** The remote tiers of `remotes` that `policy` uses (all unless it turns one off). */
export const remotesFor = (remotes: ReadonlyArray<CacheTier>, policy: CachePolicy): ReadonlyArray<CacheTier> =>
  remotes.filter((tier) => (tier.name === "redis" ? policy.remote?.redis : policy.remote?.postgres) !== false)
