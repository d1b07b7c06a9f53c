/**
 * The cache entry and its versioned byte format (the "envelope") shared by the Redis and
 * PostgreSQL tiers. The memory tier keeps {@link CacheEntry} objects as they are and never
 * encodes.
 *
 * Layout, all integers big-endian:
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 1 | magic `0xDA` |
 * | 1 | 1 | format version, {@link FORMAT_VERSION} |
 * | 2 | 1 | flags: bit 0 = body gzip-compressed; every other bit must be 0 |
 * | 3 | 4 | header length `h` in bytes |
 * | 7 | 4 | stored body length `b` in bytes |
 * | 11 | h | header: UTF-8 JSON `{ct, c, f, s, g, n, st?, e?}` (content type, created, fresh until, stale until, tags, raw body length, site, the body's hash) |
 * | 11 + h | b | body (compressed when flag bit 0 is set) |
 *
 * Decoding is total: bad magic, another format version, unknown flags, a length that does not
 * add up (truncated or padded bytes), a header that is not the expected JSON, or a compressed
 * body that does not inflate to exactly `n` bytes (gzip carries a CRC-32) all give
 * `Option.none()`, never a failure or a defect. An uncompressed body has no checksum: flipped
 * bits inside it are not detected (Redis and PostgreSQL do not corrupt values; the envelope
 * guards against format drift and truncation).
 *
 * `e` is the body's hash (`BodyHash`, its ETag), when it is known at encoding (bodies over
 * `BodyHash.HASH_STEP_BYTES` are hashed in steps first): a body read back gets it with
 * {@link decode} and is not hashed again. Envelopes written without it (before it existed)
 * read as before, the body hashed when first answered; a value that is not a hash's shape is
 * ignored.
 *
 * Compression is gzip through the asynchronous `node:zlib` API (libuv thread pool), so large
 * bodies never block the event loop; gzip rather than brotli because its CRC and length trailer
 * make corruption of a compressed body detectable and it is ~10x faster to compress than brotli
 * at a comparable ratio for JSON. A body is compressed only when longer than the caller's
 * threshold and only kept compressed when that saves bytes. The compressed body is a plain gzip
 * of the value at level 6, the same bytes the HTTP layer would make for the `gzip` coding: the
 * gzip of a value written or read back is kept with it ({@link gzipOf}) and sent as it is.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import * as zlib from "node:zlib"
import * as BodyHash from "./BodyHash.js"

/** One cached value with its timing and tags. Times are epoch milliseconds. */
export interface CacheEntry {
  /** The encoded body (e.g. JSON bytes), as served. Treated as immutable once cached. */
  readonly value: Uint8Array
  readonly contentType: string
  readonly createdAt: number
  /** Until this instant the entry is fresh: served without revalidation. */
  readonly freshUntil: number
  /** Until this instant the entry may be served stale (while revalidating); after it, it is gone. */
  readonly staleUntil: number
  /** Invalidation tags, e.g. `node:42`. */
  readonly tags: ReadonlyArray<string>
  /**
   * The origin's validators of the reply this value was made from (Drupal's page cache gives
   * them to anonymous GETs), for a conditional refresh. Kept by the memory tier only: not part
   * of the envelope, so a copy read from Redis or PostgreSQL refreshes unconditionally once.
   */
  readonly upstreamValidator?: { readonly etag?: string; readonly lastModified?: string }
}

/** `true` while `now < freshUntil`. */
export const isFresh = (entry: CacheEntry, now: number): boolean => now < entry.freshUntil

/** `true` while `now < staleUntil`: fresh or stale-but-servable. An unusable entry is a miss. */
export const isUsable = (entry: CacheEntry, now: number): boolean => now < entry.staleUntil

/** First byte of every envelope. */
export const MAGIC = 0xda

/** The format version this module writes and the only one it reads. */
export const FORMAT_VERSION = 1

/** Flag bit: the body is gzip-compressed. */
export const FLAG_GZIP = 0b0000_0001

/** Bytes before the JSON header: magic, version, flags, header length, body length. */
export const FIXED_HEADER_BYTES = 11

