/**
 * The invalidation bus between gateway instances: what one instance invalidates, every other
 * drops from its memory tier. Redis pub/sub when Redis is configured (one subscriber connection
 * per instance), PostgreSQL `LISTEN/NOTIFY` otherwise.
 *
 * Messages are small JSON objects `{v: 1, from, keys?, tags?, namespace?}`; an instance ignores
 * its own. When the subscription was interrupted (the bus server went away and came back), the
 * instance may have missed invalidations, so `onReconnect` runs: the cache drops its memory tier.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Runtime, type Scope } from "effect"
import Pg from "pg"
import { settleWithin } from "../concurrency/Release.js"
import type { Redis } from "../redis/Redis.js"
import type { CacheBus, InvalidationMessage } from "./TieredCache.js"

/** Largest message accepted from the bus; larger ones are ignored (and logged). */
export const MAX_MESSAGE_BYTES = 256 * 1024

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; larger messages are split. */
const PG_PAYLOAD_LIMIT = 7_000

/** What a running bus needs from the cache. */
export interface BusHandlers {
  readonly onMessage: (message: InvalidationMessage) => Effect.Effect<void>
  readonly onReconnect: Effect.Effect<void>
}

interface Wire extends InvalidationMessage {
  readonly v: 1
  readonly from: string
}

const isStringArray = (u: unknown): u is ReadonlyArray<string> => Array.isArray(u) && u.every((x) => typeof x === "string")

/** Parses a bus message; `undefined` for anything malformed, foreign or our own. */
export const parseMessage = (raw: string, self: string): InvalidationMessage | undefined => {
  if (raw.length > MAX_MESSAGE_BYTES) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    return undefined
  }
  if (typeof parsed !== "object" || parsed === null) return undefined
  const m = parsed as Partial<Wire>
  if (m.v !== 1 || typeof m.from !== "string" || m.from === self) return undefined
  if (m.keys !== undefined && !isStringArray(m.keys)) return undefined
  if (m.tags !== undefined && !isStringArray(m.tags)) return undefined
  if (m.namespace !== undefined && typeof m.namespace !== "string") return undefined
  return {
    ...(m.keys === undefined ? {} : { keys: m.keys }),
    ...(m.tags === undefined ? {} : { tags: m.tags }),
    ...(m.namespace === undefined ? {} : { namespace: m.namespace })
  }
}

/** Splits a message so every serialised part stays under `limit` bytes. */
export const splitMessage = (message: InvalidationMessage, from: string, limit: number): Array<string> => {
  const whole = JSON.stringify({ v: 1, from, ...message })
  if (Buffer.byteLength(whole) <= limit) return [whole]
  const parts: Array<string> = []
  const pack = (field: "keys" | "tags", values: ReadonlyArray<string>) => {
    let current: Array<string> = []
    for (const value of values) {
      const next = JSON.stringify({ v: 1, from, [field]: [...current, value] })
      if (Buffer.byteLength(next) > limit && current.length > 0) {
        parts.push(JSON.stringify({ v: 1, from, [field]: current }))
        current = []
      }
      current.push(value)
    }
    if (current.length > 0) parts.push(JSON.stringify({ v: 1, from, [field]: current }))
  }
  if (message.keys !== undefined) pack("keys", message.keys)
  if (message.tags !== undefined) pack("tags", message.tags)
  if (message.namespace !== undefined) parts.push(JSON.stringify({ v: 1, from, namespace: message.namespace }))
  return parts
}

/**
 * A bus over Redis pub/sub on `channel`. The subscriber is a dedicated connection (closed with
 * the scope); publishing uses the shared command connection and never fails the caller (a dead
 * Redis means the other instances' memory copies expire by TTL; that is logged).
 */
