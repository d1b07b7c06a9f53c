/**
 * The in-process tier: an `lru-cache` bounded by bytes and by entries, holding
 * {@link CacheEntry} objects as they are (no encoding, no compression: a hit costs a map lookup
 * and a clock read).
 *
 * Bounds:
 * - **bytes** (`maxBytes`, default 128 MiB): each entry counts its value bytes, its key, content
 *   type and tags (UTF-16, 2 bytes per char) plus a fixed overhead ({@link ENTRY_OVERHEAD_BYTES},
 *   {@link TAG_OVERHEAD_BYTES} per tag) for the objects and index slots it costs. Least recently
 *   used entries are evicted to stay at or below the bound.
 * - **entries** (`maxEntries`, default 100,000).
 * - **value size** (`maxValueBytes`, default 1 MiB): a larger value never enters the main LRU,
 *   so one huge document cannot flush the working set.
 * - **large values** (`largeMaxBytes`, default 128 MiB; `largeMaxValueBytes`, default 32 MiB):
 *   values above `maxValueBytes` and up to `largeMaxValueBytes` are kept in a segment of their
 *   own, an LRU bounded by `largeMaxBytes`, so they only ever evict each other. A hit there sends
 *   the same bytes again; read from Redis or PostgreSQL instead, every request of a 30 MB item
 *   allocates its bytes anew (the compressed reply, the inflated body), and that churn of
 *   off-heap memory makes V8 run a full collection every few such requests (measured: ten a
 *   second with four clients asking large items, each pausing the event loop 10-15 ms). A value
 *   larger than `largeMaxValueBytes` (or any large value, with `largeMaxBytes` 0) is not stored
 *   here at all (and an older value under the same key is dropped); the remote tiers hold it.
 *   Admission (frequency-based, as TinyLFU): a new large value enters the full segment only if
 *   its key was asked more often lately than every value it would evict, least recently used
 *   first (asks: stores after a miss of this tier, and hits in the segment; the counts are
 *   halved every {@link LARGE_AGE_EVERY} counts, so what was hot fades). A value refused is
 *   answered all the same, from the copy just read; it is not kept. Without it, a cycle over
 *   more large values than fit replaced each resident by the next and hit nothing; with it,
 *   the residents stay and a share of the cycle (the segment over the cycle) hits.
 *
 * The tag index (tag → keys) is updated on every store and, through lru-cache's `dispose`, on
 * every eviction, deletion and overwrite, so it never holds a key the cache does not; its size
 * is part of the byte bound.
 *
 * Time comes from the Effect `Clock` of the calling fiber (`TestClock` in specs). Entries past
 * `staleUntil` are treated as absent and dropped when read; until then they take space and are
 * evicted like any other entry.
 *
 * Concurrency: every operation is one synchronous step, so operations are atomic with respect
 * to each other. Operations never fail (the error type is `never`) and carry no tracing span,
 * on purpose: this is the hot path.
 *
 * Values are stored by reference: a caller must not mutate a `value` after `set` or after `get`.
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Layer, Option } from "effect"
import type { ConfigError } from "effect/ConfigError"
import * as Config from "effect/Config"
import { LRUCache } from "lru-cache"
import { nonNegativeInt, positiveInt } from "../ConfigKeys.js"
import * as CacheTier from "./CacheTier.js"
import type { CacheEntry } from "./Envelope.js"

/** Fixed cost counted per entry for the wrapper, the LRU slots and the map entries. */
export const ENTRY_OVERHEAD_BYTES = 256

/** Fixed cost counted per tag of an entry, for its tag-index slot. */
export const TAG_OVERHEAD_BYTES = 64

/** Default bounds. */
export const defaults = {
  maxBytes: 128 * 1024 * 1024,
  maxEntries: 100_000,
  maxValueBytes: 1024 * 1024,
  largeMaxBytes: 128 * 1024 * 1024,
  largeMaxValueBytes: 32 * 1024 * 1024
} as const