/** Default of {@link EncodeOptions.compressAbove}: 16 KiB. */
export const DEFAULT_COMPRESS_ABOVE = 16 * 1024

/** Headers longer than this are refused by the decoder (bounds the JSON parsed per entry). */
export const MAX_HEADER_BYTES = 1024 * 1024

/** Options of {@link encode}. */
export interface EncodeOptions {
  /**
   * Bodies strictly longer than this many bytes are gzip-compressed (and kept compressed only
   * when that is smaller). `Infinity` disables compression. Default {@link DEFAULT_COMPRESS_ABOVE}.
   */
  readonly compressAbove?: number
  /** The site the entry belongs to, written into the header (see {@link decode}'s `site`). */
  readonly site?: string | undefined
}

/** What {@link decodeHeader} reads without touching the body. */
export interface EnvelopeHeader {
  readonly contentType: string
  readonly createdAt: number
  readonly freshUntil: number
  readonly staleUntil: number
  readonly tags: ReadonlyArray<string>
  readonly compressed: boolean
  /** The site the entry belongs to, when its writer named one. */
  readonly site?: string | undefined
  /** Length of the body once inflated. */
  readonly rawLength: number
  /** The body's hash (`BodyHash`), when its writer gave it. */
  readonly hash?: string | undefined
  /** Offset of the body in the envelope. */
  readonly bodyOffset: number
  /** Length of the body as stored. */
  readonly bodyLength: number
}

interface HeaderJson {
  readonly ct: string
  readonly c: number
  readonly f: number
  readonly s: number
  readonly g: ReadonlyArray<string>
  readonly n: number
  readonly st?: string
  readonly e?: string
}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

/**
 * The gzip of each value being or lately compressed: every remote tier stores the same value
 * (the same `Uint8Array`), which is compressed once for all of them. Weak: it goes with the value.
 */
const compressions = new WeakMap<Uint8Array, Promise<Option.Option<Uint8Array>>>()

/**
 * The gzip of a value, when one exists and is smaller: made for the remote tiers, or the
 * compressed body of the envelope the value was read from. Weak: it goes with the value.
 */
const gzips = new WeakMap<Uint8Array, Uint8Array>()

/** Remembers `compressed` as the gzip of `value` when it saves bytes. */
const rememberGzip = (value: Uint8Array, compressed: Uint8Array): void => {
  if (compressed.byteLength < value.byteLength) gzips.set(value, compressed)
}

/**
 * The gzip of `value` (a complete gzip member, `zlib.gzip` at level 6, so the same bytes a
 * `zlib.gzip(value, { level: 6 })` gives) if one already exists: the compression made when the
 * value was written to a remote tier, or the compressed body of the envelope it was decoded
 * from. Lets an HTTP answer send it as the `gzip` coding without compressing again (a 30 MB body
 * read back from PostgreSQL is ~0.5 s of pool CPU to compress). `undefined` otherwise, and for
 * bodies stored uncompressed or whose gzip was not smaller.
 */
export const gzipOf = (value: Uint8Array): Uint8Array | undefined => gzips.get(value)

/** The gzip of `body` in the libuv pool, started once per value (every tier shares it). */
const gzipPromise = (body: Uint8Array): Promise<Option.Option<Uint8Array>> => {
  let compressed = compressions.get(body)
  if (compressed === undefined) {
    compressed = new Promise<Option.Option<Uint8Array>>((resolve) => {
      zlib.gzip(body, { level: 6 }, (error, result) => {
        if (!error) rememberGzip(body, result)
        resolve(error ? Option.none() : Option.some(result))
      })
    })
    compressions.set(body, compressed)
  }
  return compressed
}

const gzip = (body: Uint8Array): Effect.Effect<Option.Option<Uint8Array>> => Effect.promise(() => gzipPromise(body))

