/**
 * The pure parts of the Drupal webhook (`POST /webhooks/drupal`): signing and verifying a
 * delivery, the timestamp window, the replay memory, the event schema and the cache tags an
 * event invalidates. No I/O here; the HTTP handler (`http/AdminHandlers.ts`) reads the body, the
 * clock and the configuration, and keeps delivery ids (in Redis when configured, see
 * `invalidation/WebhookReplays.ts`).
 *
 * **Protocol: [Standard Webhooks](https://www.standardwebhooks.com/).** Drupal sends the JSON
 * body with three headers:
 *
 * - `webhook-id`: the delivery's unique id (1 to 128 of `A-Z a-z 0-9 _ . : -`); a retry of one
 *   delivery keeps its id;
 * - `webhook-timestamp`: the unix time of the attempt, in whole seconds;
 * - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>">`, keyed with
 *   the bytes of the secret `whsec_<base64>`; several space-separated signatures may be given
 *   (key rotation), one matching is enough.
 *
 * The signature is computed by the `standardwebhooks` package (`Webhook.sign`) and compared in
 * constant time here; the timestamp is checked against the gateway's `Clock` with
 * `WEBHOOK_TOLERANCE_MS` (the package's own `verify` reads `Date.now()` with a fixed window). A
 * delivery is accepted when a signature matches and its timestamp is within the tolerance either
 * way; a delivery id accepted before is a duplicate: answered 2xx without a second effect.
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Redacted, Schema } from "effect"
import { timingSafeEqual } from "node:crypto"
import { Webhook } from "standardwebhooks"
import { itemTag, SEARCH_TAG } from "../content/CacheKeys.js"

/** Header carrying the delivery's id (lower case, as Node presents headers). */
export const ID_HEADER = "webhook-id"

/** Header carrying the delivery's unix time in seconds. */
export const TIMESTAMP_HEADER = "webhook-timestamp"

/** Header carrying `v1,<base64>` signatures, separated by spaces. */
export const SIGNATURE_HEADER = "webhook-signature"

/** Largest webhook body accepted, in bytes; larger ones are refused before any HMAC is computed. */
export const MAX_WEBHOOK_BODY_BYTES = 64 * 1024

/** Most content ids one event may carry. */
export const MAX_EVENT_IDS = 1000

/** Default number of delivery ids the in-memory replay memory keeps. */
export const REPLAY_MEMORY = 10_000

/** The shape of a delivery id: also safe inside a Redis key. */
export const DELIVERY_ID = /^[A-Za-z0-9_.:-]{1,128}$/

/** Fewest secret bytes accepted (the Standard Webhooks secret is 24 to 64 random bytes). */
export const MIN_SECRET_BYTES = 24

/** A shared secret `whsec_<base64>`, plain or redacted. */
export type Secret = string | Redacted.Redacted<string>

const reveal = (secret: Secret): string => (typeof secret === "string" ? secret : Redacted.value(secret))

const SECRET = /^whsec_([A-Za-z0-9+/]+={0,2})$/

/**
 * Why a secret is not a Standard Webhooks secret (`whsec_` and the base64 of at least
 * {@link MIN_SECRET_BYTES} bytes), or `undefined` when it is one. The message never shows the secret.
 */
export const secretProblem = (secret: Secret): string | undefined => {
  const match = SECRET.exec(reveal(secret).trim())
  if (match === null) return "WEBHOOK_SECRET must be whsec_ followed by base64 (e.g. whsec_$(openssl rand -base64 32))"
  return Buffer.from(match[1]!, "base64").length < MIN_SECRET_BYTES
    ? `WEBHOOK_SECRET must hold at least ${MIN_SECRET_BYTES} bytes (base64 after whsec_)`
    : undefined
}

/** A fresh secret: `whsec_` and the base64 of 32 random bytes (for tests and setup scripts). */
export const generateSecret = (random: Uint8Array): string => `whsec_${Buffer.from(random).toString("base64")}`

/**
 * The `webhook-signature` value for a delivery: `v1,` and the base64 HMAC-SHA256 of
 * `"<id>.<timestamp>.<body>"` keyed with the secret's bytes, as computed by `standardwebhooks`.
 * `body` must be the exact bytes sent (a string is taken as UTF-8). For Drupal-side code and tests.
 */
export const sign = (secret: Secret, id: string, timestamp: number | string, body: Uint8Array | string): string =>
  new Webhook(reveal(secret).trim()).sign(id, new Date(Number(timestamp) * 1000), typeof body === "string" ? body : Buffer.from(body))

/** The headers of a signed delivery (lower-case names), for tests and senders. */
export const deliveryHeaders = (
  secret: Secret,
  id: string,
  timestamp: number,
  body: Uint8Array | string
): Record<string, string> => ({
  [ID_HEADER]: id,
  [TIMESTAMP_HEADER]: String(timestamp),
  [SIGNATURE_HEADER]: sign(secret, id, timestamp, body)
})

