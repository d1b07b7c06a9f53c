/**
 * HTTP semantics of a cached answer, shared by the synchronous hit path and the Effect routes so
 * both answer alike: the strong validator (`ETag`), the conditional request (`If-None-Match` →
 * 304), the content coding negotiated from `Accept-Encoding` (br, gzip, identity, q-values), and
 * the caching headers (`Cache-Control`, `Vary`, `Age`).
 *
 * **Validators.** An entry's ETag is the hash of its body bytes (`cache/BodyHash`: sha256,
 * base64url, 160 bits), so every instance that holds the same bytes gives the same tag; an encoded
 * representation adds the coding (`"<hash>-gz"`, `"<hash>-br"`), and `If-None-Match` matches any
 * representation of the same bytes (weak comparison, RFC 9110 §13.1.2). The hash is computed once
 * per body and kept with it; a body read from Redis or PostgreSQL comes with the hash its
 * envelope carries, so a hit never hashes.
 *
 * **Encoded bodies.** Each coding of a body is made once, asynchronously on the libuv pool (never
 * on the event loop), on its first demand by the Effect app, and kept with the body: the hit
 * path only ever sends bytes that already exist, and falls through to the app when the coding a
 * client asks for has not been made yet. A coding is kept only when it is smaller than the body;
 * bodies under `minBytes` (default 1 KiB) stay identity. The gzip coding of a body the remote
 * tiers hold compressed is the gzip they store (`Envelope.gzipOf`: made once for them, or read
 * back with the body), never made again; a client that accepts br and gzip at the same q gets
 * that gzip rather than a br still to be made.
 *
 * **Bounds.** Everything kept here hangs off the body in a `WeakMap`: it lives exactly as long as
 * the memory tier (or an answer in flight) holds the body. Each kept coding is smaller than the
 * body, so the memory tier's byte bound at most triples in the worst case, ~1.5× for JSON. At
 * most {@link MAX_PENDING_ENCODINGS} encodings run at once; a request beyond that is answered
 * identity. The `Accept-Encoding` parse is memoised per header value in a map of at most
 * {@link MAX_MEMO} values.
 *
 * @since 0.3.0
 */
import { Config, Effect } from "effect"
import * as zlib from "node:zlib"
import { nonNegativeInt } from "../ConfigKeys.js"
import * as BodyHash from "../cache/BodyHash.js"
import * as Envelope from "../cache/Envelope.js"

/** A content coding the gateway can send. */
export type Coding = "br" | "gzip" | "identity"

/** The options of the gateway's HTTP semantics (`HTTP_COMPRESSION*`). */
export interface HttpSemanticsOptions {
  /** Negotiate compression at all (default `true`). */
  readonly compression: boolean
  /** Bodies shorter than this many bytes are always sent identity (default 1024). */
  readonly minBytes: number
}

/** Defaults of {@link HttpSemanticsOptions}. */
export const defaults: HttpSemanticsOptions = { compression: true, minBytes: 1024 }

/** `HTTP_COMPRESSION` (default true) and `HTTP_COMPRESSION_MIN_BYTES` (default 1024). */
export const HttpSemanticsConfig: Config.Config<HttpSemanticsOptions> = Config.all({
  compression: Config.boolean("HTTP_COMPRESSION").pipe(Config.withDefault(defaults.compression)),
  minBytes: nonNegativeInt("HTTP_COMPRESSION_MIN_BYTES", defaults.minBytes)
})

/** At most this many encodings run at once (each holds one libuv pool thread). */
export const MAX_PENDING_ENCODINGS = 4

/** At most this many distinct `Accept-Encoding` values are memoised. */
export const MAX_MEMO = 256

/** `Vary` of every content answer: it depends on the caller and on the negotiated coding. */
export const VARY = "Authorization, Accept-Encoding"

/** The codings kept with one cached body. */
interface Kept {
  /** A coding's bytes, `null` when it is not smaller than the body, absent until made. */
  br?: Uint8Array | null
  gzip?: Uint8Array | null
}

const kept = new WeakMap<Uint8Array, Kept>()
const pending = new WeakMap<Uint8Array, Map<Coding, Promise<Uint8Array | null>>>()
let pendingCount = 0

const keptOf = (body: Uint8Array): Kept => {
  let k = kept.get(body)
  if (k === undefined) {
    k = {}
    kept.set(body, k)
  }
  return k
}

/** Bodies longer than this are hashed for their ETag in steps of this size ({@link prepare}). */
export const HASH_STEP_BYTES = BodyHash.HASH_STEP_BYTES

/**
 * Computes the ETag hash of `body` ahead of {@link etagOf} / {@link validatorHeaders}, which hash
 * synchronously: a body over {@link HASH_STEP_BYTES} is hashed a step at a time, the event loop
 * running between steps. Smaller bodies, and bodies already hashed (or read from a remote tier
 * with their hash), cost nothing here.
 */
