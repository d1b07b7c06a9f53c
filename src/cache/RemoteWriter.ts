/**
 * The remote writer of the tiered cache: loaded and backfilled values reach the remote tiers
 * through it, in the background, so a reader never waits for Redis or PostgreSQL.
 *
 * One fiber takes batches of at most `batchSize` from a bounded queue of `capacity` writes and
 * writes each batch to its tiers (the tiers of one batch in parallel). When the queue is full,
 * writes are dropped and counted (`onWriteFailed`), never waited for; a failed batch is counted
 * and logged (at most one warning per tier and second). A write the invalidation guard finds
 * overtaken is skipped when taken from the queue, and one that raced with an invalidation
 * while on its way is deleted again from that tier. At scope close, writes still queued are
 * attempted once more (bounded by the tiers' own timeouts).
 *
 * @since 0.1.0
 */
import { Clock, Deferred, Effect, Exit, FiberId, Queue, type Scope } from "effect"
import type { CacheItem, CacheTier, TierName } from "./CacheTier.js"

/** A write waiting in the queue. */
interface PendingWrite {
  readonly item: CacheItem
  readonly remote: ReadonlyArray<CacheTier>
  /** Guard epoch when the value was read or loaded. */
  readonly since: number
}

/** Options of {@link make}. */
export interface RemoteWriterOptions {
  /** Every remote tier, in order. */
  readonly remotes: ReadonlyArray<CacheTier>
  /** Capacity of the queue; writes beyond it are dropped (and counted). */
  readonly capacity: number
  /** Most items one tier write carries. */
  readonly batchSize: number
  /** Whether an invalidation overtook the value (see `InvalidationGuard`). */
  readonly overtaken: (key: string, tags: ReadonlyArray<string>, since: number) => boolean
  /** `count` entries a tier did not get: dropped (queue full) or their write failed. */
  readonly onWriteFailed?: ((tier: TierName, count?: number) => void) | undefined
}

/** The writer. */
export interface RemoteWriter {
  /** Offers writes of `items` to the `remote` tiers without ever waiting: what does not fit is dropped and counted. */
  readonly enqueue: (items: ReadonlyArray<CacheItem>, remote: ReadonlyArray<CacheTier>, since: number) => Effect.Effect<void>
  /** Waits until every write enqueued before the call has been attempted (written, failed or skipped). */
  readonly flush: Effect.Effect<void>
  /** Writes not done yet: waiting in the queue or being written. */
  readonly pending: Effect.Effect<number>
}

/** Starts the writer's fiber in the current scope. */
export const make = (options: RemoteWriterOptions): Effect.Effect<RemoteWriter, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { remotes, overtaken } = options
    const writes = yield* Queue.bounded<PendingWrite>(Math.max(1, options.capacity))

    // `enqueued` counts writes accepted into the queue, `done` those the writer finished with
    // (in queue order: one writer fiber). Flush waiters wait for `done` to reach their target.
    let enqueued = 0
    let done = 0
    const waiters: Array<{ readonly target: number; readonly deferred: Deferred.Deferred<void> }> = []
    const finished = (n: number) =>
      Effect.sync(() => {
        done += n
        for (let i = waiters.length - 1; i >= 0; i--) {
          const waiter = waiters[i]!
          if (waiter.target <= done) {
            waiters.splice(i, 1)
            Deferred.unsafeDone(waiter.deferred, Exit.void)
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

    const writeBatch = (batch: ReadonlyArray<PendingWrite>) =>
      Effect.suspend(() => {
        const live = batch.filter((w) => !overtaken(w.item.key, w.item.entry.tags, w.since))
        return Effect.forEach(remotes, (tier) => {
          const mine = live.filter((w) => w.remote.includes(tier))
          return mine.length === 0 ? Effect.void : writeTo(tier, mine)
        }, { concurrency: "unbounded", discard: true }) // one fiber per remote tier: at most two
      }).pipe(
        Effect.catchAllCause((cause) => Effect.logError("cache: remote writer defect; batch abandoned", cause)),
        Effect.ensuring(finished(batch.length))
      )

    yield* Effect.forkScoped(
      Effect.forever(Effect.flatMap(Queue.takeBetween(writes, 1, Math.max(1, options.batchSize)), (chunk) => writeBatch([...chunk])))
    )
    // Let writes already queued reach the remote tiers at shutdown (bounded by the tiers' timeouts).
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Queue.takeAll(writes), (chunk) => (chunk.length === 0 ? Effect.void : writeBatch([...chunk])))
    )

    let droppedSinceLog = 0
    let lastDropLog = -Infinity
    const enqueue = (items: ReadonlyArray<CacheItem>, remote: ReadonlyArray<CacheTier>, since: number) =>
      remote.length === 0 || items.length === 0 ? Effect.void : Effect.suspend(() => {
        let dropped = 0
        for (const item of items) {
          enqueued++
          if (!writes.unsafeOffer({ item, remote, since })) {
            enqueued--
            dropped++
          }
        }
        if (dropped === 0) return Effect.void
        for (const tier of remote) options.onWriteFailed?.(tier.name, dropped)
        droppedSinceLog += dropped
        // At most one warning per second under overload, with the count since the last one.
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (now - lastDropLog < 1_000) return Effect.void
          const count = droppedSinceLog
          droppedSinceLog = 0
          lastDropLog = now
          return Effect.logWarning("cache: remote write queue full; writes dropped").pipe(
            Effect.annotateLogs({ capacity: options.capacity, dropped: count })
          )
        })
      })

    const flush: Effect.Effect<void> = Effect.suspend(() => {
      if (done >= enqueued) return Effect.void
      const deferred = Deferred.unsafeMake<void>(FiberId.none)
      waiters.push({ target: enqueued, deferred })
      return Deferred.await(deferred)
    })

    return { enqueue, flush, pending: Effect.sync(() => enqueued - done) }
  })
