/**
 * Which webhook deliveries already had their effect, by `webhook-id`. With Redis configured the
 * check holds across instances: the first instance to record an id (`SET <prefix>wh:<id> 1 NX
 * PX <ms>`, atomic) carries the delivery out; every other sees a duplicate. Every id is also
 * recorded in a bounded in-process memory, which answers alone when Redis is absent or failing
 * (a failure is logged and never refuses a delivery: repeating an invalidation is harmless,
 * losing one is not).
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option } from "effect"
import type { Redis } from "../redis/Redis.js"
import { makeReplayMemory, REPLAY_MEMORY } from "./Webhook.js"

/** The replay check. */
export interface WebhookReplays {
  /**
   * `true` the first time `id` is seen within `rememberMs` (the id is then recorded for that
   * long), `false` for a duplicate. Never fails.
   */
  readonly accept: (id: string, rememberMs: number) => Effect.Effect<boolean>
}

/** Options of {@link make}. */
export interface WebhookReplaysOptions {
  /** Shared memory of the instances; none: this process only. */
  readonly redis: Option.Option<Redis>
  /** Prefix of the Redis keys (the cache's prefix, so that sites never share ids). */
  readonly prefix: string
  /** Ids kept in process. */
  readonly capacity?: number
  /** Bound on the Redis command. */
  readonly timeout?: Duration.DurationInput
}

/** The Redis key of a delivery id (the id's shape is checked before: `[A-Za-z0-9_.:-]{1,128}`). */
export const replayKey = (prefix: string, id: string): string => `${prefix}wh:${id}`

/** Creates the check. */
export const make = (options: WebhookReplaysOptions): WebhookReplays => {
  const memory = makeReplayMemory(options.capacity ?? REPLAY_MEMORY)
  const timeout = options.timeout ?? Duration.seconds(1)
  const local = (id: string, rememberMs: number) => Effect.sync(() => {
    const now = Date.now()
    return memory.accept(id, now + rememberMs, now)
  })
  return {
    accept: (id, rememberMs) =>
      Option.match(options.redis, {
        onNone: () => local(id, rememberMs),
        onSome: (redis) =>
          redis.use("webhook-replay", (c) => c.set(replayKey(options.prefix, id), "1", "PX", Math.ceil(rememberMs), "NX")).pipe(
            Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error("timed out") }),
            Effect.flatMap((reply) =>
              // Recorded in process too, so a later Redis outage still catches this id here.
              Effect.map(local(id, rememberMs), (fresh) => reply === "OK" && fresh)
            ),
            Effect.catchAll((error) =>
              Effect.logWarning("webhook: replay check in Redis failed; checked in this process only").pipe(
                Effect.annotateLogs({ error: error instanceof Error ? error.message : String(error) }),
                Effect.zipRight(local(id, rememberMs))
              )
            )
          )
      })
  }
}
