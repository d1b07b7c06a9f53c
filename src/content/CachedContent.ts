/**
 * The content API through the tiered cache: search pages, items, Markdown, method lists and
 * tool definitions, each cached per caller partition with its namespace's policy, and tagged so
 * that a change to item N invalidates its JSON, its Markdown and every search page listing it.
 *
 * Answers are the bytes to send (JSON or Markdown), with how they were found (`X-Cache`).
 * Failed or partial upstream replies are never stored: a lookup that fails stores nothing, a
 * Markdown stream is stored only once it has ended normally and only up to a size bound.
 *
 * @since 0.1.0
 */
import { Cause, Chunk, Clock, Deferred, Duration, Effect, Either, Exit, FiberId, FiberSet, Option, type Scope, Stream } from "effect"
import { AccessScope } from "../access/AccessScope.js"
import type { CacheEntry } from "../cache/Envelope.js"
import { type CachePolicy, type CacheStatus, type Loaded, type LoadTimeout, TieredCache } from "../cache/TieredCache.js"
import { CachePolicyConfig } from "../Config.js"
import { Discovery } from "../discovery/Discovery.js"
import type { Credentials } from "../drupal/Credentials.js"
import { type DrupalError, isRefusal } from "../drupal/DrupalError.js"
import { toClientError } from "../http/ClientError.js"
import {
  contentCacheKey,
  DENIED_CONTENT_TYPE,
  DISCOVERY_TAG,
  discoveryCacheKey,
  itemTag,
  markdownCacheKey,
  NOT_FOUND_CONTENT_TYPE,
  responseOf,
  SEARCH_TAG,
  searchCacheKey
} from "./CacheKeys.js"
import * as LargeJson from "../markdown/LargeJson.js"
import * as CompressedCopy from "./CompressedCopy.js"
import { Content, type GetOptions } from "./Content.js"
import { ContentItem, decodeResult } from "./ContentModel.js"
import { type SearchQuery } from "./SearchQuery.js"
import * as Traced from "../telemetry/Traced.js"

/** An answer ready to send. */
export interface Served {
  readonly body: Uint8Array
  readonly contentType: string
  readonly httpStatus: number
  readonly cache: CacheStatus
  /** Time spent producing the answer, in milliseconds. */
  readonly millis: number
  /** Time the origin load of this answer took, when this request made one. */
  readonly upstreamMillis?: number
  /** The cached entry answered (its times give `Age` and `Cache-Control`). */
  readonly entry?: CacheEntry
}

/** A Markdown answer: cached bytes, or a stream straight from upstream. */
export type MarkdownAnswer =
  | { readonly _tag: "Cached"; readonly served: Served }
  | { readonly _tag: "Streamed"; readonly stream: Stream.Stream<string, DrupalError> }

/**
 * The document's stream with its first two pieces pulled before anything is answered: the front
 * matter, then the first converted piece of the body, which opens the upstream stream (a free
 * stream connection, the headers, the status). A body refused, a busy stream pool or an upstream
 * timing out is then an error the caller can answer (or stand in for), not a `200` cut after the
 * front matter. The pull lives in the caller's scope (the request's, closed once the response is
 * written or abandoned).
 */
export const openedAhead = <E>(stream: Stream.Stream<string, E>): Effect.Effect<Stream.Stream<string, E>, E, Scope.Scope> =>
  Effect.gen(function*() {
    const pull = yield* Stream.toPull(stream)
    const ahead: Array<Chunk.Chunk<string>> = []
    while (ahead.length < 2) {
      const next = yield* Effect.catchAll(
        Effect.map(pull, Option.some),
        (end) => Option.match(end, { onNone: () => Effect.succeed(Option.none<Chunk.Chunk<string>>()), onSome: (e) => Effect.fail(e) })
      )
      if (Option.isNone(next)) return Stream.fromChunks(...ahead)
      if (Chunk.isNonEmpty(next.value)) ahead.push(next.value)
    }
    return Stream.concat(Stream.fromChunks(...ahead), Stream.repeatEffectChunkOption(pull))
  })

const encoder = new TextEncoder()

/** Reads a streamed answer to its end (which stores it); a cached one is done. */
const drainAnswer = (answer: MarkdownAnswer): Effect.Effect<void, DrupalError> =>
  answer._tag === "Streamed" ? Stream.runDrain(answer.stream) : Effect.void