export const redisBus = (redis: Redis, channel: string, instanceId: string, handlers: BusHandlers) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const run = Runtime.runFork(runtime)
    const subscriber = yield* redis.duplicate("bus")
    let lost = false
    subscriber.on("message", (from: string, raw: string) => {
      if (from !== channel) return
      const message = parseMessage(raw, instanceId)
      if (message !== undefined) run(handlers.onMessage(message))
    })
    subscriber.on("close", () => {
      lost = true
    })
    subscriber.on("ready", () => {
      // ioredis re-subscribes on reconnect; what was published meanwhile is lost.
      if (!lost) return
      lost = false
      run(Effect.zipRight(Effect.logWarning("cache bus: Redis came back; dropping memory entries that may have missed invalidations"), handlers.onReconnect))
    })
    yield* settleWithin(Duration.seconds(2), () => subscriber.subscribe(channel))
    const bus: CacheBus = {
      publish: (message) =>
        redis.use("PUBLISH", (c) => c.publish(channel, JSON.stringify({ v: 1, from: instanceId, ...message }))).pipe(
          Effect.catchAll((error) =>
            Effect.logWarning("cache bus: publish failed; other instances keep their copies until they expire").pipe(
              Effect.annotateLogs({ error: error.message })
            )
          ),
          Effect.asVoid
        )
    }
    return bus
  })

/**
 * A bus over PostgreSQL `LISTEN/NOTIFY` on `channel` (a plain identifier). One dedicated
 * connection listens and reconnects with a capped backoff when it is lost; NOTIFY goes through
 * the same connection's pool-independent client when it is up, else the message is dropped and
 * logged (as with Redis, the other instances' copies then expire by TTL).
 */
export const postgresBus = (
  connectionString: string,
  channel: string,
  instanceId: string,
  handlers: BusHandlers
): Effect.Effect<CacheBus, never, Scope.Scope> =>
  Effect.gen(function*() {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) return yield* Effect.dieMessage(`invalid NOTIFY channel ${channel}`)
    const runtime = yield* Effect.runtime<never>()
    const run = Runtime.runFork(runtime)
    let client: Pg.Client | undefined
    let closed = false
    let everConnected = false
    let attempt = 0

    const connect = async (): Promise<void> => {
      if (closed) return
      const next = new Pg.Client({ connectionString, application_name: "drupal-accelerator-bus" })
      next.on("error", () => {})
      next.on("notification", (n) => {
        if (n.channel !== channel || n.payload === undefined) return
        const message = parseMessage(n.payload, instanceId)
        if (message !== undefined) run(handlers.onMessage(message))
      })
      next.on("end", () => {
        if (client === next) client = undefined
        if (!closed) setTimeout(() => void connect(), Math.min(100 * 2 ** attempt++, 5_000)).unref()
      })
      try {
        await next.connect()
        await next.query(`LISTEN ${channel}`)
        client = next
        attempt = 0
        if (everConnected) {
          run(Effect.zipRight(
            Effect.logWarning("cache bus: PostgreSQL came back; dropping memory entries that may have missed invalidations"),
            handlers.onReconnect
          ))
        }
        everConnected = true
      } catch {
        await next.end().catch(() => undefined)
      }
    }

    yield* Effect.acquireRelease(
      settleWithin(Duration.seconds(2), connect),
      () =>
        Effect.suspend(() => {
          closed = true
          const current = client
          client = undefined
          return current === undefined ? Effect.void : settleWithin(Duration.seconds(1), () => current.end())
        })
    )

    const bus: CacheBus = {
      publish: (message) =>
        Effect.suspend(() => {
          const current = client
          if (current === undefined) {
            return Effect.logWarning("cache bus: PostgreSQL bus not connected; invalidation not published")
          }
          const parts = splitMessage(message, instanceId, PG_PAYLOAD_LIMIT)
          return Effect.tryPromise(() =>
            Promise.all(parts.map((payload) => current.query("SELECT pg_notify($1, $2)", [channel, payload])))
          ).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning("cache bus: NOTIFY failed").pipe(Effect.annotateLogs({ error: String(error) }))
            ),
            Effect.asVoid
          )
        })
    }
    return bus
  })