const gunzip = (body: Uint8Array, rawLength: number): Effect.Effect<Option.Option<Uint8Array>> =>
  Effect.async<Option.Option<Uint8Array>>((resume) => {
    // maxOutputLength bounds a hostile or corrupt body (a "zip bomb") to the announced length.
    // One output chunk the size of the known result (+1, so zlib never asks for a second one):
    // with the default 16 KiB chunks, node concatenates them on the event loop when the
    // inflate ends (a 30 MB body held the loop ~100 ms; this way under 10 ms).
    zlib.gunzip(body, { maxOutputLength: Math.max(rawLength, 1), chunkSize: Math.max(rawLength + 1, 64) }, (error, result) => {
      resume(Effect.succeed(error || result.byteLength !== rawLength ? Option.none() : Option.some(result)))
    })
  })

/**
 * Builds the envelope around an already prepared body, with the given flags. Pure and
 * synchronous; {@link encode} is the normal entry point. Exposed so specs and tools can build
 * exact byte layouts.
 */
export const frame = (entry: CacheEntry, body: Uint8Array, flags: number, site?: string): Uint8Array => {
  // Never hashes here (a write batch of a hundred bodies would hash them all in one step): the
  // hash of a body answered before (the load's own answer hashed it) or hashed in steps by
  // `encode` (bodies over a hash step). A small body without one is hashed when first answered.
  const hash = BodyHash.known(entry.value)
  const header: HeaderJson = {
    ct: entry.contentType,
    c: entry.createdAt,
    f: entry.freshUntil,
    s: entry.staleUntil,
    g: entry.tags,
    n: entry.value.byteLength,
    ...(site === undefined ? {} : { st: site }),
    ...(hash === undefined ? {} : { e: hash })
  }
  const headerBytes = encoder.encode(JSON.stringify(header))
  const out = new Uint8Array(FIXED_HEADER_BYTES + headerBytes.byteLength + body.byteLength)
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  out[0] = MAGIC
  out[1] = FORMAT_VERSION
  out[2] = flags
  view.setUint32(3, headerBytes.byteLength)
  view.setUint32(7, body.byteLength)
  out.set(headerBytes, FIXED_HEADER_BYTES)
  out.set(body, FIXED_HEADER_BYTES + headerBytes.byteLength)
  return out
}

/** The envelope of `entry` without compression. Pure and synchronous. */
export const encodeUncompressed = (entry: CacheEntry, site?: string): Uint8Array => frame(entry, entry.value, 0, site)

/** Whether {@link encode} tries to compress `entry`'s body: longer than `compressAbove`. */
const compressible = (entry: CacheEntry, options?: EncodeOptions): boolean =>
  entry.value.byteLength > (options?.compressAbove ?? DEFAULT_COMPRESS_ABOVE)

/** Whether `entry`'s body must be hashed in steps before it is framed. */
const unhashedLarge = (entry: CacheEntry): boolean =>
  entry.value.byteLength > BodyHash.HASH_STEP_BYTES && BodyHash.known(entry.value) === undefined

/**
 * Encodes `entry`, compressing the body when it is longer than `compressAbove` and compression
 * saves bytes, with the body's hash (a large body hashed in steps first). Never fails: should
 * zlib fail, the body is stored uncompressed. Safe to run concurrently; each compression
 * occupies one libuv pool thread.
 */
export const encode = (entry: CacheEntry, options?: EncodeOptions): Effect.Effect<Uint8Array> => {
  if (unhashedLarge(entry)) return Effect.zipRight(BodyHash.prepare(entry.value), Effect.suspend(() => encodeHashed(entry, options)))
  return encodeHashed(entry, options)
}

const encodeHashed = (entry: CacheEntry, options?: EncodeOptions): Effect.Effect<Uint8Array> => {
  const site = options?.site
  if (!compressible(entry, options)) return Effect.succeed(encodeUncompressed(entry, site))
  return Effect.map(gzip(entry.value), (compressed) => framed(entry, compressed, site))
}

const isFiniteNumber = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u)

