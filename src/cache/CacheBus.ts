/**
 * The invalidation bus between gateway instances: what one instance invalidates, every other
 * drops from its memory tier. Redis pub/sub when Redis is configured (one subscriber connection
 * per instance), PostgreSQL `LISTEN/NOTIFY` otherwise.
 *
 * Messages are small JSON objects `{v: 1, from, keys?, tags?, namespace?}`; an instance ignores
 * its own, and anything malformed (not JSON, another version, wrong field types, a namespace
 * `CacheTier.clear` would refuse, larger than {@link MAX_MESSAGE_BYTES}). A message too large for
 * one publication (PostgreSQL: 7,000 bytes; Redis: {@link MAX_MESSAGE_BYTES}) is split into
 * several, each applied on its own.
 *
 * Delivery is at most once: what is published while an instance's subscription is down is lost
 * to it. So whenever the subscription is established again after an outage (or for the first
 * time after the bus started without its server), `onReconnect` runs once the subscription is
 * confirmed: the cache drops its memory tier, which may hold entries that missed invalidations.
 * Until the subscription is back, memory copies on that instance live until their TTL. A
 * connection that stops answering without closing (a partition, a stalled server) is found by a
 * heartbeat (default every 15 s, answer within 2 s) and made again, with the same drop.
 *
 * Ordering: the cache publishes only after every tier has applied the invalidation, so an
 * instance that hears it and reloads never refills its memory from a remote copy not yet removed.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, FiberSet, type Scope } from "effect"
import * as net from "node:net"
import Pg from "pg"
import { settleWithin } from "../concurrency/Release.js"
import type { Redis, RedisError } from "../redis/Redis.js"
import type { CacheBus, InvalidationMessage } from "./TieredCache.js"

/** Largest message accepted from the bus; larger ones are ignored. Redis publications are split to stay under it. */
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
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined
  const m = parsed as Partial<Wire>
  if (m.v !== 1 || typeof m.from !== "string" || m.from === self) return undefined
  if (m.keys !== undefined && !isStringArray(m.keys)) return undefined
  if (m.tags !== undefined && !isStringArray(m.tags)) return undefined
  if (m.namespace !== undefined && (typeof m.namespace !== "string" || m.namespace === "" || m.namespace.includes(":"))) {
    return undefined
  }
  return {
    ...(m.keys === undefined ? {} : { keys: m.keys }),
    ...(m.tags === undefined ? {} : { tags: m.tags }),
    ...(m.namespace === undefined ? {} : { namespace: m.namespace })
  }
}

/**
 * Splits a message so every serialised part stays within `limit` bytes (a single key or tag
 * longer than that still makes a part of its own, over the limit). Linear in the message size.
 */
export const splitMessage = (message: InvalidationMessage, from: string, limit: number): Array<string> => {
  const whole = JSON.stringify({ v: 1, from, ...message })
  if (Buffer.byteLength(whole) <= limit) return [whole]
  const parts: Array<string> = []
  const pack = (field: "keys" | "tags", values: ReadonlyArray<string>) => {
    const empty = Buffer.byteLength(JSON.stringify({ v: 1, from, [field]: [] }))
    let current: Array<string> = []
    let size = empty
    for (const value of values) {
      const bytes = Buffer.byteLength(JSON.stringify(value))
      if (current.length > 0 && size + 1 + bytes > limit) {
        parts.push(JSON.stringify({ v: 1, from, [field]: current }))
        current = []
        size = empty
      }
      size += (current.length > 0 ? 1 : 0) + bytes
      current.push(value)
    }
    if (current.length > 0) parts.push(JSON.stringify({ v: 1, from, [field]: current }))
  }
  if (message.keys !== undefined) pack("keys", message.keys)
  if (message.tags !== undefined) pack("tags", message.tags)
  if (message.namespace !== undefined) parts.push(JSON.stringify({ v: 1, from, namespace: message.namespace }))
  return parts
}

/** Default interval of the bus connections' heartbeat. */
const defaultHeartbeat = Duration.seconds(15)

/** Longest wait for a heartbeat's answer. */
const heartbeatTimeout = Duration.seconds(2)

/** Options of {@link redisBus}. */
export interface RedisBusOptions {
  /**
   * Interval between PINGs on the subscriber connection (default 15 s; 0 disables). A PING not
   * answered within 2 s (or the interval, if shorter) drops the connection so it is made again.
   */
  readonly heartbeat?: Duration.DurationInput
}

