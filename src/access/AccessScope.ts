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
 * under the token's fingerprint, never the token; a synchronous copy serves the hit path.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Option, Schema } from "effect"
import { AccessConfig } from "../Config.js"
import { type CachePolicy, type LoadTimeout, TieredCache } from "../cache/TieredCache.js"
import type { Credentials } from "../drupal/Credentials.js"
import { type DrupalError, JsonRpcCode } from "../drupal/DrupalError.js"
import { DrupalRpc } from "../drupal/DrupalRpc.js"

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
   * The caller's partition (cached; one upstream call per token per TTL at most). Fails with the
   * upstream's error, or `LoadTimeout` when the lookup outlasts its hard timeout.
   */
  readonly partition: (credentials: Credentials) => Effect.Effect<Partition, DrupalError | LoadTimeout>
  /** The partition if known right now, without any I/O (for the synchronous hit path). */
  readonly partitionSync: (credentials: Credentials) => Partition | undefined
}

/** Tag of the service. */
export const AccessScope = Context.GenericTag<AccessScope>("accelerator/AccessScope")

/** Options of {@link make}. */
export interface AccessScopeOptions {
  readonly ttl: Duration.DurationInput
  /** Most token mappings held for the synchronous path. */
  readonly maxTokens: number
}

const isMethodMissing = (error: DrupalError): boolean =>
  (error._tag === "DrupalHttpError" && error.rpcError?.code === JsonRpcCode.MethodNotFound) ||
  (error._tag === "DrupalRpcError" && error.code === JsonRpcCode.MethodNotFound)

/** Creates the service. */
export const make = (options: AccessScopeOptions) =>
  Effect.gen(function*() {
    const rpc = yield* DrupalRpc
    const cache = yield* TieredCache
    const ttlMs = Duration.toMillis(options.ttl)
    const policy: CachePolicy = {
      fresh: options.ttl,
      grace: Duration.zero,
      jitter: 0,
      negative: Duration.zero,
      softTimeout: Duration.seconds(5),
      hardTimeout: Duration.seconds(15),
      remote: { redis: true, postgres: false }
    }
    // fingerprint → partition and expiry, insertion order = recency.
    const known = new Map<string, { readonly partition: Partition; readonly until: number }>()
    const remember = (fingerprint: string, partition: Partition, now: number) => {
      known.delete(fingerprint)
      known.set(fingerprint, { partition, until: now + ttlMs })
      while (known.size > options.maxTokens) known.delete(known.keys().next().value!)
    }

    const lookup = (credentials: Credentials) =>
      rpc.call("user.access_context", undefined, credentials).pipe(
        Effect.flatMap((result) => Effect.option(decodeAccessContext(result))),
        Effect.map((context): Partition =>
          Option.match(context, {
            // A reply we cannot read: fall back to the always-safe partition per token.
            onNone: () => ({ id: `tok:${credentials.fingerprint.slice(2)}`, level: "token" }),
            onSome: (c) => partitionOf(c, credentials.fingerprint)
          })
        ),
        Effect.catchIf(isMethodMissing, () => Effect.succeed<Partition>({ id: `tok:${credentials.fingerprint.slice(2)}`, level: "token" })),
        Effect.map((partition) => ({
          value: new TextEncoder().encode(JSON.stringify(partition)),
          contentType: "application/json",
          tags: ["scope"]
        }))
      )

    const partition = (credentials: Credentials): Effect.Effect<Partition, DrupalError | LoadTimeout> => {
      if (Option.isNone(credentials.authorization)) return Effect.succeed(anonymousPartition)
      return Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const cached = known.get(credentials.fingerprint)
        if (cached !== undefined && cached.until > now) return cached.partition
        return yield* resolvePartition(credentials, now)
      })
    }

    /** The partition from the cache or Drupal (not known in memory): the span shows the lookup. */
    const resolvePartition = Effect.fn("AccessScope.partition")(function*(credentials: Credentials, now: number) {
      // A lookup that outlasts the hard timeout fails with `LoadTimeout`: 504 upstream_timeout.
      const hit = yield* cache.getOrSet(`scope:${credentials.fingerprint}`, lookup(credentials), policy)
      const found = JSON.parse(new TextDecoder().decode(hit.entry.value)) as Partition
      remember(credentials.fingerprint, found, now)
      return found
    })

    const partitionSync = (credentials: Credentials): Partition | undefined => {
      if (Option.isNone(credentials.authorization)) return anonymousPartition
      const cached = known.get(credentials.fingerprint)
      return cached !== undefined && cached.until > Date.now() ? cached.partition : undefined
    }

    return AccessScope.of({ partition, partitionSync })
  })

/** The service from `AccessConfig`. */
export const layerConfig = Layer.effect(AccessScope, Effect.flatMap(AccessConfig, make))