const isHeaderJson = (u: unknown): u is HeaderJson => {
  if (typeof u !== "object" || u === null) return false
  const h = u as Record<string, unknown>
  return typeof h["ct"] === "string" &&
    isFiniteNumber(h["c"]) &&
    isFiniteNumber(h["f"]) &&
    isFiniteNumber(h["s"]) &&
    Number.isInteger(h["n"]) && (h["n"] as number) >= 0 &&
    Array.isArray(h["g"]) && (h["g"] as Array<unknown>).every((t) => typeof t === "string")
}

/**
 * The number of leading bytes {@link decodeHeader} needs, read from the fixed part, or `None`
 * when `prefix` is shorter than {@link FIXED_HEADER_BYTES} or is not an envelope of this version.
 * Lets a reader fetch just the header of a large value (e.g. Redis `GETRANGE`).
 */
export const headerBytesNeeded = (prefix: Uint8Array): Option.Option<number> => {
  if (prefix.byteLength < FIXED_HEADER_BYTES || prefix[0] !== MAGIC || prefix[1] !== FORMAT_VERSION) {
    return Option.none()
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength)
  const headerLength = view.getUint32(3)
  return headerLength > MAX_HEADER_BYTES ? Option.none() : Option.some(FIXED_HEADER_BYTES + headerLength)
}

/**
 * Reads the fixed part and the JSON header of an envelope. `bytes` may be only a prefix (at
 * least {@link headerBytesNeeded} long); the body is neither read nor checked, except that with
 * `complete: true` the total length must match exactly. Pure; never throws.
 */
export const decodeHeader = (
  bytes: Uint8Array,
  options?: { readonly complete?: boolean }
): Option.Option<EnvelopeHeader> => {
  const needed = headerBytesNeeded(bytes)
  if (Option.isNone(needed) || bytes.byteLength < needed.value) return Option.none()
  const flags = bytes[2] ?? 0xff
  if ((flags & ~FLAG_GZIP) !== 0) return Option.none()
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const bodyLength = view.getUint32(7)
  const bodyOffset = needed.value
  if (options?.complete === true && bytes.byteLength !== bodyOffset + bodyLength) return Option.none()
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(bytes.subarray(FIXED_HEADER_BYTES, bodyOffset)))
  } catch {
    return Option.none()
  }
  if (!isHeaderJson(parsed)) return Option.none()
  const compressed = (flags & FLAG_GZIP) !== 0
  if (!compressed && parsed.n !== bodyLength) return Option.none()
  return Option.some({
    contentType: parsed.ct,
    createdAt: parsed.c,
    freshUntil: parsed.f,
    staleUntil: parsed.s,
    tags: parsed.g,
    ...(typeof parsed.st === "string" ? { site: parsed.st } : {}),
    ...(BodyHash.isHash(parsed.e) ? { hash: parsed.e } : {}),
    compressed,
    rawLength: parsed.n,
    bodyOffset,
    bodyLength
  })
}

/** A placeholder in {@link encodeAll}'s output until its compressed frame replaces it. */
const EMPTY_BYTES = new Uint8Array(0)

/**
 * Bodies up to this many bytes are compressed together in {@link encodeAll}, awaited as one.
 * Larger ones go two at a time.
 */
export const COMPRESS_TOGETHER_MAX = BodyHash.HASH_STEP_BYTES

/**
 * Most bytes of bodies {@link encodeAll} has in the libuv pool at once (at least one body): a
 * batch of a hundred small items goes in one wave, and reads that inflate a large value in the
 * pool never wait behind more than this much compression.
 */
export const COMPRESS_IN_FLIGHT_BYTES = 2 * 1024 * 1024

/**
 * The gzips of `bodies`, in order, with at most {@link COMPRESS_IN_FLIGHT_BYTES} of them in the
 * pool at once: each completion hands over the next, without a fiber or a turn of its own.
 */