/** Most entries the large-value segment holds. */
export const LARGE_MAX_ENTRIES = 4_096

/** The large-value segment's ask counts are halved after this many counts. */
export const LARGE_AGE_EVERY = 1_024

/** Most large keys whose ask counts are kept (past it, halving; then forgetting all). */
export const LARGE_TRACKED_KEYS = 4 * LARGE_MAX_ENTRIES

/** Options of {@link make}; every field defaults to {@link defaults}. */
export interface MemoryTierOptions {
  /** Upper bound on the counted size of all entries (integer >= 1). */
  readonly maxBytes?: number
  /** Upper bound on the number of entries (integer >= 1). */
  readonly maxEntries?: number
  /** Values with more bytes than this are not stored in the main LRU (see `largeMaxBytes`). */
  readonly maxValueBytes?: number
  /** Upper bound on the counted size of the large-value segment; 0: large values are not kept. */
  readonly largeMaxBytes?: number
  /** Values with more bytes than this are not stored in memory at all. */
  readonly largeMaxValueBytes?: number
  /**
   * Called synchronously for each entry evicted to respect a bound (not for deletions, expiry or
   * overwrites), e.g. to count a metric. Keep it short; it must not call the tier. Exceptions it
   * throws are swallowed.
   */
  readonly onEvict?: (key: string, bytes: number) => void
}

/** Counters of {@link MemoryTier.stats}. */
export interface MemoryTierStats {
  /** Counted size of all entries, <= `maxBytes` + `largeMaxBytes`. */
  readonly bytes: number
  readonly entries: number
  /** Counted size of the large-value segment's entries (part of `bytes`), <= `largeMaxBytes`. */
  readonly largeBytes: number
  /** Entries evicted for a bound since the tier was made. */
  readonly evictions: number
  /** Distinct tags in the tag index. */
  readonly tags: number
  /** (tag, key) pairs in the tag index: the sum over entries of their tag count. */
  readonly tagLinks: number
}

/** The memory tier: a {@link CacheTier.CacheTier} plus counters. */
export interface MemoryTier extends CacheTier.CacheTier {
  readonly name: "memory"
  /** Current counters; cheap (no iteration). */
  readonly stats: () => MemoryTierStats
  /**
   * The usable entry for `key` at `now` (epoch ms), or `undefined`: the same lookup as `get`,
   * synchronous and allocation-free, for the HTTP hit path that answers without a fiber.
   */
  readonly lookupSync: (key: string, now: number) => CacheEntry | undefined
}

/** Tag of the memory tier. */
export const MemoryTier = Context.GenericTag<MemoryTier>("accelerator/MemoryTier")

interface Slot {
  readonly entry: CacheEntry
  readonly size: number
}

const sizeOf = (key: string, entry: CacheEntry): number => {
  let size = ENTRY_OVERHEAD_BYTES + entry.value.byteLength + 2 * (key.length + entry.contentType.length)
  for (const tag of entry.tags) size += TAG_OVERHEAD_BYTES + 2 * tag.length
  return size
}

const positiveInteger = (name: string, value: number): number => {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`MemoryTier ${name} must be an integer >= 1, got ${value}`)
  }
  return value
}

/**
 * Builds a memory tier. Dies with a `RangeError` on out-of-range options (found at startup).
 * It owns nothing to release, so it needs no scope.
 */
