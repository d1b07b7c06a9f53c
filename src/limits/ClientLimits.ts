/**
 * Per-client bounds: how many requests one client (one IP address, or one IPv6 /64) may have in
 * flight, and how fast it may send them. A request beyond either bound is answered `429` with
 * `Retry-After` and the gateway's JSON error body, before any cache or upstream work.
 *
 * The decision is synchronous and local: it runs on the listener for every request, the memory
 * hits included, and costs one map lookup and a token-bucket refill. With Redis, the **rate**
 * bound also holds across instances: every `syncInterval` each instance adds the requests it
 * admitted per client to a shared window in Redis (`rate-limiter-flexible`'s `RateLimiterRedis`,
 * `burst` points per `burst / rate` seconds); a client over the shared window is refused by every
 * instance that hears of it until the window ends. A dead Redis leaves the local bounds in force
 * and is logged. The **concurrency** bound is per instance: it protects each instance's own
 * sockets and fibers.
 *
 * Bounded: at most `maxClients` clients are tracked; idle ones (nothing in flight, bucket full)
 * are dropped first, and when every slot holds an active client the newcomers share one bucket.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Metric, MetricLabel, Option, Schedule, type Scope } from "effect"
import type * as Http from "node:http"
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible"
import { RedisTierConfig } from "../cache/CacheConfig.js"
import { ClientLimitsConfig } from "../Config.js"
import { type FastPath, withRequestId } from "../listener/Listener.js"
import { Redis } from "../redis/Redis.js"

/** Options of {@link make}. A bound of 0 is no bound. */
export interface ClientLimitsOptions {
  /** Requests of one client in flight at once on this instance. */
  readonly maxConcurrent: number
  /** Sustained requests per second of one client. */
  readonly ratePerSecond: number
  /** Requests one client may send at once above the sustained rate (the bucket's size). */
  readonly burst: number
  /** Clients tracked at most. */
  readonly maxClients: number
  /**
   * Proxies in front of the gateway that append to `X-Forwarded-For`: the client is the address
   * that many entries from its end. 0 (the default) uses the socket's address and ignores the header.
   */
  readonly trustProxyHops: number
  /** Paths never limited (load balancer probes). */
  readonly exemptPaths: ReadonlyArray<string>
}

/** The admission step: `true` when the request may go on; otherwise it has been answered 429. */
export interface ClientLimits {
  readonly admit: (req: Http.IncomingMessage, res: Http.ServerResponse) => boolean
  /** A fast path that admits first, then runs `inner`; a refused request counts as answered. */
  readonly guard: (inner: FastPath) => FastPath
  /** Clients tracked now. */
  readonly tracked: () => number
  /** Admitted requests per client since the last cluster sync, taken (emptied) by the sync. */
  readonly takePending: () => ReadonlyMap<string, number>
  /** Refuses `client` on this instance until `until` (epoch ms): the shared window is spent. */
  readonly block: (client: string, until: number) => void
  /** Drops idle clients (what the background sweep runs). */
  readonly sweep: () => void
}

/** Tag of the per-client bounds. */
export const ClientLimits = Context.GenericTag<ClientLimits>("accelerator/ClientLimits")

/** Requests refused by a per-client bound (label `reason`: `concurrency` or `rate`). */
export const clientRefusals = Metric.counter("accelerator_client_limited_total", {
  description: "Requests refused by a per-client bound",
  incremental: true
})
const concurrencyLabels = [MetricLabel.make("reason", "concurrency")]
const rateLabels = [MetricLabel.make("reason", "rate")]

interface ClientState {
  inFlight: number
  tokens: number
  refilledAt: number
  blockedUntil: number
}

/** The key newcomers share while every tracking slot holds an active client. */
export const OVERFLOW_CLIENT = "overflow"