/**
 * Whether one of the `v1,` signatures in `header` is the signature of `body` sent as `id` at
 * `timestamp` under `secret`. Each comparison is constant-time (`crypto.timingSafeEqual` over
 * equal-length digests); other versions are skipped, as the standard says. Never throws.
 */
export const verifySignature = (
  secret: Secret,
  id: string,
  timestamp: string,
  body: Uint8Array,
  header: string | undefined
): boolean => {
  if (header === undefined) return false
  let expected: Buffer
  try {
    // Compared as base64 text, as the package does: a lenient decoder would accept trailing junk.
    expected = Buffer.from(sign(secret, id, timestamp, body).slice("v1,".length), "latin1")
  } catch {
    return false
  }
  let matched = false
  for (const versioned of header.trim().split(" ").slice(0, 8)) {
    const comma = versioned.indexOf(",")
    if (comma < 0 || versioned.slice(0, comma) !== "v1") continue
    const presented = Buffer.from(versioned.slice(comma + 1), "latin1")
    if (presented.length === expected.length && timingSafeEqual(presented, expected)) matched = true
  }
  return matched
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
 * | `unauthorized` | a header is missing or malformed, or no signature matches the body |
 * | `stale_signature` | a signature matches but the timestamp is outside the tolerance (check clocks) |
 */
export class WebhookRejection {
  readonly _tag = "WebhookRejection"
  constructor(
    readonly code: "unauthorized" | "stale_signature",
    readonly message: string
  ) {}
}

/** A delivery whose signature and timestamp were verified. */
export interface VerifiedDelivery {
  /** The delivery's id: the replay memory's key. */
  readonly id: string
  /** The delivery's unix time, in seconds. */
  readonly timestamp: number
  /** How long the id must be remembered (ms from now): until its timestamp leaves the window. */
  readonly rememberMs: number
}

/** Input of {@link verifyDelivery}. */
export interface DeliveryInput {
  readonly secret: Secret
  readonly idHeader: string | undefined
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
 * points at clock skew. Duplicates are not checked here (see {@link ReplayMemory}).
 */
export const verifyDelivery = (input: DeliveryInput): Either.Either<VerifiedDelivery, WebhookRejection> => {
  const id = input.idHeader?.trim()
  if (id === undefined || !DELIVERY_ID.test(id)) {
    return Either.left(new WebhookRejection("unauthorized", "webhook-id must be 1 to 128 of A-Z a-z 0-9 _ . : -"))
  }
  const timestamp = parseTimestamp(input.timestampHeader)
  if (timestamp === undefined) {
    return Either.left(new WebhookRejection("unauthorized", "webhook-timestamp must be unix seconds"))
  }
  if (input.signatureHeader === undefined) {
    return Either.left(new WebhookRejection("unauthorized", "webhook-signature is missing"))
  }
  if (!verifySignature(input.secret, id, String(timestamp), input.body, input.signatureHeader)) {
    return Either.left(new WebhookRejection("unauthorized", "webhook-signature does not match the body"))
  }
  if (!withinTolerance(timestamp, input.nowMs, input.toleranceMs)) {
    return Either.left(
      new WebhookRejection("stale_signature", "webhook-timestamp is outside the accepted window; check the clocks")
    )
  }
  return Either.right({ id, timestamp, rememberMs: Math.max(1, timestamp * 1000 + input.toleranceMs - input.nowMs) })
}

/**
 * The delivery ids accepted recently, in this process, so that a delivery has its effect at most
 * once (the Redis-backed memory in `WebhookReplays.ts` makes that hold across instances and falls
 * back to this one).
 *
 * Bounded: at most `capacity` ids are kept; each is forgotten when it expires (after which the
 * timestamp check refuses the delivery anyway) or, when more than `capacity` deliveries arrive
 * within one window, oldest first. Only verified deliveries are recorded, so an outsider cannot
 * flush the memory.
 *
 * Synchronous; `accept` checks and records in one step, so two concurrent fibers cannot both
 * accept the same id.
 */
export interface ReplayMemory {
  /**
   * `true` (and the id is recorded until `expiresAt`) when `id` was not accepted before or its
   * record has expired at `nowMs`; `false` for a duplicate.
   */
  readonly accept: (id: string, expiresAt: number, nowMs: number) => boolean
  /** Ids currently remembered. */
  readonly size: () => number
}

/** A new, empty {@link ReplayMemory} remembering at most `capacity` ids. */
export const makeReplayMemory = (capacity: number = REPLAY_MEMORY): ReplayMemory => {
  if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError("capacity must be a whole number >= 1")
  // Insertion order ≈ arrival order, so expired entries are mostly at the front.
  const seen = new Map<string, number>()
  const sweep = (nowMs: number) => {
    for (const [id, expiresAt] of seen) {
      if (expiresAt > nowMs) break
      seen.delete(id)
    }
  }
  return {
    accept: (id, expiresAt, nowMs) => {
      sweep(nowMs)
      const known = seen.get(id)
      if (known !== undefined && known > nowMs) return false
      seen.delete(id)
      seen.set(id, expiresAt)
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
