/**
 * The Redis tier, over the {@link Redis} adapter (one auto-pipelined ioredis connection, no
 * offline queue, per-command timeout).
 *
 * Key layout, under a configurable prefix (default `da:`) so that several gateways, or other
 * applications, can share one Redis:
 * - `<prefix>e:<key>`: one string per entry, the {@link Envelope} bytes, with a physical TTL
 *   (`PX`) of `staleUntil - now`. As keys are `<namespace>:<rest>`, all entries of a namespace
 *   share the prefix `<prefix>e:<namespace>:`.
 * - `<prefix>t:<tag>`: one set per tag holding the full Redis keys of the entries written with
 *   that tag. Its TTL is kept at least as long as the longest member's (`PEXPIRE … NX` then
 *   `PEXPIRE … GT`, Redis >= 7.0), so a set never expires before an entry it indexes.
 *   The `e:` / `t:` split keeps tag sets out of every namespace, whatever the namespace is called.
 *
 * Operations:
 * - `getMany`: one `MGET` per call.
 * - `setMany`: one pipeline: `SET key value PX ttl` per entry, then `SADD` + `PEXPIRE NX` +
 *   `PEXPIRE GT` per tag (`UNLINK` for entries already past `staleUntil`).
 * - `delete`: one `UNLINK`. Tag sets keep the deleted keys as stale members until they expire.
 * - `invalidateTags`: per tag, `SSCAN` the set in pages; for each page, read just the header of
 *   each member (`GETRANGE 0 4095`, more only for very long headers) and, in one `MULTI`,
 *   `UNLINK` the members that carry an invalidated tag (or are gone or unreadable) and `SREM`
 *   them from the set. A member whose entry was overwritten without the tag is left alone, so
 *   invalidation is exact. Because entries are written before their tag links and each page is
 *   removed atomically, a concurrent write can never leave an entry that carries a tag but is
 *   missing from its set. A set emptied this way disappears (Redis deletes empty sets).
 * - `clear(ns)`: `SCAN MATCH <prefix>e:<ns>:* COUNT <page>` + `UNLINK` per page (never `KEYS`);
 *   glob characters in the prefix and namespace are escaped.
 *
 * Bodies longer than `compressAbove` (default 16 KiB) are gzip-compressed by the envelope. An
 * entry whose encoded bytes pass `maxValueBytes` (default 1 MiB) is not stored (its key is
 * removed instead): one thread serves every Redis client, and a multi-megabyte reply holds them all.
 * A value read from PostgreSQL whose envelope there passed the bound is turned down without being
 * compressed again (`Envelope.storedLengthOf`).
 *
 * Bounds and failures: `getMany` is bounded by `timeout` (default 500 ms) alone; `delete` by
 * `timeout` and each of its commands by the adapter's command timeout; `setMany` by
 * `writeTimeout` (default 2 s, on the adapter's write connection, its own breaker);
 * `invalidateTags` and `clear` by `maintenanceTimeout` (default 30 s). While Redis is down,
 * commands fail at once (no offline queue) and, after a few failures, a circuit breaker fails
 * calls without trying. A read that times out while replies kept arriving (queued behind a large
 * value) does not count against the breaker; a fail-safe read skips it, bounded by 4 ×
 * `timeout`. Every failure is a {@link TierError} with `tier: "redis"`. Not for Redis Cluster
 * (multi-key commands span slots).
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Option } from "effect"
import type { Redis as IORedis } from "ioredis"
import { Redis, scanEach } from "../redis/Redis.js"
import * as CircuitBreaker from "../resilience/CircuitBreaker.js"
import * as CacheTier from "./CacheTier.js"
import type { TierBreakerOptions } from "./CacheTier.js"
import * as Envelope from "./Envelope.js"
import * as Traced from "../telemetry/Traced.js"

/** Default option values. */
export const defaults = {
  prefix: "da:",
  compressAbove: Envelope.DEFAULT_COMPRESS_ABOVE,
  timeout: Duration.millis(500),
  writeTimeout: Duration.seconds(2),
  maintenanceTimeout: Duration.seconds(30),
  pageSize: 500,
  maxValueBytes: 1024 * 1024
} as const