const MARKDOWN_CONTENT_TYPE = "text/markdown; charset=utf-8"
const json = (value: unknown) => encoder.encode(JSON.stringify(value))

// A missing item is the method's own per-item error (the module's default) or, on a site that
// loads it at parse stage, a parse-stage 400.
const isNotFound = (error: DrupalError): boolean =>
  (error._tag === "DrupalHttpError" && error.method === "content.get_tutorial" && error.rpcError?.code === -32602 &&
    /not (be )?found/i.test(String(error.rpcError.data))) ||
  (error._tag === "DrupalRpcError" && error.method === "content.get_tutorial" && error.code === -32602 &&
    /not (be )?found/i.test(String(error.data)))

// A denial of this caller (HTTP 403, or the method's "Access Denied"): the 403 the client gets.
const denialOf = (error: DrupalError) => {
  const client = toClientError(error)
  return client.status === 403 ? client : undefined
}

const decodeItem = decodeResult(ContentItem, "content.get_tutorial")

// A small cached JSON value (an item without its body); `undefined` (then refused by the
// decoder) should it not parse.
const parseSmall = (bytes: Uint8Array): unknown => {
  try {
    return JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    return undefined
  }
}

/** What a Markdown miss can take from the item's JSON answer held in memory. */
type FromCachedItem =
  | { readonly _tag: "Document"; readonly document: string; readonly age: number }
  | { readonly _tag: "Refused"; readonly loaded: Loaded; readonly left: number }

/** Keys whose document streams into the cache while other misses of it wait, at most. */
const MAX_MARKDOWN_LEADERS = 1024

/** Longest a key leads (a stream nobody ran, a document streaming for longer). */
const MARKDOWN_LEAD_MAX_MS = 30_000

/** How long a Markdown miss waits for the same document streaming for another caller. */
const MARKDOWN_FOLLOW_WAIT = Duration.seconds(5)

/** Stale Markdown documents refreshed in the background at once, at most. */
const MAX_MARKDOWN_REFRESHES = 32

/** Stale answers of the hit path revalidated in the background at once, at most. */
const MAX_REVALIDATIONS = 256

/** What a stale answer of the hit path was the answer to: the route and its parsed request. */
export type Revalidation =
  | { readonly route: "search"; readonly query: SearchQuery }
  | { readonly route: "content"; readonly id: number; readonly options: GetOptions }
  | { readonly route: "markdown"; readonly id: number }

