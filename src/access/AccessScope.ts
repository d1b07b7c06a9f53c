/**
 * Which cache partition a caller belongs to. Two callers share cached content only when Drupal
 * says they see the same things: equal `access_level` and equal `access_hash` from the site's
 * `user.access_context` method (the drupal/ module computes the hash over the values of Drupal's
 * cache contexts `user.permissions` and `user.node_grants:view` plus any site rule, and lists
 * them in `contexts`). When `contexts` holds a per-caller context (`user`, or `session`), access
 * depends on the individual user and the caller gets a partition of its own, keyed by its token
 * fingerprint (never the token). A site without that method (it answers -32601), or a reply
 * without a readable `access_hash` and `contexts`, gets a partition per token fingerprint for
 * signed-in callers, which is always safe. Anonymous callers share one partition.
 *
 * The token → partition mapping is itself cached briefly (memory and Redis, never PostgreSQL)
 * under the token's fingerprint, never the token. The synchronous hit path reads the memory
 * tier's copy, so a partition is trusted exactly as long as its entry is fresh (an entry read
 * from Redis keeps the freshness it was stored with) and clearing the `scope` namespace or
 * deleting the key takes effect on the hit path at once. A refused lookup (Drupal answered 401 or
 * 403, or a JSON-RPC error) is cached the same way for `AUTH_FAILURE_CACHE_MS`, so an unknown
 * token costs one upstream call per that time, not one per request.
 *
 * Fingerprints are keyed: HMAC-SHA-256 under `FINGERPRINT_SECRET` ({@link credentials}), which
 * is required when Redis or PostgreSQL is configured (so that instances agree) and drawn at
 * random per process otherwise.
 *
 * @since 0.1.0
 */
import { Clock, Config, ConfigError, Context, Duration, Effect, Either, FiberSet, Layer, Option, Redacted, Schema } from "effect"
import type { CacheEntry } from "../cache/Envelope.js"
import { type CachePolicy, type LoadTimeout, TieredCache } from "../cache/TieredCache.js"
import { AccessConfig, PostgresConfig, RedisConfig } from "../Config.js"
import {
  type Credentials,
  type FingerprintKey,
  fingerprintKey,
  fromAuthorizationHeader,
  processKey
} from "../drupal/Credentials.js"
import {
  type DrupalError,
  DrupalHttpError,
  DrupalRpcError,
  DrupalTimeoutError,
  isDrupalError,
  isRefusal,
  isTransient,
  JsonRpcCode
} from "../drupal/DrupalError.js"
import { DrupalRpc } from "../drupal/DrupalRpc.js"
import * as Traced from "../telemetry/Traced.js"

/** A caller's partition. `id` goes into cache keys; `level` into logs. */
export interface Partition {
  /**
   * `anon`; `lvl:<level>:<access hash prefix>` (shared by every caller with that level and
   * hash); `usr:<token fingerprint>:<access hash prefix>` (a caller whose access depends on the
   * individual user; the hash part starts a fresh partition when the user's access changes); or
   * `tok:<token fingerprint>` (the site cannot say).
   */
  readonly id: string
  /** The access level Drupal reported (`anonymous`, `free`, `subscriber`, `admin`, …) or `token`. */
  readonly level: string
}

/** The anonymous partition. */
export const anonymousPartition: Partition = { id: "anon", level: "anonymous" }

/** The part of the `user.access_context` result the gateway reads; other fields are ignored. */
export const AccessContext = Schema.Struct({
  access_level: Schema.String.pipe(Schema.pattern(/^[a-z0-9_-]{1,32}$/)),
  access_hash: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{32,128}$/i)),
  contexts: Schema.Array(Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_.:,-]{1,128}$/))).pipe(Schema.maxItems(64))
})
export type AccessContext = typeof AccessContext.Type

/**
 * Cache contexts whose value is the individual caller: a reply that depends on one of them may
 * only be shared with the same caller. `user.*` children (permissions, roles, node grants) are
 * shared by everyone with equal values and are covered by the hash.
 */
export const PER_CALLER_CONTEXTS: ReadonlySet<string> = new Set(["user", "session"])