export const prepare = BodyHash.prepare

/** The hash part of a body's ETag (no quotes); computed once per body and kept with it. */
export const hashOf = BodyHash.hashOf

/** The strong ETag of `body` sent with `coding`. */
export const etagOf = (body: Uint8Array, coding: Coding): string => {
  const hash = BodyHash.hashOf(body)
  return coding === "identity" ? `"${hash}"` : `"${hash}-${coding === "gzip" ? "gz" : "br"}"`
}

/**
 * Whether an `If-None-Match` value matches `body`: `*`, or any listed tag (weak or strong, any
 * coding suffix) whose hash is the body's. Malformed members are ignored.
 */
export const ifNoneMatchHits = (header: string | undefined, body: Uint8Array): boolean => {
  if (header === undefined || header.length === 0) return false
  if (header.trim() === "*") return true
  const hash = BodyHash.hashOf(body)
  let from = 0
  while (true) {
    const open = header.indexOf("\"", from)
    if (open < 0) return false
    const close = header.indexOf("\"", open + 1)
    if (close < 0) return false
    // The hash has a fixed length (its alphabet includes "-"); a coding suffix follows it.
    const length = close - open - 1
    if (
      (length === BodyHash.HASH_LENGTH || (length > BodyHash.HASH_LENGTH && header[open + 1 + BodyHash.HASH_LENGTH] === "-")) &&
      header.startsWith(hash, open + 1)
    ) return true
    from = close + 1
  }
}

interface Preference {
  readonly br: number
  readonly gzip: number
  readonly identity: number
}

const parseAcceptEncoding = (header: string): Preference => {
  let br: number | undefined
  let gzip: number | undefined
  let identity: number | undefined
  let star: number | undefined
  for (const part of header.split(",")) {
    const [rawName, ...params] = part.split(";")
    const name = rawName!.trim().toLowerCase()
    if (name.length === 0) continue
    let q = 1
    for (const param of params) {
      const [key, value] = param.split("=")
      if (key?.trim().toLowerCase() === "q") {
        const n = Number(value?.trim())
        q = Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0
      }
    }
    if (name === "br") br = q
    else if (name === "gzip" || name === "x-gzip") gzip = q
    else if (name === "identity") identity = q
    else if (name === "*") star = q
  }
  return {
    br: br ?? star ?? 0,
    gzip: gzip ?? star ?? 0,
    // identity is acceptable unless refused by name or by a `*;q=0` that does not name it, but
    // when not named it ranks below any coding the client lists (it lists them to get them).
    identity: identity ?? star ?? Number.MIN_VALUE
  }
}

/** A negotiated coding; `br|gzip`: br, with gzip acceptable at the same q. */
type Negotiated = Coding | "br|gzip"

const memo = new Map<string, Negotiated>()

const negotiated = (header: string | undefined): Negotiated => {
  if (header === undefined || header.length === 0) return "identity"
  const known = memo.get(header)
  if (known !== undefined) return known
  const p = parseAcceptEncoding(header)
  let coding: Negotiated = "identity"
  let best = p.identity
  if (p.gzip > 0 && p.gzip >= best) {
    coding = "gzip"
    best = p.gzip
  }
  if (p.br > 0 && p.br >= best) coding = coding === "gzip" && p.gzip === p.br ? "br|gzip" : "br"
  if (header.length <= 256) {
    if (memo.size >= MAX_MEMO) memo.clear()
    memo.set(header, coding)
  }
  return coding
}

/**
 * The coding to send for an `Accept-Encoding` value: the acceptable one with the highest q,
 * br before gzip before identity on a tie. No header, or nothing acceptable, is identity (the
 * gateway answers rather than sending 406). Memoised per header value.
 */
export const negotiate = (header: string | undefined): Coding => {
  const coding = negotiated(header)
  return coding === "br|gzip" ? "br" : coding
}

/**
 * The bytes to send for `body` in `coding`, if they exist already: the body itself for identity
 * (or when the coding does not pay), the kept encoding, or `undefined` when it has not been made
 * yet. Synchronous and allocation-free once made: this is what the hit path calls.
 */
export const encodedSync = (body: Uint8Array, coding: Coding): { readonly bytes: Uint8Array; readonly coding: Coding } | undefined => {
  if (coding === "identity") return { bytes: body, coding }
  const k = keptOf(body)
  let made = k[coding]
  if (made === undefined && coding === "gzip") {
    // The gzip the remote tiers store (made for them, or read back with the value): same bytes.
    made = Envelope.gzipOf(body)
    if (made !== undefined) k.gzip = made
  }
  if (made === undefined) return undefined
  return made === null ? { bytes: body, coding: "identity" } : { bytes: made, coding }
}

