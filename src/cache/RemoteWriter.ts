/**
 * The remote writer of the tiered cache: loaded and backfilled values reach the remote tiers
 * through it, in the background, so a reader never waits for Redis or PostgreSQL.
 *
 * Each remote tier has a lane of its own: a bounded queue of `capacity` writes and one fiber
 * taking batches of at most `batchSize` from it. The lanes are independent, so a tier that is
 * down or slow (every write waiting for its timeout) never holds up or drops the writes of the
 * other: while Redis is dead, PostgreSQL still gets every value. A lane also holds at most
 * `maxBytes` of values (queued or being written; one value alone may pass it), since its writes
 * keep their values alive: 10,000 queued writes of 30 MB items would be 300 GB. When a lane is
 * full, its writes are dropped and counted (`onWriteFailed`), never waited for; a failed batch is counted
 * and logged (at most one warning per tier and second). A write the invalidation guard finds
 * overtaken is skipped when taken from the queue, and one that raced with an invalidation
 * while on its way is deleted again from that tier. At scope close, writes still queued are
 * attempted once more (bounded by the tiers' own timeouts).
 *
 * @since 0.1.0
 */
import { Clock, Effect, Queue, type Scope } from "effect"
import type { CacheItem, CacheTier, TierName } from "./CacheTier.js"

/** A write waiting in a tier's queue. */
interface PendingWrite {
  readonly item: CacheItem
  /** Guard epoch when the value was read or loaded. */
  readonly since: number
}

/** Options of {@link make}. */
export interface RemoteWriterOptions {
  /** Every remote tier, in order. */
  readonly remotes: ReadonlyArray<CacheTier>
  /** Capacity of each tier's queue; writes beyond it are dropped (and counted). */
  readonly capacity: number
  /** Most items one tier write carries. */
  readonly batchSize: number
  /**
   * Most bytes of values one lane holds, queued or being written (default
   * {@link DEFAULT_MAX_BYTES}); a write that would pass it is dropped, unless the lane is empty.
   */
  readonly maxBytes?: number | undefined
  /** Whether an invalidation overtook the value (see `InvalidationGuard`). */
  readonly overtaken: (key: string, tags: ReadonlyArray<string>, since: number) => boolean
  /** `count` entries a tier did not get: dropped (queue full) or their write failed. */
  readonly onWriteFailed?: ((tier: TierName, count?: number) => void) | undefined
}

/** The writer. */
export interface RemoteWriter {
  /** Offers writes of `items` to the `remote` tiers without ever waiting: what does not fit is dropped and counted. */
  readonly enqueue: (items: ReadonlyArray<CacheItem>, remote: ReadonlyArray<CacheTier>, since: number) => Effect.Effect<void>
  /** Waits until every write enqueued before the call has been attempted (written, failed or skipped), on every tier. */
  readonly flush: Effect.Effect<void>
  /**
   * Calls `callback` once every write enqueued before the call has been attempted on every tier
   * (at once when none is pending): {@link flush} without a waiting fiber. The callback runs
   * inside a lane's fiber and must not throw. Not called when the writer's scope closes first.
   */
  readonly whenWritten: (callback: () => void) => void
  /** Writes not done yet, summed over the tiers: waiting in a queue or being written. */
  readonly pending: Effect.Effect<number>
}

/** Default of {@link RemoteWriterOptions.maxBytes}: 256 MiB per lane. */
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024

/** One tier's lane: its queue, its counters and its flush waiters. */
interface Lane {
  readonly tier: CacheTier
  readonly queue: Queue.Queue<PendingWrite>
  /** Bytes of the values of the writes accepted and not finished. */
  bytes: number
  /** Writes accepted into the queue. */
  enqueued: number
  /** Writes the lane's fiber finished with (in queue order: one fiber per lane). */
  done: number
  readonly waiters: Array<{ readonly target: number; readonly done: () => void }>
}