/** The partition for a readable access context (pure: the contract in one place). */
export const partitionOf = (context: AccessContext, fingerprint: string): Partition => {
  const hash = context.access_hash.slice(0, 16).toLowerCase()
  return context.contexts.some((c) => PER_CALLER_CONTEXTS.has(c))
    ? { id: `usr:${fingerprint.slice(2)}:${hash}`, level: context.access_level }
    : { id: `lvl:${context.access_level}:${hash}`, level: context.access_level }
}

const decodeAccessContext = Schema.decodeUnknown(AccessContext)

/** The service. */
export interface AccessScope {
  /**
   * The caller's partition (cached; one upstream call per token per TTL at most, and one per
   * `failureTtl` for a token Drupal refuses). Fails with the upstream's error (a remembered refusal
   * fails again with the same status and code), or `LoadTimeout` when the lookup outlasts its hard
   * timeout.
   */
  readonly partition: (credentials: Credentials) => Effect.Effect<Partition, DrupalError | LoadTimeout>
  /**
   * The partition if known and fresh right now in the memory tier, without any I/O (for the
   * synchronous hit path); `undefined` otherwise (the caller then takes the slow path).
   */
  readonly partitionSync: (credentials: Credentials) => Partition | undefined
  /** Credentials from an `Authorization` header value, fingerprinted with the deployment's key. */
  readonly credentials: (header: string | undefined) => Credentials
}

/** Tag of the service. */
export const AccessScope = Context.GenericTag<AccessScope>("accelerator/AccessScope")

/** Options of {@link make}. */
export interface AccessScopeOptions {
  readonly ttl: Duration.DurationInput
  /** How long a refused lookup is remembered (0: not at all). Default 10 seconds. */
  readonly failureTtl?: Duration.DurationInput
  /** Key of the token fingerprints. Default: {@link processKey}. */
  readonly key?: FingerprintKey
  /**
   * Share of the TTL, at its end, in which a partition that is used is looked up again in the
   * background (0: never ahead, only once it is past). Default 0.25.
   */
  readonly refreshAhead?: number
  /** Longest a partition lookup may take before it fails (`LoadTimeout`, 504). Default 15 seconds. */
  readonly hardTimeout?: Duration.DurationInput
}

/** Background lookups ahead of expiry running at once, at most. */
const MAX_AHEAD_LOOKUPS = 64

/** Content type of a remembered refusal in the `scope` namespace. */
export const FAILURE_CONTENT_TYPE = "application/vnd.accelerator.scope-failure+json"

/** What is kept of a refusal: status and code, never a body or a message from upstream. */
const Failure = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("http"), status: Schema.Int }),
  Schema.Struct({ kind: Schema.Literal("rpc"), code: Schema.Int })
)
type Failure = typeof Failure.Type
const decodeFailure = Schema.decodeUnknownEither(Schema.parseJson(Failure))

const isMethodMissing = (error: DrupalError): boolean =>
  (error._tag === "DrupalHttpError" && error.rpcError?.code === JsonRpcCode.MethodNotFound) ||
  (error._tag === "DrupalRpcError" && error.code === JsonRpcCode.MethodNotFound)

/**
 * What is remembered of a failed lookup: a definite refusal only (HTTP 401 or 403, or what
 * `isRefusal` calls one: access denied, a method gone, not found). A backend failure of the
 * lookup (-32603, a 5xx, a timeout, an open circuit) is never remembered: it says nothing of
 * the token, and remembering it would fail every request of that caller for the whole TTL.
 */
const failureOf = (error: DrupalError): Failure | undefined => {
  if (isTransient(error)) return undefined
  if (error._tag === "DrupalHttpError" && (error.status === 401 || error.status === 403 || isRefusal(error))) {
    return { kind: "http", status: error.status }
  }
  if (error._tag === "DrupalRpcError" && isRefusal(error)) return { kind: "rpc", code: error.code }
  return undefined
}

const METHOD = "user.access_context"