export const make = (options: MemoryTierOptions = {}): Effect.Effect<MemoryTier> =>
  Effect.sync(() => {
    const maxBytes = positiveInteger("maxBytes", options.maxBytes ?? defaults.maxBytes)
    const maxEntries = positiveInteger("maxEntries", options.maxEntries ?? defaults.maxEntries)
    const maxValueBytes = options.maxValueBytes ?? defaults.maxValueBytes
    const largeMaxBytes = options.largeMaxBytes ?? defaults.largeMaxBytes
    if (!Number.isSafeInteger(largeMaxBytes) || largeMaxBytes < 0) {
      throw new RangeError(`MemoryTier largeMaxBytes must be an integer >= 0, got ${largeMaxBytes}`)
    }
    const largeMaxValueBytes = largeMaxBytes === 0 ? maxValueBytes : Math.max(maxValueBytes, options.largeMaxValueBytes ?? defaults.largeMaxValueBytes)
    const onEvict = options.onEvict
    const index = new Map<string, Set<string>>()
    let tagLinks = 0
    let evictions = 0

    const unindex = (key: string, entry: CacheEntry) => {
      for (const tag of entry.tags) {
        const keys = index.get(tag)
        if (keys?.delete(key) === true) {
          tagLinks--
          if (keys.size === 0) index.delete(tag)
        }
      }
    }

    // Runs synchronously inside lru's set/delete/evict, before the new value (if any) is
    // indexed, so removing the old value's links here never removes the new value's.
    const dispose = (slot: Slot, key: string, reason: LRUCache.DisposeReason) => {
      unindex(key, slot.entry)
      if (reason === "evict") {
        evictions++
        if (onEvict !== undefined) {
          try {
            onEvict(key, slot.size)
          } catch {
            // a metric hook must not break the cache
          }
        }
      }
    }
    const lru = new LRUCache<string, Slot>({ max: maxEntries, maxSize: maxBytes, sizeCalculation: (slot) => slot.size, dispose })
    // Values over `maxValueBytes`: their own LRU, so they never evict the working set.
    const large = largeMaxBytes === 0
      ? undefined
      : new LRUCache<string, Slot>({ max: LARGE_MAX_ENTRIES, maxSize: largeMaxBytes, sizeCalculation: (slot) => slot.size, dispose })

    const remove = (key: string) => {
      lru.delete(key)
      large?.delete(key)
    }

    // How often each large key was asked lately (stored after a miss of this tier, or hit in
    // the segment), for the segment's admission; halved every `LARGE_AGE_EVERY` counts.
    const largeAsked = new Map<string, number>()
    let largeCounts = 0
    const ageLarge = () => {
      for (const [key, n] of largeAsked) {
        if (n <= 1) largeAsked.delete(key)
        else largeAsked.set(key, n >> 1)
      }
      largeCounts = 0
      if (largeAsked.size > LARGE_TRACKED_KEYS) largeAsked.clear()
    }
    const askedLarge = (key: string): number => {
      const n = (largeAsked.get(key) ?? 0) + 1
      largeAsked.set(key, n)
      if (++largeCounts >= LARGE_AGE_EVERY || largeAsked.size > LARGE_TRACKED_KEYS) ageLarge()
      return n
    }
    // Whether a new large value asked `asked` times may enter the full segment: only when every
    // value it would evict (least recently used first) was asked fewer times. A scan over more
    // large values than fit then leaves the residents in place instead of replacing each by the
    // next (an LRU over a longer cycle hits nothing, and every copy read back is new memory).
    const admitsLarge = (segment: LRUCache<string, Slot>, size: number, asked: number): boolean => {
      let free = largeMaxBytes - segment.calculatedSize
      let room = LARGE_MAX_ENTRIES - segment.size
      if (free >= size && room >= 1) return true
      for (const victim of segment.rkeys()) {
        if ((largeAsked.get(victim) ?? 0) >= asked) return false
        free += segment.peek(victim)?.size ?? 0
        room++
        if (free >= size && room >= 1) return true
      }
      return false
    }

    const store = (key: string, entry: CacheEntry, now: number) => {
      const bytes = entry.value.byteLength
      if (now >= entry.staleUntil || bytes > largeMaxValueBytes) {
        remove(key)
        return
      }
      const [into, other] = bytes > maxValueBytes ? [large!, lru] : [lru, large]
      other?.delete(key)
      const slot: Slot = { entry, size: sizeOf(key, entry) }
      if (into === large && !large.has(key) && !admitsLarge(large, slot.size, askedLarge(key))) return
      into.set(key, slot)
      // An entry larger than its LRU's bound is refused (and the old one dropped).
      if (into.peek(key) !== slot) return
      for (const tag of new Set(entry.tags)) {
        let keys = index.get(tag)
        if (keys === undefined) {
          keys = new Set()
          index.set(tag, keys)
        }
        if (!keys.has(key)) {
          keys.add(key)
          tagLinks++
        }
      }
    }

    const lookup = (key: string, now: number): Option.Option<CacheEntry> => {
      let slot = lru.get(key)
      if (slot === undefined && large !== undefined) {
        slot = large.get(key)
        if (slot !== undefined) askedLarge(key)
      }
      if (slot === undefined) return Option.none()
      if (now >= slot.entry.staleUntil) {
        remove(key)
        return Option.none()
      }
      return Option.some(slot.entry)
    }

    return CacheTier.make({
      name: "memory" as const,
      getMany: (keys) =>
        keys.length === 0
          ? Effect.succeed([])
          : Effect.map(Clock.currentTimeMillis, (now) => keys.map((key) => lookup(key, now))),
      setMany: (items) =>
        items.length === 0 ? Effect.void : Effect.map(Clock.currentTimeMillis, (now) => {
          for (const item of items) store(item.key, item.entry, now)
        }),
      delete: (keys) =>
        Effect.sync(() => {
          for (const key of keys) remove(key)
        }),
      invalidateTags: (tags) =>
        Effect.sync(() => {
          for (const tag of tags) {
            const keys = index.get(tag)
            // Copy: each delete mutates the set through dispose.
            if (keys !== undefined) for (const key of Array.from(keys)) remove(key)
          }
        }),
      clear: (namespace) =>
        Effect.zipRight(
          CacheTier.checkNamespace(namespace),
          Effect.sync(() => {
            const prefix = `${namespace}:`
            const doomed: Array<string> = []
            for (const key of lru.keys()) if (key.startsWith(prefix)) doomed.push(key)
            if (large !== undefined) for (const key of large.keys()) if (key.startsWith(prefix)) doomed.push(key)
            for (const key of doomed) remove(key)
          })
        ),
      stats: () => ({
        bytes: lru.calculatedSize + (large?.calculatedSize ?? 0),
        entries: lru.size + (large?.size ?? 0),
        largeBytes: large?.calculatedSize ?? 0,
        evictions,
        tags: index.size,
        tagLinks
      }),
      lookupSync: (key: string, now: number) => Option.getOrUndefined(lookup(key, now))
    })
  })