const gzipAll = (bodies: ReadonlyArray<Uint8Array>): Promise<Array<Option.Option<Uint8Array>>> =>
  new Promise((resolve) => {
    const out: Array<Option.Option<Uint8Array>> = new Array(bodies.length)
    let next = 0
    let done = 0
    let inFlight = 0
    const pump = (): void => {
      while (next < bodies.length && (inFlight === 0 || inFlight + bodies[next]!.byteLength <= COMPRESS_IN_FLIGHT_BYTES)) {
        const i = next++
        const size = bodies[i]!.byteLength
        inFlight += size
        void gzipPromise(bodies[i]!).then((compressed) => {
          out[i] = compressed
          inFlight -= size
          if (++done === bodies.length) resolve(out)
          else pump()
        })
      }
    }
    if (bodies.length === 0) resolve(out)
    else pump()
  })

/** The frame of `entry` around its gzip when that saves bytes, else uncompressed. */
const framed = (entry: CacheEntry, compressed: Option.Option<Uint8Array>, site: string | undefined): Uint8Array =>
  Option.isSome(compressed) && compressed.value.byteLength < entry.value.byteLength
    ? frame(entry, compressed.value, FLAG_GZIP, site)
    : encodeUncompressed(entry, site)

/**
 * Encodes the entries of one write batch, in order. Entries stored uncompressed are framed at
 * once. The small bodies to compress (up to {@link COMPRESS_TOGETHER_MAX}, already hashed) are
 * handed to the libuv pool together, up to {@link COMPRESS_IN_FLIGHT_BYTES} at a time, and
 * awaited as one: a batch of a hundred items then costs the pool's time, not a hundred turns of a
 * busy event loop (two at a time, a batch under load waited about 170 ms). Larger bodies (hashed
 * in steps first) compress at most two at a time, so the pool keeps threads for the reads'
 * inflation. Fibers only when two or more large bodies compress.
 */
export const encodeAll = (entries: ReadonlyArray<CacheEntry>, options?: EncodeOptions): Effect.Effect<Array<Uint8Array>> =>
  Effect.suspend(() => {
    const site = options?.site
    const out: Array<Uint8Array> = []
    const small: Array<number> = []
    const large: Array<number> = []
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!
      if (unhashedLarge(entry) || (compressible(entry, options) && entry.value.byteLength > COMPRESS_TOGETHER_MAX)) {
        large.push(i)
        out.push(EMPTY_BYTES)
      } else if (compressible(entry, options)) {
        small.push(i)
        out.push(EMPTY_BYTES)
      } else out.push(encodeUncompressed(entry, site))
    }
    const smallDone = small.length === 0 ? Effect.void : Effect.map(
      Effect.promise(() => gzipAll(small.map((i) => entries[i]!.value))),
      (compressed) => {
        for (let k = 0; k < small.length; k++) out[small[k]!] = framed(entries[small[k]!]!, compressed[k]!, site)
      }
    )
    const one = (i: number) => Effect.map(encode(entries[i]!, options), (bytes) => void (out[i] = bytes))
    const largeDone = large.length === 0
      ? Effect.void
      : large.length === 1
      ? one(large[0]!)
      : Effect.forEach(large, one, { concurrency: 2, discard: true })
    return Effect.as(large.length === 0 ? smallDone : Effect.zipRight(smallDone, largeDone), out)
  })

/**
 * Compressed bodies that inflate to at most this many bytes are inflated inline (well under a
 * millisecond): a read never waits in the libuv pool's queue behind large compressions for them.
 */
export const INFLATE_INLINE_MAX = 256 * 1024

/**
 * {@link decode} without a fiber when it can answer synchronously: the entry (or `None`, as
 * `decode` would answer) for an envelope whose body is stored uncompressed or inflates to at most
 * {@link INFLATE_INLINE_MAX} bytes, `undefined` when the body is larger and compressed and must be
 * inflated by {@link decode} (zlib off the event loop). Pure; never throws. The returned `value`
 * is a fresh copy, as with `decode`.
 */