/** The error a remembered refusal fails with: same status or code as the original. */
const failureError = (failure: Failure): DrupalError =>
  failure.kind === "http"
    ? new DrupalHttpError({ status: failure.status, bodyExcerpt: "", method: METHOD })
    : new DrupalRpcError({ code: failure.code, message: "Refused (remembered)", data: null, method: METHOD, id: null })

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Creates the service. */
export const make = (options: AccessScopeOptions) =>
  Effect.gen(function*() {
    const rpc = yield* DrupalRpc
    const cache = yield* TieredCache
    const key = options.key ?? processKey
    // Past its freshness a partition is asked again, and the answer awaited (no
    // stale-while-revalidate: a revocation takes effect on the next request). Only when that
    // lookup fails transiently (Drupal down, erring, slow) does the stale partition stand in,
    // for at most another TTL; a refusal deletes it and is answered.
    const policy: CachePolicy = {
      fresh: options.ttl,
      grace: options.ttl,
      staleWhileRevalidate: false,
      isRefusal: (error) => isDrupalError(error) && failureOf(error) !== undefined,
      jitter: 0,
      negative: options.failureTtl ?? Duration.seconds(10),
      softTimeout: Duration.seconds(5),
      hardTimeout: options.hardTimeout ?? Duration.seconds(15),
      remote: { redis: true, postgres: false }
    }
    // Parsed entries, by the entry's value: lives exactly as long as the memory tier holds the entry.
    const parsed = new WeakMap<Uint8Array, Either.Either<Partition, DrupalError>>()
    const read = (entry: CacheEntry): Either.Either<Partition, DrupalError> => {
      const known = parsed.get(entry.value)
      if (known !== undefined) return known
      const text = decoder.decode(entry.value)
      const result: Either.Either<Partition, DrupalError> = entry.contentType === FAILURE_CONTENT_TYPE
        ? Either.left(Either.match(decodeFailure(text), {
          onLeft: () => new DrupalHttpError({ status: 401, bodyExcerpt: "", method: METHOD }),
          onRight: failureError
        }))
        : Either.right(JSON.parse(text) as Partition)
      parsed.set(entry.value, result)
      return result
    }
    const keyOf = (credentials: Credentials) => `scope:${credentials.fingerprint}`
    /** The memory tier's fresh entry for the caller, if any. */
    const fromMemory = (credentials: Credentials, now: number): Either.Either<Partition, DrupalError> | undefined => {
      const entry = cache.memory.lookupSync(keyOf(credentials), now)
      return entry !== undefined && now < entry.freshUntil ? read(entry) : undefined
    }

    // A busy caller would otherwise wait for its lookup every TTL, and every request of that
    // caller with it (the lookup queues behind whatever else the origin does). A partition used
    // in the last `refreshAhead` of its freshness is looked up again in the background; the
    // answer is stored as any lookup's (trusted one TTL from itself, a refusal remembered), so a
    // revocation still takes effect within one TTL, and sooner when the caller is busy.
    const aheadMillis = Duration.toMillis(options.ttl) * Math.min(1, Math.max(0, options.refreshAhead ?? 0.25))
    const ahead = new Set<string>()
    const runAhead = yield* FiberSet.makeRuntime<never>()
    const lookAhead = (credentials: Credentials, now: number): void => {
      if (aheadMillis <= 0) return
      const key = keyOf(credentials)
      if (ahead.has(key) || ahead.size >= MAX_AHEAD_LOOKUPS) return
      const entry = cache.memory.lookupSync(key, now)
      if (entry === undefined || now < entry.freshUntil - aheadMillis || now >= entry.freshUntil) return
      if (entry.contentType === FAILURE_CONTENT_TYPE) return
      ahead.add(key)
      runAhead(
        Effect.suspend(() => {
          const since = cache.epoch()
          return Effect.flatMap(lookup(credentials), (loaded) => cache.set(key, loaded, policy, since))
        }).pipe(
          Effect.catchAllCause((cause) => Effect.logDebug("access: a lookup ahead of expiry failed; the next one waits for Drupal").pipe(Effect.annotateLogs({ cause: String(cause).slice(0, 200) }))),
          Effect.ensuring(Effect.sync(() => ahead.delete(key)))
        )
      )
    }

    const tokenPartition = (credentials: Credentials): Partition => ({ id: `tok:${credentials.fingerprint.slice(2)}`, level: "token" })
    const lookup = (credentials: Credentials) =>
      rpc.call(METHOD, undefined, credentials).pipe(
        Effect.flatMap((result) => Effect.option(decodeAccessContext(result))),
        Effect.map((context): Partition =>
          Option.match(context, {
            // A reply we cannot read: fall back to the always-safe partition per token.
            onNone: () => tokenPartition(credentials),
            onSome: (c) => partitionOf(c, credentials.fingerprint)
          })
        ),
        Effect.catchIf(isMethodMissing, () => Effect.succeed(tokenPartition(credentials))),
        Effect.map((partition) => ({
          value: encoder.encode(JSON.stringify(partition)),
          contentType: "application/json",
          tags: ["scope"]
        })),
        Effect.catchAll((error) => {
          const failure = failureOf(error)
          // A refusal is stored like a not-found answer (kept `failureTtl`), then answered as the error.
          return failure === undefined
            ? Effect.fail(error)
            : Effect.succeed({ value: encoder.encode(JSON.stringify(failure)), contentType: FAILURE_CONTENT_TYPE, tags: ["scope"], notFound: true })
        })
      )

    const partition = (credentials: Credentials): Effect.Effect<Partition, DrupalError | LoadTimeout> => {
      if (Option.isNone(credentials.authorization)) return Effect.succeed(anonymousPartition)
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const known = fromMemory(credentials, now)
        if (known === undefined) return resolvePartition(credentials)
        lookAhead(credentials, now)
        return known
      })
    }

    /** The partition from the cache or Drupal (not fresh in memory): the span shows the lookup. */
    const resolvePartition = Traced.fn("AccessScope.partition")(function*(credentials: Credentials) {
      // A lookup that outlasts the hard timeout fails with `LoadTimeout`: 504 upstream_timeout.
      const hit = yield* cache.getOrSet(keyOf(credentials), lookup(credentials), policy)
      return yield* read(hit.entry)
    })

    const partitionSync = (credentials: Credentials): Partition | undefined => {
      if (Option.isNone(credentials.authorization)) return anonymousPartition
      const now = Date.now()
      const known = fromMemory(credentials, now)
      if (known === undefined || Either.isLeft(known)) return undefined
      lookAhead(credentials, now)
      return known.right
    }

    const credentials = (header: string | undefined) => fromAuthorizationHeader(header, key)

    return AccessScope.of({ partition, partitionSync, credentials })
  })