const compress = (body: Uint8Array, coding: "br" | "gzip"): Promise<Uint8Array | null> =>
  new Promise((resolve) => {
    const done = (error: Error | null, result: Buffer) =>
      resolve(error !== null || result.byteLength >= body.byteLength ? null : result)
    if (coding === "gzip") zlib.gzip(body, { level: 6 }, done)
    else {
      zlib.brotliCompress(body, {
        params: {
          // Quality 5: within ~10 % of the best ratio for JSON at a fraction of quality 11's time.
          [zlib.constants.BROTLI_PARAM_QUALITY]: 5,
          [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.byteLength
        }
      }, done)
    }
  })

/**
 * The bytes to send for `body` in `coding`, making the encoding (once per body and coding,
 * concurrent askers share it) when it does not exist yet. Never fails: a zlib failure, or more
 * than {@link MAX_PENDING_ENCODINGS} encodings running, gives identity.
 */
export const encode = (
  body: Uint8Array,
  coding: Coding
): Effect.Effect<{ readonly bytes: Uint8Array; readonly coding: Coding }> =>
  Effect.suspend(() => {
    const ready = encodedSync(body, coding)
    if (ready !== undefined) return Effect.succeed(ready)
    const wanted = coding as "br" | "gzip"
    let running = pending.get(body)?.get(wanted)
    if (running === undefined) {
      if (pendingCount >= MAX_PENDING_ENCODINGS) return Effect.succeed({ bytes: body, coding: "identity" as const })
      pendingCount++
      running = compress(body, wanted).then((made) => {
        pendingCount--
        keptOf(body)[wanted] = made
        pending.get(body)?.delete(wanted)
        return made
      })
      let forBody = pending.get(body)
      if (forBody === undefined) {
        forBody = new Map()
        pending.set(body, forBody)
      }
      forBody.set(wanted, running)
    }
    const promise = running
    return Effect.map(
      Effect.promise(() => promise),
      (made) => made === null ? { bytes: body, coding: "identity" as const } : { bytes: made, coding: wanted }
    )
  })

/**
 * The coding to use for a body of `length` bytes asked with `acceptEncoding`, under `options`.
 * With `body`, a client that accepts br and gzip alike gets the gzip that exists already (see
 * the module documentation) instead of a br to be made.
 */
export const codingFor = (
  options: HttpSemanticsOptions,
  acceptEncoding: string | undefined,
  length: number,
  body?: Uint8Array
): Coding => {
  if (!options.compression || length < options.minBytes) return "identity"
  const coding = negotiated(acceptEncoding)
  if (coding !== "br|gzip") return coding
  // br and gzip tie: a gzip that exists already (kept, or stored by the remote tiers) is sent
  // rather than compressing the body again, unless its br is made too.
  if (body === undefined) return "br"
  const k = kept.get(body)
  if (k?.br !== undefined) return "br"
  return k?.gzip !== undefined || Envelope.gzipOf(body) !== undefined ? "gzip" : "br"
}

/** The timing of a cached entry the caching headers are computed from (epoch ms). */
export interface Timing {
  readonly createdAt: number
  readonly freshUntil: number
  readonly staleUntil: number
}

/**
 * `Cache-Control` of a cached answer. Anonymous callers: `public` with the remaining fresh time
 * as `max-age` and the grace (stale time) as `stale-while-revalidate` and `stale-if-error`, so a
 * CDN keeps exactly what the gateway keeps. Signed-in callers: `private, no-store` (their answer
 * depends on their access, which can be revoked at any time).
 */
export const cacheControl = (anonymous: boolean, timing: Timing, now: number): string => {
  if (!anonymous) return "private, no-store"
  const maxAge = Math.max(0, Math.floor((timing.freshUntil - now) / 1000))
  const grace = Math.max(0, Math.floor((timing.staleUntil - timing.freshUntil) / 1000))
  return `public, max-age=${maxAge}, stale-while-revalidate=${grace}, stale-if-error=${grace}`
}

/** `Age` of a cached answer in whole seconds (never negative). */
export const ageOf = (timing: Timing, now: number): string => String(Math.max(0, Math.floor((now - timing.createdAt) / 1000)))

/**
 * The headers of a 200 or 304 content answer, in the order both paths write them. `Content-
 * Encoding` only when not identity.
 */
export const validatorHeaders = (
  body: Uint8Array,
  coding: Coding,
  anonymous: boolean,
  timing: Timing,
  now: number
): Record<string, string> => {
  const headers: Record<string, string> = {
    etag: etagOf(body, coding),
    "cache-control": cacheControl(anonymous, timing, now),
    vary: VARY,
    age: ageOf(timing, now)
  }
  if (coding !== "identity") headers["content-encoding"] = coding
  return headers
}
