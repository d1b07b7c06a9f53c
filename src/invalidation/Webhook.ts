/**
 * The pure parts of the Drupal webhook (`POST /webhooks/drupal`): signing and verifying a
 * delivery, the timestamp window, the replay guard, the event schema and the cache tags an event
 * invalidates. No I/O here; the HTTP handler (`http/AdminHandlers.ts`) reads the body, the clock
 * and the configuration and calls these.
 *
 * **Protocol.** Drupal sends the JSON body with two headers:
 *
 * - `X-Drupal-Timestamp`: the unix time of the delivery, in whole seconds;
 * - `X-Drupal-Signature`: `sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body bytes>" keyed with
 *   WEBHOOK_SECRET>` (see {@link sign}).
 *
 * A delivery is accepted when its signature matches (compared in constant time), its timestamp is
 * within the tolerance of the gateway's clock either way, and the same signature was not accepted
 * before (see {@link ReplayGuard}). The signature covers the timestamp, so an old delivery cannot
 * be made fresh without the secret.
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Redacted, Schema } from "effect"
import { createHmac, timingSafeEqual } from "node:crypto"
import { itemTag, SEARCH_TAG } from "../content/CacheKeys.js"

/** Header carrying the delivery's unix time in seconds (lower case, as Node presents headers). */
export const TIMESTAMP_HEADER = "x-drupal-timestamp"

/** Header carrying `sha256=<hex>` (lower case, as Node presents headers). */
export const SIGNATURE_HEADER = "x-drupal-signature"

/** Largest webhook body accepted, in bytes; larger ones are refused before any HMAC is computed. */
export const MAX_WEBHOOK_BODY_BYTES = 64 * 1024

/** Most content ids one event may carry. */
export const MAX_EVENT_IDS = 1000

/** Default number of accepted signatures the replay guard remembers. */
export const REPLAY_MEMORY = 10_000

/** A shared secret, plain or redacted. */
export type Secret = string | Redacted.Redacted<string>

const reveal = (secret: Secret): string => (typeof secret === "string" ? secret : Redacted.value(secret))

/** The raw HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret` (32 bytes). */
const digest = (secret: Secret, timestamp: number | string, body: Uint8Array | string): Buffer =>
  createHmac("sha256", reveal(secret)).update(`${timestamp}.`).update(body).digest()

/**
 * The `X-Drupal-Signature` value for a delivery: `sha256=` followed by the lower-case hex
 * HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret`. `body` must be the exact bytes sent
 * (a string is taken as UTF-8). For Drupal-side code and tests.
 */
export const sign = (secret: Secret, timestamp: number | string, body: Uint8Array | string): string =>
  `sha256=${digest(secret, timestamp, body).toString("hex")}`

const SIGNATURE = /^sha256=([0-9a-fA-F]{64})$/

/**
 * Whether `header` is the signature of `body` at `timestamp` under `secret`. The comparison of
 * the two digests is constant-time (`crypto.timingSafeEqual`); only the header's public shape
 * (`sha256=` + 64 hex digits) is checked before it. Never throws.
 */
export const verifySignature = (
  secret: Secret,
  timestamp: string,
  body: Uint8Array,
  header: string | undefined
): boolean => {
  const match = header === undefined ? null : SIGNATURE.exec(header.trim())
  if (match === null) return false
  const presented = Buffer.from(match[1]!, "hex")
  return timingSafeEqual(presented, digest(secret, timestamp, body))
}

/** A timestamp header as unix seconds: 1 to 12 decimal digits, nothing else. */
export const parseTimestamp = (header: string | undefined): number | undefined => {
  const value = header?.trim()
  return value !== undefined && /^\d{1,12}$/.test(value) ? Number(value) : undefined
}

/** Whether `seconds` is within `toleranceMs` of `nowMs`, in the past or the future (bounds included). */
export const withinTolerance = (seconds: number, nowMs: number, toleranceMs: number): boolean =>
  Math.abs(nowMs - seconds * 1000) <= toleranceMs

/**
 * Why a delivery was refused, with its stable client `code`:
 *
 * | code | when |
 * | --- | --- |
 * | `unauthorized` | a header is missing or malformed, or the signature does not match the body |
 * | `stale_signature` | the signature matches but the timestamp is outside the tolerance (check clocks) |
 * | `replayed` | the same signature was already accepted within the tolerance window |
 */
export class WebhookRejection {
  readonly _tag = "WebhookRejection"
  constructor(
    readonly code: "unauthorized" | "stale_signature" | "replayed",
    readonly message: string
  ) {}
}

/** A delivery whose signature and timestamp were verified. */
export interface VerifiedDelivery {
  /** The delivery's unix time, in seconds. */
  readonly timestamp: number
  /** The signature's hex digest: the replay guard's key. */
  readonly signature: string
  /** When the signature stops being acceptable anyway (epoch ms): timestamp + tolerance. */
  readonly expiresAt: number
}

/** Input of {@link verifyDelivery}. */
export interface DeliveryInput {
  readonly secret: Secret
  readonly timestampHeader: string | undefined
  readonly signatureHeader: string | undefined
  /** The raw body bytes, exactly as received. */
  readonly body: Uint8Array
  readonly nowMs: number
  readonly toleranceMs: number
}

/**
 * Verifies a delivery's headers against its raw body: the signature first (constant-time), then
 * the timestamp window, so `stale_signature` is only ever said of an authentic delivery and
 * points at clock skew. Replays are not checked here (see {@link ReplayGuard}).
 */