/** Options of {@link make}; every field defaults to {@link defaults}. */
export interface RedisTierOptions {
  /** Prefix of every Redis key this tier touches. */
  readonly prefix?: string
  /** Bodies with more bytes than this are compressed. */
  readonly compressAbove?: number
  /** The site entries belong to: written into each envelope; an entry of another site reads as a miss. */
  readonly site?: string | undefined
  /** Bound on one `getMany` / `delete`. */
  readonly timeout?: Duration.DurationInput
  /** Bound on one `setMany` (a write batch, on its own connection and breaker). */
  readonly writeTimeout?: Duration.DurationInput
  /** Bound on one `invalidateTags` / `clear`, all pages included. */
  readonly maintenanceTimeout?: Duration.DurationInput
  /** `COUNT` of `SCAN` / `SSCAN` pages and most keys per `UNLINK` (integer >= 1). */
  readonly pageSize?: number
  /**
   * Largest stored value (encoded envelope bytes, after compression). A larger entry is not
   * written, and an older copy of its key is removed: Redis serves every client from one
   * thread, and building the reply of a multi-megabyte value holds all of them (a 64 MiB value
   * takes ~0.2 s before its first byte on a 2-core machine). PostgreSQL keeps such entries.
   */
  readonly maxValueBytes?: number
  /** Circuit breaker around every operation (CircuitBreaker defaults); `false` for none. */
  readonly breaker?: TierBreakerOptions | false
}

/** The Redis tier: a {@link CacheTier.CacheTier} plus its key prefix. */
export interface RedisCacheTier extends CacheTier.CacheTier {
  readonly name: "redis"
  readonly prefix: string
}

/** Redis key of the entry under cache key `key`. */
export const entryKey = (prefix: string, key: string): string => `${prefix}e:${key}`

/**
 * Takes the lease `KEYS[1]` for `ARGV[1]` (`PX ARGV[2]`, `NX`) and, when it was free, reads the
 * entry `KEYS[2]`: `nil` when another holds the lease, else a one-element array (the entry or nil).
 */
const LEASED_GET = `if redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2], "NX") then return {redis.call("GET", KEYS[2])} end return false`

/**
 * `EVAL` with the reply's strings as bytes. ioredis has it (`evalBuffer`) without declaring it;
 * `callBuffer` is no substitute: with auto-pipelining on it throws in a `setImmediate`
 * (ioredis 5.9: `commandName.toLowerCase is not a function`).
 */
const evalBuffer = (client: IORedis, ...args: Array<string | number>): Promise<unknown> =>
  (client as unknown as { evalBuffer: (...args: Array<string | number>) => Promise<unknown> }).evalBuffer(...args)

/** Redis key of the set indexing tag `tag`. */
export const tagKey = (prefix: string, tag: string): string => `${prefix}t:${tag}`

/** Escapes the glob metacharacters of a `SCAN MATCH` pattern. */
export const escapeGlob = (text: string): string => text.replace(/[*?[\]\\]/g, (c) => `\\${c}`)

/** Bytes read from each member when checking its tags; longer headers are read in a second step. */
const HEADER_PEEK = 4096

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

type PipelineResult = Array<[error: Error | null, result: unknown]> | null

/** Throws the first per-command error of a pipeline / MULTI reply, else returns the replies. */
const repliesOf = (results: PipelineResult): Array<unknown> => {
  if (results === null) throw new Error("transaction aborted")
  return results.map(([error, result]) => {
    if (error !== null) throw error
    return result
  })
}

/**
 * Builds the Redis tier over the {@link Redis} adapter in context. Dies with a `RangeError` on
 * out-of-range options. Owns no resource (the adapter owns the connection).
 */