/**
 * A bus over Redis pub/sub on `channel`. The subscriber is a dedicated connection (closed with
 * the scope) that subscribes again after every reconnection (also when Redis was down when the
 * bus started) and then runs `onReconnect`; a heartbeat PING drops it when it stops answering.
 * Publishing uses the shared command connection, splits messages larger than
 * {@link MAX_MESSAGE_BYTES}, and never fails the caller (a dead Redis means the other instances'
 * memory copies expire by TTL, or are dropped when their subscription comes back; that is logged).
 */
export const redisBus = (
  redis: Redis,
  channel: string,
  instanceId: string,
  handlers: BusHandlers,
  options: RedisBusOptions = {}
): Effect.Effect<CacheBus, RedisError, Scope.Scope> =>
  Effect.gen(function*() {
    // Message handlers run as fibers of a set owned by the bus's scope: closing it interrupts them.
    const run = yield* FiberSet.makeRuntime<never>()
    const subscriber = yield* redis.duplicate("bus")
    // `live`: our subscription is known to be in place. `starting`: the bus is being built, the
    // cache has nothing in memory yet, so the first subscription needs no drop.
    let live = false
    let starting = true
    let closed = false
    subscriber.on("message", (from: string, raw: string) => {
      if (from !== channel) return
      const message = parseMessage(raw, instanceId)
      if (message !== undefined) run(handlers.onMessage(message))
    })
    subscriber.on("close", () => {
      live = false
    })
    const subscribe = (): Promise<void> =>
      subscriber.subscribe(channel).then(
        () => {
          if (live || closed) return
          live = true
          if (starting) return
          // What was published while we were not subscribed is lost to us.
          run(Effect.zipRight(
            Effect.logWarning("cache bus: Redis subscription is back; dropping memory entries that may have missed invalidations"),
            handlers.onReconnect
          ))
        },
        () => {
          // Not connected: the next "ready" subscribes again.
        }
      )
    // ioredis re-subscribes on its own after a reconnection, but not to a channel whose first
    // SUBSCRIBE failed, and without telling us when it is done: subscribe explicitly (idempotent).
    subscriber.on("ready", () => void subscribe())
    yield* Effect.addFinalizer(() => Effect.sync(() => (closed = true)))
    if (subscriber.status === "ready") yield* settleWithin(Duration.seconds(2), subscribe)
    starting = false
    if (!live) yield* Effect.logWarning("cache bus: Redis not reachable at start; subscribing when it is")
    // A subscriber only reads: a connection that died without a FIN (a network partition, a
    // stalled server) would look healthy for hours. A PING it cannot answer in time drops the
    // socket, and ioredis reconnects (then we subscribe again and drop memory).
    const heartbeat = Duration.toMillis(options.heartbeat ?? defaultHeartbeat)
    if (heartbeat > 0) {
      const bound = Math.min(heartbeat, Duration.toMillis(heartbeatTimeout))
      const beat = Effect.suspend(() => {
        if (subscriber.status !== "ready") return Effect.void
        return Effect.tryPromise(() => subscriber.ping()).pipe(
          Effect.timeout(bound),
          Effect.catchAll(() =>
            subscriber.status !== "ready" ? Effect.void : Effect.zipRight(
              Effect.logWarning("cache bus: Redis subscriber did not answer PING; reconnecting"),
              Effect.sync(() => subscriber.stream?.destroy())
            )
          )
        )
      })
      yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(heartbeat), beat)))
    }
    const bus: CacheBus = {
      publish: (message) =>
        Effect.forEach(
          splitMessage(message, instanceId, MAX_MESSAGE_BYTES),
          (payload) => redis.use("PUBLISH", (c) => c.publish(channel, payload)),
          { discard: true }
        ).pipe(
          Effect.catchAll((error) =>
            Effect.logWarning("cache bus: publish failed; other instances keep their copies until they expire").pipe(
              Effect.annotateLogs({ error: error.message })
            )
          )
        )
    }
    return bus
  })

/** Options of {@link postgresBus}. */
export interface PostgresBusOptions {
  /** Longest pause between reconnection attempts (default 2 s; attempts start at 50 ms and double). */
  readonly maxBackoff?: Duration.DurationInput
  /** Bound on connecting, on one NOTIFY and on one heartbeat query (default 2 s). */
  readonly timeout?: Duration.DurationInput
  /**
   * Interval between `SELECT 1` on the listening connection (default 15 s; 0 disables). One that
   * fails or is not answered within `timeout` (or the interval, if shorter) drops the connection
   * so it is made again.
   */
  readonly heartbeat?: Duration.DurationInput
}