/** Starts one writer fiber per remote tier in the current scope. */
export const make = (options: RemoteWriterOptions): Effect.Effect<RemoteWriter, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { overtaken } = options
    const capacity = Math.max(1, options.capacity)
    const batchSize = Math.max(1, options.batchSize)
    const maxBytes = Math.max(1, options.maxBytes ?? DEFAULT_MAX_BYTES)

    const finished = (lane: Lane, batch: ReadonlyArray<PendingWrite>) =>
      Effect.sync(() => {
        lane.done += batch.length
        for (const w of batch) lane.bytes -= w.item.entry.value.byteLength
        for (let i = lane.waiters.length - 1; i >= 0; i--) {
          const waiter = lane.waiters[i]!
          if (waiter.target <= lane.done) {
            lane.waiters.splice(i, 1)
            waiter.done()
          }
        }
      })

    // While a tier is down every batch fails: at most one warning per tier and second, with the
    // number of entries since the last one.
    const failedSinceLog: Record<TierName, number> = { memory: 0, redis: 0, postgres: 0 }
    const lastFailureLog: Record<TierName, number> = { memory: -Infinity, redis: -Infinity, postgres: -Infinity }
    const writeFailed = (tier: CacheTier, entries: number, reason: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        options.onWriteFailed?.(tier.name, entries)
        failedSinceLog[tier.name] += entries
        if (now - lastFailureLog[tier.name] < 1_000) return Effect.void
        const count = failedSinceLog[tier.name]
        failedSinceLog[tier.name] = 0
        lastFailureLog[tier.name] = now
        return Effect.logWarning("cache: remote write failed; the entry stays in the tiers above").pipe(
          Effect.annotateLogs({ tier: tier.name, entries: count, error: reason })
        )
      })

    const writeTo = (tier: CacheTier, batch: ReadonlyArray<PendingWrite>) =>
      tier.setMany(batch.map((w) => w.item)).pipe(
        Effect.matchEffect({
          onFailure: (error) => writeFailed(tier, batch.length, error.message),
          // An invalidation that ran while this write was on its way may have missed it: undo.
          onSuccess: () => {
            const undo = batch.filter((w) => overtaken(w.item.key, w.item.entry.tags, w.since)).map((w) => w.item.key)
            return undo.length === 0 ? Effect.void : tier.delete(undo).pipe(
              Effect.catchAll((error) =>
                Effect.logWarning("cache: could not undo a write overtaken by an invalidation").pipe(
                  Effect.annotateLogs({ tier: tier.name, entries: undo.length, error: error.message })
                )
              )
            )
          }
        })
      )

    const writeBatch = (lane: Lane, batch: ReadonlyArray<PendingWrite>) =>
      Effect.suspend(() => {
        const live = batch.filter((w) => !overtaken(w.item.key, w.item.entry.tags, w.since))
        return live.length === 0 ? Effect.void : writeTo(lane.tier, live)
      }).pipe(
        Effect.catchAllCause((cause) => Effect.logError("cache: remote writer defect; batch abandoned", cause)),
        Effect.ensuring(finished(lane, batch))
      )

    const lanes = new Map<CacheTier, Lane>()
    for (const tier of options.remotes) {
      const lane: Lane = { tier, queue: yield* Queue.bounded<PendingWrite>(capacity), bytes: 0, enqueued: 0, done: 0, waiters: [] }
      lanes.set(tier, lane)
      yield* Effect.forkScoped(
        Effect.forever(Effect.flatMap(Queue.takeBetween(lane.queue, 1, batchSize), (chunk) => writeBatch(lane, [...chunk])))
      )
      // Let writes already queued reach the tier at shutdown (bounded by the tier's timeouts).
      yield* Effect.addFinalizer(() =>
        Effect.flatMap(Queue.takeAll(lane.queue), (chunk) => (chunk.length === 0 ? Effect.void : writeBatch(lane, [...chunk])))
      )
    }

    let droppedSinceLog = 0
    let lastDropLog = -Infinity
    const enqueue = (items: ReadonlyArray<CacheItem>, remote: ReadonlyArray<CacheTier>, since: number) =>
      remote.length === 0 || items.length === 0 ? Effect.void : Effect.suspend(() => {
        let droppedAll = 0
        for (const tier of remote) {
          const lane = lanes.get(tier)
          if (lane === undefined) continue
          let dropped = 0
          for (const item of items) {
            const size = item.entry.value.byteLength
            if ((lane.bytes === 0 || lane.bytes + size <= maxBytes) && lane.queue.unsafeOffer({ item, since })) {
              lane.enqueued++
              lane.bytes += size
            } else dropped++
          }
          if (dropped > 0) options.onWriteFailed?.(tier.name, dropped)
          droppedAll += dropped
        }
        if (droppedAll === 0) return Effect.void
        droppedSinceLog += droppedAll
        // At most one warning per second under overload, with the count since the last one.
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (now - lastDropLog < 1_000) return Effect.void
          const count = droppedSinceLog
          droppedSinceLog = 0
          lastDropLog = now
          return Effect.logWarning("cache: remote write queue full; writes dropped").pipe(
            Effect.annotateLogs({ capacity, maxBytes, dropped: count })
          )
        })
      })

    // Every lane's target is taken at the call: writes enqueued later are not waited for.
    const whenWritten = (callback: () => void): void => {
      let waiting = 0
      const laneDone = () => {
        if (--waiting === 0) callback()
      }
      for (const lane of lanes.values()) {
        if (lane.done >= lane.enqueued) continue
        waiting++
        lane.waiters.push({ target: lane.enqueued, done: laneDone })
      }
      if (waiting === 0) callback()
    }

    const flush: Effect.Effect<void> = Effect.async<void>((resume) => whenWritten(() => resume(Effect.void)))

    const pending = Effect.sync(() => {
      let count = 0
      for (const lane of lanes.values()) count += lane.enqueued - lane.done
      return count
    })

    return { enqueue, flush, whenWritten, pending }
  })