export const verifyDelivery = (input: DeliveryInput): Either.Either<VerifiedDelivery, WebhookRejection> => {
  const timestamp = parseTimestamp(input.timestampHeader)
  if (timestamp === undefined) {
    return Either.left(new WebhookRejection("unauthorized", "X-Drupal-Timestamp must be unix seconds"))
  }
  if (input.signatureHeader === undefined) {
    return Either.left(new WebhookRejection("unauthorized", "X-Drupal-Signature is missing"))
  }
  if (!verifySignature(input.secret, input.timestampHeader!.trim(), input.body, input.signatureHeader)) {
    return Either.left(new WebhookRejection("unauthorized", "X-Drupal-Signature does not match the body"))
  }
  if (!withinTolerance(timestamp, input.nowMs, input.toleranceMs)) {
    return Either.left(
      new WebhookRejection("stale_signature", "X-Drupal-Timestamp is outside the accepted window; check the clocks")
    )
  }
  return Either.right({
    timestamp,
    signature: input.signatureHeader.trim().slice("sha256=".length).toLowerCase(),
    expiresAt: timestamp * 1000 + input.toleranceMs
  })
}

/**
 * The signatures accepted recently, so that a delivery is accepted at most once.
 *
 * Bounded: at most `capacity` signatures are kept; each is forgotten when it expires (its
 * timestamp + tolerance, after which the timestamp check refuses it anyway) or, when more than
 * `capacity` deliveries arrive within one window, oldest first. Only verified deliveries are
 * recorded, so an outsider cannot flush the memory. The memory is per process: a replay sent to
 * another instance is not detected there (it only repeats an idempotent invalidation).
 *
 * Synchronous; `accept` checks and records in one step, so two concurrent fibers cannot both
 * accept the same signature.
 */
export interface ReplayGuard {
  /**
   * `true` (and the signature is recorded until `expiresAt`) when `signature` was not accepted
   * before or its record has expired at `nowMs`; `false` for a replay.
   */
  readonly accept: (signature: string, expiresAt: number, nowMs: number) => boolean
  /** Signatures currently remembered. */
  readonly size: () => number
}

/** A new, empty {@link ReplayGuard} remembering at most `capacity` signatures. */
export const makeReplayGuard = (capacity: number = REPLAY_MEMORY): ReplayGuard => {
  if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError("capacity must be a whole number >= 1")
  // Insertion order ≈ arrival order, so expired entries are mostly at the front.
  const seen = new Map<string, number>()
  const sweep = (nowMs: number) => {
    for (const [signature, expiresAt] of seen) {
      if (expiresAt > nowMs) break
      seen.delete(signature)
    }
  }
  return {
    accept: (signature, expiresAt, nowMs) => {
      sweep(nowMs)
      const known = seen.get(signature)
      if (known !== undefined && known > nowMs) return false
      seen.delete(signature)
      seen.set(signature, expiresAt)
      while (seen.size > capacity) seen.delete(seen.keys().next().value!)
      return true
    },
    size: () => seen.size
  }
}

const ContentId = Schema.Int.pipe(
  Schema.positive(),
  Schema.annotations({ message: () => "must be a positive whole number" })
)

/** The body of a webhook delivery. Unknown fields are ignored (Drupal may add some). */
export const WebhookEvent = Schema.Struct({
  event: Schema.Literal("content.created", "content.updated", "content.deleted").annotations({
    message: () => "must be content.created, content.updated or content.deleted"
  }),
  ids: Schema.Array(ContentId).pipe(
    Schema.maxItems(MAX_EVENT_IDS, { message: () => `must hold at most ${MAX_EVENT_IDS} ids` })
  ).annotations({ message: () => "must be an array of content ids" })
}).annotations({
  identifier: "WebhookEvent",
  description: "A content change in Drupal",
  message: () => "must be a JSON object"
})
export type WebhookEvent = typeof WebhookEvent.Type

/** A request body that is not valid JSON or does not match its schema; `field` names where. */
export class InvalidPayload {
  readonly _tag = "InvalidPayload"
  constructor(readonly field: string, readonly message: string) {}
}

/** The first issue of a schema failure as an {@link InvalidPayload} naming its field (`body` at the top). */
export const toInvalidPayload = (error: ParseResult.ParseError): InvalidPayload => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const field = issue === undefined || issue.path.length === 0 ? "body" : issue.path.join(".")
  return new InvalidPayload(field, `${field}: ${issue?.message ?? "invalid"}`)
}

const decoder = new TextDecoder("utf-8", { fatal: true })

/** A body as JSON: UTF-8 text holding one JSON value. The message never echoes the body. */
export const parseJson = (body: Uint8Array): Either.Either<unknown, InvalidPayload> => {
  try {
    return Either.right(JSON.parse(decoder.decode(body)))
  } catch {
    return Either.left(new InvalidPayload("body", "body: must be a JSON document (UTF-8)"))
  }
}

const decodeWebhookEvent = Schema.decodeUnknownEither(WebhookEvent, { errors: "first" })

/** A delivery's raw body as a {@link WebhookEvent}. */
export const decodeEvent = (body: Uint8Array): Either.Either<WebhookEvent, InvalidPayload> =>
  Either.flatMap(parseJson(body), (json) => Either.mapLeft(decodeWebhookEvent(json), toInvalidPayload))

/**
 * The cache tags an event invalidates, without duplicates: `item:<id>` for each id (its JSON, its
 * Markdown and every search page listing it), plus, for `content.created`, `SEARCH_TAG` (a new
 * item can belong on any search page, including pages that list none of the ids).
 */
export const tagsForEvent = (event: WebhookEvent): ReadonlyArray<string> => {
  const tags = new Set<string>()
  if (event.event === "content.created") tags.add(SEARCH_TAG)
  for (const id of event.ids) tags.add(itemTag(id))
  return Array.from(tags)
}