/**
 * The caller's partition id for services keyed by partition (method discovery): a lookup that
 * outlasts its hard timeout is an upstream timeout like any other.
 */
export const partitionIdOf = (scope: AccessScope) => (credentials: Credentials): Effect.Effect<string, DrupalError> =>
  scope.partition(credentials).pipe(
    Effect.map((partition) => partition.id),
    Effect.catchTag("LoadTimeout", (timeout) =>
      Effect.fail(new DrupalTimeoutError({ phase: "call", timeout: timeout.after, method: METHOD })))
  )

/** Shortest `FINGERPRINT_SECRET` accepted. */
export const MIN_SECRET_LENGTH = 32

/**
 * The fingerprint key from `FINGERPRINT_SECRET`: required (a configuration error naming the key
 * otherwise) when Redis or PostgreSQL is configured, so that every instance computes the same
 * fingerprints; drawn at random per process when neither is.
 */
export const fingerprintKeyConfig: Config.Config<FingerprintKey> = Config.all({
  secret: AccessConfig.pipe(Config.map((c) => c.fingerprintSecret)),
  redis: RedisConfig.pipe(Config.map((c) => Option.isSome(c.url))),
  postgres: PostgresConfig.pipe(Config.map((c) => Option.isSome(c.url)))
}).pipe(
  Config.mapOrFail(({ postgres, redis, secret }) => {
    if (Option.isSome(secret)) {
      const value = Redacted.value(secret.value)
      return value.length >= MIN_SECRET_LENGTH
        ? Either.right(fingerprintKey(value))
        : Either.left(ConfigError.InvalidData(["FINGERPRINT_SECRET"], `FINGERPRINT_SECRET must be at least ${MIN_SECRET_LENGTH} characters`))
    }
    return redis || postgres
      ? Either.left(ConfigError.MissingData(
        ["FINGERPRINT_SECRET"],
        "FINGERPRINT_SECRET is required when REDIS_URL or DATABASE_URL is set (every instance must fingerprint tokens with the same key); generate one with `openssl rand -hex 32`"
      ))
      : Either.right(processKey)
  })
)

/** The service from `AccessConfig` (see {@link fingerprintKeyConfig} for the key). */
export const layerConfig = Layer.scoped(
  AccessScope,
  Effect.flatMap(
    Effect.all([AccessConfig, fingerprintKeyConfig]),
    ([config, key]) => make({ ttl: config.ttl, failureTtl: config.failureTtl, key })
  )
)