/** The content API through the cache. */
export class CachedContent extends Effect.Service<CachedContent>()("accelerator/CachedContent", {
  scoped: Effect.gen(function*() {
    const content = yield* Content
    const cache = yield* TieredCache
    const access = yield* AccessScope
    const discovery = yield* Discovery
    const config = yield* CachePolicyConfig
    const policyOf = (p: { fresh: Duration.Duration; grace: Duration.Duration }): CachePolicy => ({
      fresh: p.fresh,
      grace: p.grace,
      jitter: config.jitter,
      negative: config.negative,
      denied: config.denied,
      negativeGrace: config.negativeGrace,
      softTimeout: config.softTimeout,
      hardTimeout: config.hardTimeout,
      // A refusal (access denied, gone, unknown) deletes the entry and is answered; stale copies
      // stand in only for transient failures.
      isRefusal
    })
    const policies = {
      search: policyOf(config.search),
      content: policyOf(config.content),
      markdown: policyOf(config.markdown),
      discovery: policyOf(config.discovery)
    }

    const serve = <E>(key: string, lookup: Effect.Effect<{ value: Uint8Array; contentType: string; tags: ReadonlyArray<string>; notFound?: boolean }, E>, policy: CachePolicy) =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        // Set only when this caller's lookup ran (a joiner of a shared load has no upstream time).
        let upstreamMillis: number | undefined
        const timed = Effect.tap(Effect.timed(lookup), ([elapsed]) =>
          Effect.sync(() => {
            upstreamMillis = Duration.toMillis(elapsed)
          })).pipe(Effect.map(([, loaded]) => loaded))
        const hit = yield* cache.getOrSet(key, timed, policy)
        const response = responseOf(hit.entry.contentType)
        return {
          body: hit.entry.value,
          contentType: response.contentType,
          httpStatus: response.status,
          cache: hit.status,
          entry: hit.entry,
          millis: (yield* Clock.currentTimeMillis) - started,
          ...(upstreamMillis === undefined ? {} : { upstreamMillis })
        } satisfies Served
      })

    const searchLoaded = (result: { readonly results: ReadonlyArray<{ readonly id: string | number }> }): Loaded => ({
      value: json(result),
      contentType: "application/json",
      tags: [SEARCH_TAG, ...result.results.map((r) => itemTag(r.id))]
    })

    /**
     * Loads a search page. As for items, a reload of an anonymous page whose memory copy carries
     * the origin's validators is a conditional request, and a 304 renews the copy without a body.
     */
    const loadSearch = (query: SearchQuery, credentials: Credentials, key: string): Effect.Effect<Loaded, DrupalError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const previous = cache.memory.lookupSync(key, now)
        if (!(Option.isNone(credentials.authorization) && previous !== undefined && previous.contentType === "application/json")) {
          return Effect.map(content.search(query, credentials), searchLoaded)
        }
        return Effect.map(content.searchConditional(query, credentials, previous.upstreamValidator), (reply): Loaded => {
          const validator = reply.validator === undefined ? {} : { upstreamValidator: reply.validator }
          return reply._tag === "NotModified"
            ? { value: previous.value, contentType: previous.contentType, tags: previous.tags, ...validator }
            : { ...searchLoaded(reply.result), ...validator }
        })
      })

    const toLoaded = (id: number, found: unknown) =>
      // Serialised in bounded steps: an item's body may be tens of MB.
      Effect.map(LargeJson.stringify(found), (value): Loaded => ({ value, contentType: "application/json", tags: [itemTag(id)] }))

    /**
     * An item refused as the answer to keep: an unknown id is answered 404 and remembered
     * briefly, so a client polling for it does not reach Drupal on every request; a denial is
     * answered 403 and remembered briefly in this caller's partition (the key holds it), so
     * anonymous callers asking for subscriber items are answered from memory. Any other failure:
     * `undefined`.
     */
    const refusalLoaded = (id: number, error: DrupalError): Loaded | undefined => {
      if (isNotFound(error)) {
        return { value: json({ error: { code: "not_found", message: "No such content item" } }), contentType: NOT_FOUND_CONTENT_TYPE, tags: [itemTag(id)], notFound: true }
      }
      const denial = denialOf(error)
      return denial === undefined
        ? undefined
        : { value: json({ error: { code: denial.code, message: denial.message } }), contentType: DENIED_CONTENT_TYPE, tags: [itemTag(id)], denied: true }
    }

    /**
     * Loads an item. A reload of a key whose memory copy carries the origin's validators (an
     * anonymous reply of Drupal's page cache) is conditional, and a 304 renews that copy's bytes
     * without a body; a reload of a copy without validators is sent on its own to get them. A
     * first load goes the ordinary way (batched, deduplicated).
     */
    const loadItem = (id: number, credentials: Credentials, options: GetOptions, key: string): Effect.Effect<Loaded, DrupalError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const previous = cache.memory.lookupSync(key, now)
        const conditional = Option.isNone(credentials.authorization) && previous !== undefined &&
          previous.contentType === "application/json"
        const load: Effect.Effect<Loaded, DrupalError> = conditional
          ? Effect.flatMap(
            content.getConditional(id, credentials, options, previous.upstreamValidator),
            (reply) => {
              const validator = reply.validator === undefined ? {} : { upstreamValidator: reply.validator }
              return reply._tag === "NotModified"
                ? Effect.succeed<Loaded>({ value: previous.value, contentType: previous.contentType, tags: previous.tags, ...validator })
                : Effect.map(toLoaded(id, reply.item), (loaded): Loaded => ({ ...loaded, ...validator }))
            }
          )
          : Effect.flatMap(content.get(id, credentials, options), (found) => toLoaded(id, found))
        return load.pipe(
          Effect.catchAll((error): Effect.Effect<Loaded, DrupalError> => {
            const negative = refusalLoaded(id, error)
            return negative === undefined ? Effect.fail(error) : Effect.succeed(negative)
          })
        )
      })

    const search = (query: SearchQuery, credentials: Credentials): Effect.Effect<Served, DrupalError | LoadTimeout> =>
      Effect.flatMap(access.partition(credentials), (partition) =>
        Effect.suspend(() => {
          const key = searchCacheKey(partition.id, query)
          return serve(key, loadSearch(query, credentials, key), policies.search)
        }))

    const item = (id: number, credentials: Credentials, options: GetOptions): Effect.Effect<Served, DrupalError | LoadTimeout> =>
      Effect.flatMap(access.partition(credentials), (partition) =>
        Effect.suspend(() => {
          const key = contentCacheKey(partition.id, id, options.includeContent, options.format)
          return serve(key, loadItem(id, credentials, options, key), policies.content)
        }))

    /** Loads from the origin and stores, whatever is cached (warming ahead of expiry). */
    const refreshSearch = (query: SearchQuery, credentials: Credentials): Effect.Effect<void, DrupalError | LoadTimeout> =>
      Effect.flatMap(access.partition(credentials), (partition) =>
        Effect.suspend(() => {
          const since = cache.epoch()
          const key = searchCacheKey(partition.id, query)
          return Effect.flatMap(loadSearch(query, credentials, key), (loaded) => cache.set(key, loaded, policies.search, since))
        }))

    /** Loads an item from the origin and stores it, whatever is cached. */
    const refreshItem = (id: number, credentials: Credentials, options: GetOptions): Effect.Effect<void, DrupalError | LoadTimeout> =>
      Effect.flatMap(access.partition(credentials), (partition) =>
        Effect.suspend(() => {
          const since = cache.epoch()
          const key = contentCacheKey(partition.id, id, options.includeContent, options.format)
          return Effect.flatMap(loadItem(id, credentials, options, key), (loaded) => cache.set(key, loaded, policies.content, since))
        }))

    /**
     * Item `id`'s document made from the JSON route's answer for the same partition (the full
     * item, HTML body included) when memory holds it fresh, read from the origin less than a
     * Markdown copy's fresh time ago (a background refresh of a stale document therefore asks
     * the origin), and within `wholeBelow` bytes (the bound of a document converted in one
     * step): the same document a `Whole` reply gives, with no upstream call, and the item's age.
     * A fresh refusal kept there (denied in this partition, or unknown) is the document's too
     * (`Refused`, with the time it has left). `undefined` otherwise (absent, stale, too old,
     * large, not an item).
     */
    const documentFromCachedItem = (id: number, partitionId: string, wholeBelow: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<FromCachedItem | undefined> => {
        if (wholeBelow <= 0) return Effect.succeed(undefined)
        const entry = cache.memory.lookupSync(contentCacheKey(partitionId, id, true, "html"), now)
        if (entry !== undefined && now < entry.freshUntil && (entry.contentType === DENIED_CONTENT_TYPE || entry.contentType === NOT_FOUND_CONTENT_TYPE)) {
          const denied = entry.contentType === DENIED_CONTENT_TYPE
          return Effect.succeed({
            _tag: "Refused",
            loaded: { value: entry.value, contentType: entry.contentType, tags: entry.tags, ...(denied ? { denied: true } : { notFound: true }) },
            left: entry.freshUntil - now
          })
        }
        if (
          entry === undefined || now >= entry.freshUntil || entry.contentType !== "application/json" ||
          entry.value.byteLength > wholeBelow || now - entry.createdAt >= Duration.toMillis(policies.markdown.fresh)
        ) return Effect.succeed(undefined)
        return content.documentOfItem(parseSmall(entry.value)).pipe(
          Effect.map((document): FromCachedItem => ({ _tag: "Document", document, age: Math.max(0, now - entry.createdAt) })),
          Effect.orElseSucceed(() => undefined)
        )
      })

    /**
     * Keeps `result` (a full item the Markdown route read, body included, with the JSON route's
     * call) as the JSON route's answer for the partition, as its own load would have: a later
     * `/content/{id}` is a hit. Nothing is kept when it does not decode as an item.
     */
    const storeItemAnswer = (id: number, partitionId: string, result: unknown, since: number) =>
      decodeItem(result).pipe(
        Effect.flatMap((item) => toLoaded(id, item)),
        Effect.flatMap((loaded) => cache.set(contentCacheKey(partitionId, id, true, "html"), loaded, policies.content, since)),
        Effect.ignore
      )

    /**
     * The document of item `id`: made from the JSON route's answer held in memory when it can be
     * ({@link documentFromCachedItem}), else from the origin. With `wholeBelow > 0` the full
     * item is opened first, in the caller's scope: a reply within `wholeBelow` bytes carries the
     * metadata and the
     * body, converted in one step, stored and answered as `Cached` (`MISS`); a denial or an
     * unknown id is kept under the metadata key (the entry `/content/{id}?include_content=false`
     * uses) and the Markdown key, and answered. A longer reply (or any miss with `wholeBelow` 0)
     * takes the item's metadata through the cache for the front matter, then streams and
     * converts the body; the copy kept while it streams (compressed, up to the bound) is stored
     * only when the stream ended normally. Everything is stored with the epoch the load began
     * in: an invalidation while the document loads wins over it.
     */
    const openMarkdown = (
      id: number,
      credentials: Credentials,
      partitionId: string,
      key: string,
      wholeBelow: number,
      wontStore: () => void = () => {}
    ): Effect.Effect<MarkdownAnswer, DrupalError | LoadTimeout, Scope.Scope> =>
      Effect.gen(function*() {
        const since = cache.epoch()
        const metaKey = contentCacheKey(partitionId, id, false, "html")
        const started = yield* Clock.currentTimeMillis
        // A refusal of the body: the copy and the metadata go on every tier and instance, so the
        // next caller's metadata load meets the refusal before anything is answered.
        const failed = (error: DrupalError) =>
          Effect.zipRight(cache.recordOriginLoad(false), isRefusal(error) ? cache.delete([key, metaKey]) : Effect.void)
        /** Stores a load under the Markdown key and answers it as a cached answer (`MISS`). */
        const storedAnswer = (loaded: Loaded, policy: CachePolicy = policies.markdown, fromOrigin = true) =>
          Effect.gen(function*() {
            const entry = loaded.value.byteLength <= config.markdownMaxBytes ? yield* cache.set(key, loaded, policy, since) : undefined
            const now = yield* Clock.currentTimeMillis
            const response = responseOf(loaded.contentType)
            const served: Served = {
              body: loaded.value,
              contentType: response.contentType,
              httpStatus: response.status,
              cache: "MISS",
              millis: now - started,
              ...(fromOrigin ? { upstreamMillis: now - started } : {}),
              ...(entry === undefined ? {} : { entry })
            }
            return { _tag: "Cached", served } as const
          })
        // The item's JSON answer in this partition, fresh in memory and small: the document is
        // made from it without asking Drupal (clients ask an item's JSON and its Markdown alike).
        const derived = yield* documentFromCachedItem(id, partitionId, wholeBelow)
        if (derived?._tag === "Document") {
          // Fresh for what is left of a Markdown copy's fresh time since the item was read.
          const fresh = Duration.millis(Math.max(1, Duration.toMillis(policies.markdown.fresh) - derived.age))
          return yield* storedAnswer(
            { value: encoder.encode(derived.document), contentType: MARKDOWN_CONTENT_TYPE, tags: [itemTag(id)] },
            { ...policies.markdown, fresh },
            false
          )
        }
        if (derived?._tag === "Refused") {
          // The item's refusal in this partition (denied or unknown) is the document's too, kept
          // for what is left of the JSON answer's time.
          const left = Duration.millis(derived.left)
          return yield* storedAnswer(derived.loaded, { ...policies.markdown, denied: left, negative: left, negativeGrace: 0 }, false)
        }
        // The body first: a small reply is the whole document, metadata included (one call).
        let reply: Stream.Stream<Uint8Array, DrupalError> | undefined
        if (wholeBelow > 0) {
          const first = yield* Effect.either(content.documentOpen(id, credentials, wholeBelow))
          if (Either.isLeft(first)) {
            // Denied or unknown: kept as the item's answer (the metadata key, shared with the
            // JSON route) and as the document's, as a metadata load would have.
            const negative = refusalLoaded(id, first.left)
            if (negative === undefined) {
              yield* failed(first.left)
              return yield* Effect.fail(first.left)
            }
            yield* cache.recordOriginLoad(true)
            yield* cache.set(metaKey, negative, policies.content, since)
            // The same call as the JSON route's: its answer is this refusal too.
            yield* cache.set(contentCacheKey(partitionId, id, true, "html"), negative, policies.content, since)
            return yield* storedAnswer(negative)
          }
          if (first.right._tag === "Whole") {
            yield* cache.recordOriginLoad(true)
            // The reply is the JSON route's (same call, same caller): its answer is kept too.
            yield* storeItemAnswer(id, partitionId, first.right.result, since)
            return yield* storedAnswer({ value: encoder.encode(first.right.markdown), contentType: MARKDOWN_CONTENT_TYPE, tags: [itemTag(id)] })
          }
          reply = first.right.reply
        }
        // A long document: its metadata (through the cache) for the front matter, then its body
        // streamed and converted.
        const meta = yield* serve(metaKey, loadItem(id, credentials, { includeContent: false, format: "html" }, metaKey), policies.content)
        if (meta.httpStatus !== 200) {
          const negative = meta.httpStatus === 403 ? { denied: true } : { notFound: true }
          yield* cache.set(key, { value: meta.body, contentType: meta.httpStatus === 403 ? DENIED_CONTENT_TYPE : NOT_FOUND_CONTENT_TYPE, tags: [itemTag(id)], ...negative }, policies.markdown, since)
          return { _tag: "Cached", served: meta } as const
        }
        const item = yield* decodeItem(parseSmall(meta.body))
        const stream = reply === undefined ? content.markdownOf(id, item, credentials) : content.streamedMarkdown(item, reply)
        const copy = CompressedCopy.make(config.markdownMaxBytes)
        const store = Effect.gen(function*() {
          yield* cache.recordOriginLoad(true)
          const value = yield* copy.finish
          if (value === undefined) return
          yield* cache.set(key, { value, contentType: MARKDOWN_CONTENT_TYPE, tags: [itemTag(id)] }, policies.markdown, since)
        })
        const tapped = stream.pipe(
          Stream.tap((text) => Effect.zipRight(copy.add(text), Effect.sync(() => copy.givenUp() && wontStore()))),
          Stream.tapError(failed),
          Stream.concat(Stream.drain(Stream.fromEffect(store))),
          Stream.ensuring(copy.discard)
        )
        return { _tag: "Streamed", stream: tapped } as const
      })

    /** Markdown keys being refreshed in the background: one refresh per key, at most {@link MAX_MARKDOWN_REFRESHES}. */
    const refreshing = new Set<string>()
    // The refreshes run in the service's scope: interrupted when it closes (shutdown), never orphaned.
    const background = yield* FiberSet.make()

    /**
     * Refreshes a stale document in the background: streamed to its end and stored (nobody
     * reads it). A refusal deletes the copy on every tier and instance (the next caller gets the
     * refusal); a transient failure leaves the copy to stand in until its grace ends.
     */
    const refreshMarkdown = (id: number, credentials: Credentials, partitionId: string, key: string) =>
      Effect.suspend(() => {
        if (refreshing.has(key) || refreshing.size >= MAX_MARKDOWN_REFRESHES) return Effect.void
        refreshing.add(key)
        const run = Effect.scoped(Effect.flatMap(openMarkdown(id, credentials, partitionId, key, config.markdownWholeBelow), drainAnswer)).pipe(
          Effect.catchAll((error) =>
            isRefusal(error)
              ? cache.delete([key])
              : Effect.logDebug("markdown: background refresh failed; the stale copy stands in").pipe(
                Effect.annotateLogs({ item: id, error: String((error as { _tag?: string })?._tag ?? error) })
              )
          ),
          Effect.ensuring(Effect.sync(() => refreshing.delete(key)))
        )
        return Effect.asVoid(FiberSet.run(background, run))
      })

    /** The cached answer for a Markdown key, fresh, or stale within grace (refreshed in the background). */
    const cachedMarkdown = (id: number, credentials: Credentials, partitionId: string, key: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const cached = yield* cache.get(key)
        if (Option.isSome(cached) && now < cached.value.entry.freshUntil) {
          const response = responseOf(cached.value.entry.contentType)
          return Option.some<MarkdownAnswer>({
            _tag: "Cached",
            served: { body: cached.value.entry.value, contentType: response.contentType, httpStatus: response.status, cache: cached.value.status, millis: 0, entry: cached.value.entry }
          })
        }
        // Stale-while-revalidate, as on the JSON routes: a document within its grace is answered
        // at once and refreshed in the background, so a failing origin never turns it into an error.
        if (Option.isSome(cached) && now < cached.value.entry.staleUntil && responseOf(cached.value.entry.contentType).status === 200) {
          yield* refreshMarkdown(id, credentials, partitionId, key)
          const entry = cached.value.entry
          return Option.some<MarkdownAnswer>({
            _tag: "Cached",
            served: { body: entry.value, contentType: entry.contentType, httpStatus: 200, cache: "STALE", millis: 0, entry }
          })
        }
        return Option.none<MarkdownAnswer>()
      })

    /**
     * Documents streaming from upstream into the cache, by key: a settled signal once the stream
     * ended (and was stored), failed, or passed the size bound (it will not be stored). At most
     * {@link MAX_MARKDOWN_LEADERS} keys; beyond, misses stream on their own.
     */
    const leaders = new Map<string, Deferred.Deferred<void>>()

    /**
     * A Markdown answer could not be had (a transient failure; a refusal is answered): a copy
     * within grace that a busy tier did not hand over on the first read is the answer (the
     * fail-safe read), else the error.
     */
    const failSafeMarkdown = (key: string, error: DrupalError | LoadTimeout) =>
      Effect.flatMap(cache.failSafe(key, policies.markdown, error), ({ entry }) =>
        responseOf(entry.contentType).status === 200
          ? Effect.succeed<MarkdownAnswer>({
            _tag: "Cached",
            served: { body: entry.value, contentType: entry.contentType, httpStatus: 200, cache: "STALE", millis: 0, entry }
          })
          : Effect.fail(error))

    /** `answer` for the caller's Markdown key of item `id`, its failure handed to {@link failSafeMarkdown}. */
    const withFailSafe = <R>(
      id: number,
      credentials: Credentials,
      answer: (partitionId: string, key: string) => Effect.Effect<MarkdownAnswer, DrupalError | LoadTimeout, R>
    ) =>
      Effect.flatMap(access.partition(credentials), (partition) => {
        const key = markdownCacheKey(partition.id, id)
        return Effect.catchAll(answer(partition.id, key), (error) => failSafeMarkdown(key, error))
      })

    /**
     * The caller's document, a stream of it left unopened (run it later, in any scope): a miss
     * always streams here, where {@link markdownOpened} converts a small document in one step.
     */
    const markdown = (id: number, credentials: Credentials): Effect.Effect<MarkdownAnswer, DrupalError | LoadTimeout> =>
      Effect.scoped(withFailSafe(id, credentials, (partitionId, key) => markdownOf(id, credentials, partitionId, key, 0)))

    /**
     * {@link markdown}, with a streamed document opened before it is answered
     * ({@link openedAhead}, in the caller's scope): failing to open it (the upstream down, a busy
     * stream pool) is answered from a copy within grace when a tier holds one, else it is the error.
     */
    const markdownOpened = (id: number, credentials: Credentials): Effect.Effect<MarkdownAnswer, DrupalError | LoadTimeout, Scope.Scope> =>
      withFailSafe(id, credentials, (partitionId, key) =>
        Effect.flatMap(markdownOf(id, credentials, partitionId, key, config.markdownWholeBelow), (answer) =>
          answer._tag === "Streamed"
            ? Effect.map(openedAhead(answer.stream), (stream): MarkdownAnswer => ({ _tag: "Streamed", stream }))
            : Effect.succeed(answer)))

    /**
     * The caller's document from the cache, else opened (a reply within `wholeBelow` bytes is
     * converted whole and stored; a longer one streams from the caller's scope), else, when
     * another caller of the partition is already loading it, from the cache once it is stored.
     */
    const markdownOf = (
      id: number,
      credentials: Credentials,
      partitionId: string,
      key: string,
      wholeBelow: number
    ): Effect.Effect<MarkdownAnswer, DrupalError | LoadTimeout, Scope.Scope> =>
      Effect.gen(function*() {
        const found = yield* cachedMarkdown(id, credentials, partitionId, key)
        if (Option.isSome(found)) return found.value
        // The same document is already streaming for another caller of this partition: wait for
        // it to be stored (bounded) and answer from the cache, rather than another upstream stream.
        const leading = leaders.get(key)
        if (leading !== undefined) {
          yield* Effect.timeoutOption(Deferred.await(leading), MARKDOWN_FOLLOW_WAIT)
          const stored = yield* cachedMarkdown(id, credentials, partitionId, key)
          if (Option.isSome(stored)) return stored.value
        }
        if (leaders.has(key) || leaders.size >= MAX_MARKDOWN_LEADERS) return yield* openMarkdown(id, credentials, partitionId, key, wholeBelow)
        const settled = Deferred.unsafeMake<void>(FiberId.none)
        leaders.set(key, settled)
        const settle = () => {
          clearTimeout(expiry)
          if (leaders.get(key) === settled) leaders.delete(key)
          Deferred.unsafeDone(settled, Exit.void)
        }
        // A stream nobody runs (its request abandoned before the first pull) settles nothing:
        // the key leads for at most this long.
        const expiry = setTimeout(settle, MARKDOWN_LEAD_MAX_MS)
        expiry.unref()
        const answer = yield* Effect.onExit(openMarkdown(id, credentials, partitionId, key, wholeBelow, settle), (exit) =>
          Effect.sync(() => {
            if (Exit.isFailure(exit) || exit.value._tag === "Cached") settle()
          }))
        // Settled once the stream is over (its copy stored first), however it ends.
        return answer._tag === "Streamed" ? { _tag: "Streamed", stream: Stream.ensuring(answer.stream, Effect.sync(settle)) } as const : answer
      })

    const discoveryView = (view: "methods" | "tools", credentials: Credentials) =>
      Effect.flatMap(access.partition(credentials), (partition) =>
        serve(
          discoveryCacheKey(partition.id, view),
          Effect.map(discovery.methodSet(credentials), (set) => ({
            value: json(view === "methods" ? { fingerprint: set.fingerprint, methods: set.methods } : { fingerprint: set.fingerprint, tools: set.tools }),
            contentType: "application/json",
            tags: [DISCOVERY_TAG]
          })),
          policies.discovery
        ))

    /**
     * Keys the hit path had answered stale and handed over for revalidation, being revalidated
     * now: one at a time per key, at most {@link MAX_REVALIDATIONS} at once (beyond, the hit path
     * leaves the request to the app, which revalidates it as it answers).
     */
    const revalidating = new Set<string>()
    /**
     * Revalidates a stale memory entry the hit path answered (`key` is the entry's key): the
     * route's own operation runs once in the background, as if a request had come through the
     * app (stale-while-revalidate, refusals, denials, the Markdown document streamed to its end
     * and stored). `false` when it was not started (one for this key already runs, or too many).
     */
    const revalidate = (key: string, target: Revalidation, credentials: Credentials): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        if (revalidating.has(key)) return Effect.succeed(true)
        if (revalidating.size >= MAX_REVALIDATIONS) return Effect.succeed(false)
        revalidating.add(key)
        const run: Effect.Effect<unknown, DrupalError | LoadTimeout> = target.route === "search"
          ? search(target.query, credentials)
          : target.route === "content"
          ? item(target.id, credentials, target.options)
          : Effect.scoped(Effect.flatMap(
            withFailSafe(target.id, credentials, (partitionId, key) => markdownOf(target.id, credentials, partitionId, key, config.markdownWholeBelow)),
            drainAnswer
          ))
        return FiberSet.run(
          background,
          run.pipe(
            Effect.catchAllCause((cause) =>
              Effect.logDebug("cache: revalidation of a stale answer failed").pipe(Effect.annotateLogs({ cause: String(Cause.squash(cause)).slice(0, 200) }))
            ),
            Effect.ensuring(Effect.sync(() => revalidating.delete(key)))
          )
        ).pipe(Effect.as(true))
      })

    // Every public operation is a span (`CachedContent.<op>`), the parent of the cache's and the client's.
    return {
      revalidate,
      search: Traced.fn("CachedContent.search")(search),
      item: Traced.fn("CachedContent.item")(item),
      refreshSearch: Traced.fn("CachedContent.refreshSearch")(refreshSearch),
      refreshItem: Traced.fn("CachedContent.refreshItem")(refreshItem),
      markdown: Traced.fn("CachedContent.markdown")(markdown),
      markdownOpened: Traced.fn("CachedContent.markdownOpened")(markdownOpened),
      methods: Traced.fn("CachedContent.methods")((credentials: Credentials) => discoveryView("methods", credentials)),
      tools: Traced.fn("CachedContent.tools")((credentials: Credentials) => discoveryView("tools", credentials))
    }
  })
}) {}