/**
 * A bus over PostgreSQL `LISTEN/NOTIFY` on `channel` (a plain identifier). One dedicated
 * connection listens; a fiber of the scope keeps it: when the connection is lost (or fails its
 * heartbeat) it reconnects with a capped backoff, LISTENs again and then runs `onReconnect`.
 * NOTIFY goes through the same connection when it is up (bounded by `timeout`, messages split
 * under the 8,000-byte payload limit), else the message is dropped and logged (as with Redis,
 * the other instances' copies then expire by TTL). Starting while PostgreSQL is down is allowed
 * (waits at most `timeout` for the first connection).
 */
export const postgresBus = (
  connectionString: string,
  channel: string,
  instanceId: string,
  handlers: BusHandlers,
  options: PostgresBusOptions = {}
): Effect.Effect<CacheBus, never, Scope.Scope> =>
  Effect.gen(function*() {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) return yield* Effect.dieMessage(`invalid NOTIFY channel ${channel}`)
    // Message handlers run as fibers of a set owned by the bus's scope: closing it interrupts them.
    const run = yield* FiberSet.makeRuntime<never>()
    const timeout = Duration.toMillis(options.timeout ?? Duration.seconds(2))
    const maxBackoff = Duration.toMillis(options.maxBackoff ?? Duration.seconds(2))
    const heartbeat = Duration.toMillis(options.heartbeat ?? defaultHeartbeat)
    let client: Pg.Client | undefined
    // The first connection made while the bus is being built needs no drop (memory is empty);
    // any later one does, including a first one made after a start without PostgreSQL.
    let starting = true
    let everConnected = false
    const firstAttempt = yield* Deferred.make<void>()

    /** Connects and LISTENs; the client and a promise settled when its connection ends. */
    const open = Effect.tryPromise(async () => {
      // Our own socket, so that a connection that stopped answering can be dropped for sure
      // (`end()` only half-closes it).
      const socket = new net.Socket()
      const next = new Pg.Client({
        connectionString,
        application_name: "drupal-accelerator-bus",
        connectionTimeoutMillis: timeout,
        query_timeout: timeout,
        keepAlive: true,
        stream: () => socket
      })
      const ended = new Promise<void>((resolve) => next.once("end", () => resolve()))
      next.on("error", () => {})
      next.on("notification", (n) => {
        if (n.channel !== channel || n.payload === undefined) return
        const message = parseMessage(n.payload, instanceId)
        if (message !== undefined) run(handlers.onMessage(message))
      })
      try {
        await next.connect()
        await next.query(`LISTEN ${channel}`)
      } catch (error) {
        await next.end().catch(() => undefined)
        throw error
      }
      return { next, ended, socket }
    })

    /** One connection's life: open, serve until it ends, close with the scope. */
    const session = Effect.acquireRelease(open, ({ next, socket }) =>
      Effect.suspend(() => {
        if (client === next) client = undefined
        return settleWithin(Duration.seconds(1), () => next.end()).pipe(Effect.ensuring(Effect.sync(() => socket.destroy())))
      })).pipe(
        Effect.flatMap(({ ended, next, socket }) =>
          Effect.gen(function*() {
            client = next
            yield* Deferred.succeed(firstAttempt, undefined)
            if (everConnected || !starting) {
              // What was notified while we were not listening is lost to us.
              yield* Effect.logWarning("cache bus: PostgreSQL LISTEN is back; dropping memory entries that may have missed invalidations")
              yield* handlers.onReconnect
            }
            everConnected = true
            if (heartbeat > 0) {
              const beat = Effect.tryPromise(() => next.query("SELECT 1")).pipe(
                Effect.timeout(Math.min(heartbeat, timeout)),
                Effect.catchAll(() =>
                  Effect.zipRight(
                    Effect.logWarning("cache bus: PostgreSQL listening connection did not answer; reconnecting"),
                    Effect.sync(() => socket.destroy())
                  )
                )
              )
              yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(heartbeat), beat)))
            }
            yield* Effect.promise(() => ended)
          })
        ),
        Effect.scoped
      )

    let attempt = 0
    const keep: Effect.Effect<never> = Effect.forever(
      session.pipe(
        Effect.matchEffect({
          onFailure: () => Effect.sync(() => attempt++),
          onSuccess: () => Effect.sync(() => (attempt = 0))
        }),
        Effect.zipRight(Deferred.succeed(firstAttempt, undefined)),
        Effect.zipRight(Effect.suspend(() => Effect.sleep(Math.min(50 * 2 ** attempt, maxBackoff))))
      )
    )
    yield* Effect.forkScoped(keep)
    yield* Deferred.await(firstAttempt).pipe(Effect.timeoutOption(timeout + 500))
    starting = false
    if (client === undefined) yield* Effect.logWarning("cache bus: PostgreSQL not reachable at start; listening when it is")

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