export const decodeSync = (bytes: Uint8Array, site?: string): Option.Option<CacheEntry> | undefined => {
  const header = decodeHeader(bytes, { complete: true })
  if (Option.isNone(header)) return Option.none()
  const h = header.value
  // An entry of another site (or of a writer that named none) is not this site's: a miss.
  if (site !== undefined && h.site !== site) return Option.none()
  const body = bytes.subarray(h.bodyOffset, h.bodyOffset + h.bodyLength)
  if (!h.compressed) return Option.some(entryOf(h, body.slice()))
  if (h.rawLength > INFLATE_INLINE_MAX) return undefined
  try {
    const value = zlib.gunzipSync(body, { maxOutputLength: Math.max(h.rawLength, 1) })
    if (value.byteLength !== h.rawLength) return Option.none()
    rememberGzip(value, ownBytes(body))
    return Option.some(entryOf(h, value))
  } catch {
    return Option.none()
  }
}

/**
 * `bytes` itself when it covers most of its buffer, else a copy: a value's kept gzip must not
 * pin a much larger buffer it was read into (a socket read of several replies).
 */
const ownBytes = (bytes: Uint8Array): Uint8Array => bytes.byteLength * 2 >= bytes.buffer.byteLength ? bytes : bytes.slice()

/** The length of the envelope each decoded value was read from (see {@link storedLengthOf}). */
const storedLengths = new WeakMap<Uint8Array, number>()

/**
 * The byte length of the envelope `value` was decoded from, if it was read from a remote tier:
 * what encoding it again would give, within a few header bytes (same body, same compression).
 * Lets a tier with a size bound (Redis) turn down a backfilled value without compressing it
 * again (gzip of a 30 MB body is ~0.5 s of CPU).
 */
export const storedLengthOf = (value: Uint8Array): number | undefined => storedLengths.get(value)

const entryOf = (h: EnvelopeHeader, value: Uint8Array): CacheEntry => {
  BodyHash.remember(value, h.hash)
  storedLengths.set(value, h.bodyOffset + h.bodyLength)
  return {
    value,
    contentType: h.contentType,
    createdAt: h.createdAt,
    freshUntil: h.freshUntil,
    staleUntil: h.staleUntil,
    tags: h.tags
  }
}

/**
 * Decodes an envelope. `None` for anything that is not a complete, intact envelope of
 * {@link FORMAT_VERSION} (see the module documentation); never fails, never dies. The returned
 * `value` is a fresh copy, so it does not pin the (possibly much larger) buffer `bytes` came in.
 */
export const decode = (bytes: Uint8Array, site?: string): Effect.Effect<Option.Option<CacheEntry>> =>
  Effect.suspend(() => {
    const done = decodeSync(bytes, site)
    if (done !== undefined) return Effect.succeed(done)
    // Compressed: the header was read and checked by `decodeSync`.
    const h = Option.getOrThrow(decodeHeader(bytes, { complete: true }))
    const body = bytes.subarray(h.bodyOffset, h.bodyOffset + h.bodyLength)
    return Effect.map(gunzip(body, h.rawLength), Option.map((value) => {
      rememberGzip(value, ownBytes(body))
      return entryOf(h, value)
    }))
  })

/**
 * Decodes the envelopes a remote tier read in one batch (`null`/`undefined` for an absent key),
 * keeping only the entries usable at `now`: uncompressed ones synchronously, compressed ones
 * inflated at most 16 at a time. Same order as `replies`; never fails.
 */
export const decodeAll = (
  replies: ReadonlyArray<Uint8Array | null | undefined>,
  now: number,
  site?: string
): Effect.Effect<Array<Option.Option<CacheEntry>>> =>
  Effect.suspend(() => {
    const found: Array<Option.Option<CacheEntry>> = []
    const compressed: Array<number> = []
    for (let i = 0; i < replies.length; i++) {
      const reply = replies[i]
      const entry = reply === null || reply === undefined ? Option.none() : decodeSync(reply, site)
      if (entry === undefined) compressed.push(i)
      found.push(entry === undefined ? Option.none() : Option.filter(entry, (e) => isUsable(e, now)))
    }
    if (compressed.length === 0) return Effect.succeed(found)
    return Effect.as(
      Effect.forEach(compressed, (i) =>
        Effect.map(decode(replies[i]!, site), (entry) => {
          found[i] = Option.filter(entry, (e) => isUsable(e, now))
        }), { concurrency: 16, discard: true }),
      found
    )
  })