export const make = (options: RedisTierOptions = {}): Effect.Effect<RedisCacheTier, never, Redis> =>
  Effect.gen(function*() {
    const redis = yield* Redis
    const prefix = options.prefix ?? defaults.prefix
    const compressAbove = options.compressAbove ?? defaults.compressAbove
    const site = options.site
    const timeout = Duration.decode(options.timeout ?? defaults.timeout)
    const maintenanceTimeout = Duration.decode(options.maintenanceTimeout ?? defaults.maintenanceTimeout)
    const pageSize = options.pageSize ?? defaults.pageSize
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
      return yield* Effect.die(new RangeError(`RedisTier pageSize must be an integer >= 1, got ${pageSize}`))
    }
    const maxValueBytes = options.maxValueBytes ?? defaults.maxValueBytes
    if (!(maxValueBytes >= 1)) {
      return yield* Effect.die(new RangeError(`RedisTier maxValueBytes must be >= 1, got ${maxValueBytes}`))
    }
    const breaker = options.breaker === false
      ? undefined
      : yield* CircuitBreaker.make({ ...options.breaker, name: "redis", isFailure: CacheTier.countsAgainstTier })
    // Write batches have a breaker of their own: a batch too slow for its bound (Redis busy, a
    // large batch) must not turn off the reads, which are small and answer requests.
    const writeBreaker = options.breaker === false
      ? undefined
      : yield* CircuitBreaker.make({ ...options.breaker, name: "redis_writes", isFailure: CacheTier.countsAgainstTier })
    const writeTimeout = Duration.decode(options.writeTimeout ?? defaults.writeTimeout)
    const failSafeTimeout = Duration.times(timeout, CacheTier.FAIL_SAFE_FACTOR)

    /**
     * Types failures, bounds the whole operation, and runs it through the breaker. A read that
     * times out while replies kept arriving on its connection waited behind others (one MGET of
     * a large value holds up every reply pipelined after it): busy, not down.
     */
    const guard = CacheTier.guarded("redis", breaker, { progress: redis.received })
    const guardCommand = CacheTier.guardedPromise("redis", breaker, { progress: redis.received })
    const guardWrite = CacheTier.guarded("redis", writeBreaker)

    const getMany = Traced.fn("RedisTier.getMany")(function*(keys: ReadonlyArray<string>, read?: CacheTier.ReadOptions) {
      if (keys.length === 0) return []
      const failSafe = read?.failSafe === true
      // The bound and the breaker cover Redis, not the decoding: a large body waiting for a
      // thread of the libuv pool is the gateway's own queue, not a slow Redis. The tier's bound
      // is the only one (the adapter's per-command bound would fire first and see no progress).
      const lease = read?.lease
      if (lease !== undefined && keys.length === 1) {
        // The lease and the read in one round trip (one script: atomic, so no holder can store
        // and let go between the two); the key is read only when the lease is ours.
        const reply = yield* guardCommand(
          "getMany",
          Duration.max(failSafe ? failSafeTimeout : timeout, Duration.millis(lease.boundMs)),
          () => evalBuffer(redis.client, LEASED_GET, 2, lease.key, entryKey(prefix, keys[0]!), lease.owner, lease.ttlMs) as Promise<[Buffer | null] | null>,
          { failSafe }
        )
        lease.taken(reply !== null)
        if (reply === null) return [Option.none()]
        return yield* Envelope.decodeAll(reply, yield* Clock.currentTimeMillis, site)
      }
      // One command, so no fiber for its bound (`guardedPromise`).
      const replies = yield* guardCommand(
        "getMany",
        failSafe ? failSafeTimeout : timeout,
        () => redis.client.mgetBuffer(...keys.map((key) => entryKey(prefix, key))),
        { failSafe }
      )
      const now = yield* Clock.currentTimeMillis
      return yield* Envelope.decodeAll(replies, now, site)
    })

    const setMany = Traced.fn("RedisTier.setMany")(function*(items: ReadonlyArray<CacheTier.CacheItem>) {
      if (items.length === 0) return
      // Encoded before the bound: the bound and the breaker cover Redis.
      const now = yield* Clock.currentTimeMillis
      const batch = CacheTier.lastPerKey(items)
      // A value read from another tier whose envelope there passed the bound would pass it here
      // too: turned down without compressing it again.
      const tooLarge = (item: CacheTier.CacheItem) => (Envelope.storedLengthOf(item.entry.value) ?? 0) > maxValueBytes
      const usable = batch.filter((item) => Envelope.isUsable(item.entry, now) && !tooLarge(item))
      const encodedAll = yield* Envelope.encodeAll(usable.map((item) => item.entry), { compressAbove, site })
      // Entries past their time, and entries too large for Redis, remove their key.
      const live: Array<CacheTier.CacheItem> = []
      const encoded: Array<Uint8Array> = []
      const dead = batch.filter((item) => !Envelope.isUsable(item.entry, now) || tooLarge(item))
      usable.forEach((item, i) => {
        const bytes = encodedAll[i]!
        if (bytes.byteLength > maxValueBytes) dead.push(item)
        else {
          live.push(item)
          encoded.push(bytes)
        }
      })
      yield* guardWrite(
        "setMany",
        writeTimeout,
        Effect.gen(function*() {
          // Longest TTL among this batch's members, per tag.
          const tagTtl = new Map<string, { ttl: number; members: Array<string> }>()
          const writes = live.map((item, i) => {
            const key = entryKey(prefix, item.key)
            const ttl = Math.max(1, Math.ceil(item.entry.staleUntil - now))
            for (const tag of item.entry.tags) {
              const slot = tagTtl.get(tag)
              if (slot === undefined) tagTtl.set(tag, { ttl, members: [key] })
              else if (!slot.members.includes(key)) {
                slot.members.push(key)
                slot.ttl = Math.max(slot.ttl, ttl)
              }
            }
            return { key, ttl, bytes: encoded[i]! }
          })
          yield* redis.useForWrites("setMany", (c) => {
            const pipeline = c.pipeline()
            // Entries first, tag links after: see the invalidation argument in the module docs.
            for (const w of writes) pipeline.set(w.key, asBuffer(w.bytes), "PX", w.ttl)
            if (dead.length > 0) pipeline.unlink(...dead.map((item) => entryKey(prefix, item.key)))
            for (const [tag, { members, ttl }] of tagTtl) {
              const set = tagKey(prefix, tag)
              pipeline.sadd(set, ...members)
              pipeline.pexpire(set, ttl, "NX")
              pipeline.pexpire(set, ttl, "GT")
            }
            return pipeline.exec().then(repliesOf)
          })
        })
      )
    })

    const deleteKeys = Traced.fn("RedisTier.delete")(function*(keys: ReadonlyArray<string>) {
      if (keys.length === 0) return
      yield* guard(
        "delete",
        timeout,
        redis.use("unlink", (c) => c.unlink(...keys.map((key) => entryKey(prefix, key))))
      )
    })

    /** Reads the header bytes of each member (a prefix; longer only where the header needs it). */
    const readHeaders = (members: ReadonlyArray<Buffer>) =>
      Effect.gen(function*() {
        const peek = (c: IORedis, targets: ReadonlyArray<readonly [Buffer, number]>) => {
          const pipeline = c.pipeline()
          for (const [member, length] of targets) pipeline.getrangeBuffer(member, 0, length - 1)
          return pipeline.exec().then((r) => repliesOf(r) as Array<Buffer>)
        }
        const heads = yield* redis.use("getrange", (c) => peek(c, members.map((m) => [m, HEADER_PEEK] as const)))
        const longer: Array<readonly [number, number]> = []
        heads.forEach((head, i) => {
          const needed = Envelope.headerBytesNeeded(head)
          if (Option.isSome(needed) && needed.value > head.byteLength && head.byteLength === HEADER_PEEK) {
            longer.push([i, needed.value])
          }
        })
        if (longer.length > 0) {
          const more = yield* redis.use(
            "getrange",
            (c) => peek(c, longer.map(([i, length]) => [members[i]!, length] as const))
          )
          longer.forEach(([i], j) => (heads[i] = more[j]!))
        }
        return heads
      })

    const invalidateTags = Traced.fn("RedisTier.invalidateTags")(function*(tags: ReadonlyArray<string>) {
      if (tags.length === 0) return
      const wanted = new Set(tags)
      const invalidateOne = (tag: string) => {
        const set = tagKey(prefix, tag)
        return scanEach(redis, "sscan", (c, cursor) => c.sscanBuffer(set, cursor, "COUNT", pageSize), (members) =>
          Effect.gen(function*() {
            const heads = yield* readHeaders(members)
            const doomed = members.filter((_, i) => {
              const head = heads[i]!
              // Gone (empty reply) or unreadable: nothing worth keeping, drop the link too.
              if (head.byteLength === 0) return true
              const header = Envelope.decodeHeader(head)
              return Option.isNone(header) || header.value.tags.some((t) => wanted.has(t))
            })
            if (doomed.length === 0) return
            yield* redis.use("unlink", (c) => c.multi().unlink(...doomed).srem(set, ...doomed).exec().then(repliesOf))
          }))
      }
      yield* guard("invalidateTags", maintenanceTimeout, Effect.forEach(tags, invalidateOne, { discard: true }))
    })

    const clear = Traced.fn("RedisTier.clear")(function*(namespace: string) {
      yield* CacheTier.checkNamespace(namespace)
      const pattern = `${escapeGlob(entryKey(prefix, `${namespace}:`))}*`
      yield* guard(
        "clear",
        maintenanceTimeout,
        scanEach(
          redis,
          "scan",
          (c, cursor) => c.scanBuffer(cursor, "MATCH", pattern, "COUNT", pageSize),
          (keys) => redis.use("unlink", (c) => c.unlink(...keys))
        )
      )
    })

    return CacheTier.make({
      name: "redis" as const,
      prefix,
      getMany,
      setMany,
      delete: deleteKeys,
      invalidateTags,
      clear
    })
  })