/** The memory tier as a layer over explicit options. */
export const layer = (options: MemoryTierOptions = {}): Layer.Layer<MemoryTier> => Layer.effect(MemoryTier, make(options))

/** The memory tier's keys (`CACHE_MEMORY_*`), with {@link defaults} as their defaults. */
export const MemoryTierConfig: Config.Config<MemoryTierOptions> = Config.all({
  maxBytes: positiveInt("CACHE_MEMORY_MAX_BYTES", defaults.maxBytes),
  maxEntries: positiveInt("CACHE_MEMORY_MAX_ENTRIES", defaults.maxEntries),
  maxValueBytes: nonNegativeInt("CACHE_MEMORY_MAX_VALUE_BYTES", defaults.maxValueBytes),
  largeMaxBytes: nonNegativeInt("CACHE_MEMORY_LARGE_MAX_BYTES", defaults.largeMaxBytes),
  largeMaxValueBytes: nonNegativeInt("CACHE_MEMORY_LARGE_MAX_VALUE_BYTES", defaults.largeMaxValueBytes)
})

/**
 * The memory tier from its configuration keys ({@link MemoryTierConfig}), with `overrides` on
 * top: the one meaning of `layerConfig` in this project.
 */
export const layerConfig = (
  overrides: Partial<MemoryTierOptions> = {}
): Layer.Layer<MemoryTier, ConfigError> =>
  Layer.effect(MemoryTier, Effect.flatMap(MemoryTierConfig, (config) => make({ ...config, ...overrides })))