/** IPv4 as is (also when mapped into IPv6); IPv6 cut to its /64, where one subscriber's addresses live. */
export const clientKey = (address: string): string => {
  if (address.startsWith("::ffff:") && address.includes(".")) return address.slice(7)
  if (!address.includes(":")) return address
  const zone = address.indexOf("%")
  const plain = (zone === -1 ? address : address.slice(0, zone)).toLowerCase()
  const [head = "", tail] = plain.split("::") as [string, string | undefined]
  const left = head === "" ? [] : head.split(":")
  const right = tail === undefined || tail === "" ? [] : tail.split(":")
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`
}

/** The address of the client of `req`, given how many proxies in front are trusted. */
export const clientAddress = (req: Http.IncomingMessage, trustProxyHops: number): string => {
  const socketAddress = req.socket.remoteAddress ?? "unknown"
  if (trustProxyHops <= 0) return socketAddress
  const header = req.headers["x-forwarded-for"]
  const forwarded = Array.isArray(header) ? header.join(",") : header
  if (forwarded === undefined || forwarded === "") return socketAddress
  const hops = forwarded.split(",")
  const entry = hops[hops.length - trustProxyHops]?.trim()
  return entry === undefined || entry === "" ? socketAddress : entry
}

const refuse = (req: Http.IncomingMessage, res: Http.ServerResponse, retryAfterSeconds: number, code: string, message: string) => {
  const body = JSON.stringify({ error: { code, message } })
  res.writeHead(
    429,
    withRequestId(req, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "retry-after": String(retryAfterSeconds),
      "cache-control": "no-store"
    })
  )
  res.end(body)
}

/**
 * The bounds over explicit options; `now` is the clock (epoch ms). Nothing is scheduled: the
 * owner runs {@link ClientLimits.sweep} and the cluster sync (see {@link layer}).
 */
export const make = (options: ClientLimitsOptions, now: () => number = Date.now): ClientLimits => {
  const clients = new Map<string, ClientState>()
  let pending = new Map<string, number>()
  const exempt = new Set(options.exemptPaths)
  const rate = options.ratePerSecond
  const burst = Math.max(1, options.burst)
  const limitsRate = rate > 0
  const limitsConcurrency = options.maxConcurrent > 0

  const isIdle = (state: ClientState, at: number) =>
    state.inFlight === 0 && state.blockedUntil <= at &&
    (!limitsRate || state.tokens + ((at - state.refilledAt) / 1000) * rate >= burst)

  const sweep = () => {
    const at = now()
    for (const [key, state] of clients) if (isIdle(state, at)) clients.delete(key)
  }

  const stateOf = (key: string, at: number): ClientState => {
    const known = clients.get(key)
    if (known !== undefined) return known
    if (clients.size >= options.maxClients) sweep()
    const slot = clients.size >= options.maxClients ? OVERFLOW_CLIENT : key
    const existing = clients.get(slot)
    if (existing !== undefined) return existing
    const fresh: ClientState = { inFlight: 0, tokens: burst, refilledAt: at, blockedUntil: 0 }
    clients.set(slot, fresh)
    return fresh
  }

  const admit = (req: Http.IncomingMessage, res: Http.ServerResponse): boolean => {
    if (!limitsRate && !limitsConcurrency) return true
    if (exempt.size > 0) {
      const url = req.url ?? ""
      const q = url.indexOf("?")
      if (exempt.has(q === -1 ? url : url.slice(0, q))) return true
    }
    const at = now()
    const key = clientKey(clientAddress(req, options.trustProxyHops))
    const state = stateOf(key, at)
    if (limitsConcurrency && state.inFlight >= options.maxConcurrent) {
      clientRefusals.unsafeUpdate(1, concurrencyLabels)
      refuse(req, res, 1, "too_many_concurrent_requests", `At most ${options.maxConcurrent} requests of one client may be in flight at once`)
      return false
    }
    if (limitsRate) {
      if (state.blockedUntil > at) {
        clientRefusals.unsafeUpdate(1, rateLabels)
        refuse(req, res, Math.max(1, Math.ceil((state.blockedUntil - at) / 1000)), "rate_limited", `More than ${rate} requests per second from one client`)
        return false
      }
      state.tokens = Math.min(burst, state.tokens + ((at - state.refilledAt) / 1000) * rate)
      state.refilledAt = at
      if (state.tokens < 1) {
        clientRefusals.unsafeUpdate(1, rateLabels)
        refuse(req, res, Math.max(1, Math.ceil((1 - state.tokens) / rate)), "rate_limited", `More than ${rate} requests per second from one client`)
        return false
      }
      state.tokens -= 1
      pending.set(key, (pending.get(key) ?? 0) + 1)
    }
    if (limitsConcurrency) {
      state.inFlight++
      res.once("close", () => {
        state.inFlight--
      })
    }
    return true
  }

  return {
    admit,
    guard: (inner) => (req, res) => !admit(req, res) || inner(req, res),
    tracked: () => clients.size,
    takePending: () => {
      const taken = pending
      pending = new Map()
      return taken
    },
    block: (client, until) => {
      const state = stateOf(client, now())
      state.blockedUntil = Math.max(state.blockedUntil, until)
    },
    sweep
  }
}

/** How often idle clients are dropped. */
const SWEEP_INTERVAL = Duration.seconds(10)

/**
 * Adds this instance's admitted requests to the shared windows in Redis every `interval`, and
 * blocks locally every client whose shared window is spent. Failures are logged (at most once a
 * minute) and leave the local bounds in force.
 */
export const syncWithRedis = (
  limits: ClientLimits,
  limiter: Pick<RateLimiterRedis, "consume">,
  interval: Duration.DurationInput
): Effect.Effect<void, never, Scope.Scope> => {
  let lastWarning = 0
  const syncOnce = Effect.gen(function*() {
    const taken = limits.takePending()
    if (taken.size === 0) return
    yield* Effect.forEach(taken, ([client, count]) =>
      Effect.tryPromise(() => limiter.consume(client, count)).pipe(
        Effect.catchAll((failure) => {
          const cause = failure.error
          if (cause instanceof RateLimiterRes) {
            return Effect.sync(() => limits.block(client, Date.now() + cause.msBeforeNext))
          }
          const at = Date.now()
          if (at - lastWarning < 60_000) return Effect.void
          lastWarning = at
          return Effect.logWarning("client limits: the shared rate window in Redis is unreachable; bounds are per instance until it is back").pipe(
            Effect.annotateLogs({ cause: String((cause as Error)?.message ?? cause) })
          )
        })
      ), { concurrency: 16, discard: true })
  })
  return Effect.asVoid(Effect.forkScoped(Effect.repeat(syncOnce, Schedule.spaced(interval))))
}

/**
 * The bounds from `ClientLimitsConfig`, with the idle sweep, and the cluster-wide rate window
 * when the Redis adapter is in the context.
 */
export const layer: Layer.Layer<ClientLimits, import("effect/ConfigError").ConfigError> = Layer.scoped(
  ClientLimits,
  Effect.gen(function*() {
    const config = yield* ClientLimitsConfig
    const { prefix } = yield* RedisTierConfig
    const limits = make(config)
    yield* Effect.forkScoped(Effect.repeat(Effect.sync(limits.sweep), Schedule.spaced(SWEEP_INTERVAL)))
    const redis = yield* Effect.serviceOption(Redis)
    if (Option.isSome(redis) && config.ratePerSecond > 0) {
      const burst = Math.max(1, config.burst)
      const limiter = new RateLimiterRedis({
        storeClient: redis.value.client,
        keyPrefix: `${prefix}rl`,
        points: burst,
        duration: Math.max(1, Math.ceil(burst / config.ratePerSecond))
      })
      yield* syncWithRedis(limits, limiter, config.syncInterval)
    }
    return limits
  })
)
