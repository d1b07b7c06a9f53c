/**
 * Writing JSON replies to a `node:http` response, streaming the large parts.
 *
 * JSON is encoded as Drupal's `Json::encode` does (PHP `json_encode` with `JSON_HEX_TAG |
 * JSON_HEX_APOS | JSON_HEX_AMP | JSON_HEX_QUOT`): `<` `>` `'` `"` `&` inside strings as
 * `\u003C` `\u003E` `\u0027` `\u0022` `\u0026`, `/` as `\/`, and every non-ASCII UTF-16 unit as
 * `\uxxxx`. The encoded text is therefore pure ASCII: its length in bytes is its length.
 *
 * A reply value may contain {@link LazyString}s (a tutorial body): the value is serialized to a
 * list of pieces, plain JSON text around the lazy strings, and each lazy string is written as a
 * JSON string chunk by chunk, escaped chunk by chunk, waiting for `drain` whenever the socket
 * buffer is full. Memory stays bounded by one chunk however large the body, also inside a batch.
 * Every reply carries a `Content-Length`, as Drupal's (built whole in PHP memory) does: for a
 * streamed reply it is measured first by a generation pass that keeps only a running count
 * ({@link measurePieces}), then the body is generated again and written; a lazy string with a
 * {@link LengthMemo} is measured once (as Drupal knows the size of what it stores).
 *
 * @since 0.1.0
 */
import type * as Http from "node:http"

const HEX = "0123456789abcdef"

/** What each ASCII byte becomes inside a Drupal-encoded JSON string (`undefined`: itself). */
const ASCII_ESCAPES: ReadonlyArray<Uint8Array | undefined> = Array.from({ length: 128 }, (_, c) => {
  const short: Record<number, string> = {
    8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", 34: "\\u0022", 38: "\\u0026", 39: "\\u0027", 47: "\\/",
    60: "\\u003C", 62: "\\u003E", 92: "\\\\"
  }
  const text = short[c] ?? (c < 32 ? `\\u00${HEX[c >> 4]}${HEX[c & 15]}` : undefined)
  return text === undefined ? undefined : Buffer.from(text, "latin1")
})

/** Encoded length per UTF-8 byte: ASCII by its escape, a lead byte 6 (12 for 4 bytes: a surrogate pair), continuations 0. */
const ENCODED_LENGTH = Uint8Array.from({ length: 256 }, (_, b) =>
  b < 128 ? (ASCII_ESCAPES[b]?.length ?? 1) : b < 0xc0 ? 0 : b < 0xf0 ? 6 : 12)

const putUnit = (out: Buffer, at: number, unit: number): number => {
  out[at] = 92 // \
  out[at + 1] = 117 // u
  out[at + 2] = HEX.charCodeAt(unit >> 12)
  out[at + 3] = HEX.charCodeAt((unit >> 8) & 15)
  out[at + 4] = HEX.charCodeAt((unit >> 4) & 15)
  out[at + 5] = HEX.charCodeAt(unit & 15)
  return at + 6
}

/**
 * The inside of a JSON string (no quotes) as Drupal's `Json::encode` writes it, as ASCII bytes.
 * One pass over the UTF-8 bytes (fast on megabytes, unlike regex callbacks).
 */
export const encodeStringBytes = (raw: string): Buffer => {
  const src = Buffer.from(raw, "utf8")
  const out = Buffer.allocUnsafe(src.length * 6)
  let o = 0
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!
    if (b < 128) {
      const escape = ASCII_ESCAPES[b]
      if (escape === undefined) out[o++] = b
      else for (let k = 0; k < escape.length; k++) out[o++] = escape[k]!
    } else if (b < 0xe0) {
      o = putUnit(out, o, ((b & 0x1f) << 6) | (src[++i]! & 0x3f))
    } else if (b < 0xf0) {
      o = putUnit(out, o, ((b & 0x0f) << 12) | ((src[++i]! & 0x3f) << 6) | (src[++i]! & 0x3f))
    } else {
      const v = (((b & 0x07) << 18) | ((src[++i]! & 0x3f) << 12) | ((src[++i]! & 0x3f) << 6) | (src[++i]! & 0x3f)) - 0x10000
      o = putUnit(out, o, 0xd800 | (v >> 10))
      o = putUnit(out, o, 0xdc00 | (v & 0x3ff))
    }
  }
  return out.subarray(0, o)
}

/** The length of {@link encodeStringBytes}`(raw)` without building it. */
export const encodedStringLength = (raw: string): number => {
  const src = Buffer.from(raw, "utf8")
  let n = 0
  for (let i = 0; i < src.length; i++) n += ENCODED_LENGTH[src[i]!]!
  return n
}

/** The inside of a JSON string as Drupal's `Json::encode` writes it (ASCII text). */
export const encodeStringContent = (raw: string): string => encodeStringBytes(raw).toString("latin1")

/**
 * A JSON value as Drupal's `Json::encode` writes it. `undefined` members are left out (and
 * `undefined` array entries are `null`), as `JSON.stringify` does; the value must be acyclic.
 */
export const drupalJson = (value: unknown): string => {
  if (typeof value === "string") return `"${encodeStringContent(value)}"`
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : drupalJson(v))).join(",")}]`
  const members: Array<string> = []
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v !== undefined && typeof v !== "function") members.push(`"${encodeStringContent(k)}":${drupalJson(v)}`)
  }
  return `{${members.join(",")}}`
}

/**
 * Where the encoded length of a lazy string is kept once measured (the body of an item is the
 * same every time: measuring it again would generate it twice per reply).
 */
export interface LengthMemo {
  readonly get: () => number | undefined
  readonly set: (length: number) => void
}

/** A JSON string value produced lazily, as a sequence of chunks (unescaped text). */
export class LazyString {
  constructor(
    /** A fresh iterator over the chunks; called once per pass (measure, write). */
    readonly chunks: () => Iterator<string>,
    /** The encoded length's memo, when the chunks are deterministic. */
    readonly length?: LengthMemo | undefined
  ) {}
}

/** JSON text, or a lazy string to splice in. */
export type Piece = string | LazyString

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const containsLazy = (v: unknown): boolean =>
  v instanceof LazyString
    ? true
    : Array.isArray(v)
    ? v.some(containsLazy)
    : isRecord(v)
    ? Object.values(v).some(containsLazy)
    : false

const serialize = (v: unknown, out: Array<Piece>): void => {
  if (v instanceof LazyString) {
    out.push(v)
  } else if (!containsLazy(v)) {
    out.push(drupalJson(v))
  } else if (Array.isArray(v)) {
    out.push("[")
    v.forEach((x, i) => {
      if (i > 0) out.push(",")
      serialize(x, out)
    })
    out.push("]")
  } else {
    out.push("{")
    let first = true
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue
      out.push((first ? "" : ",") + drupalJson(k) + ":")
      first = false
      serialize(x, out)
    }
    out.push("}")
  }
}

/** The value as JSON pieces; adjacent text is merged. Lazy strings are not pulled. */
export const toPieces = (value: unknown): Array<Piece> => {
  const raw: Array<Piece> = []
  serialize(value, raw)
  const out: Array<Piece> = []
  for (const p of raw) {
    const last = out[out.length - 1]
    if (typeof p === "string" && typeof last === "string") out[out.length - 1] = last + p
    else out.push(p)
  }
  return out
}

/** Whether the pieces are plain text only (the reply can carry a `Content-Length`). */
export const isPlain = (pieces: ReadonlyArray<Piece>): pieces is ReadonlyArray<string> =>
  pieces.every((p) => typeof p === "string")

/** Lazy-string characters measured between two yields to the event loop. */
const MEASURE_SLICE_CHARS = 1024 * 1024

/**
 * The byte length of the pieces once written: a full generation pass over every lazy string
 * that keeps only a running count (one chunk in memory at a time), yielding to the event loop
 * about every MiB so a 50 MB body does not stall other requests. Lazy strings must generate
 * the same chunks every time (the corpus is seeded).
 */
export const measurePieces = async (pieces: ReadonlyArray<Piece>): Promise<number> => {
  let total = 0
  let sinceYield = 0
  for (const piece of pieces) {
    if (typeof piece === "string") {
      total += piece.length
      continue
    }
    total += 2
    const known = piece.length?.get()
    if (known !== undefined) {
      total += known
      continue
    }
    let measured = 0
    const it = piece.chunks()
    for (let step = it.next(); step.done !== true; step = it.next()) {
      measured += encodedStringLength(step.value)
      sinceYield += step.value.length
      if (sinceYield >= MEASURE_SLICE_CHARS) {
        sinceYield = 0
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
    }
    piece.length?.set(measured)
    total += measured
  }
  return total
}

const waitDrain = (res: Http.ServerResponse): Promise<void> =>
  new Promise((resolve) => {
    const done = () => {
      res.off("drain", done)
      res.off("close", done)
      resolve()
    }
    res.on("drain", done)
    res.on("close", done)
  })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Options of {@link writePieces}. */
export interface StreamOptions {
  /** When set, the body is paced to about this many bytes per second. */
  readonly bytesPerSecond?: number | undefined
  /** Called with the byte count of every write, for statistics. */
  readonly onBytes: (n: number) => void
}

/**
 * Writes the pieces as the response body (headers must already be set) and ends the response.
 * Resolves when done or when the client went away (remaining chunks are then not generated).
 * Never rejects.
 */
export const writePieces = async (
  res: Http.ServerResponse,
  pieces: ReadonlyArray<Piece>,
  options: StreamOptions
): Promise<void> => {
  const rate = options.bytesPerSecond
  const started = Date.now()
  let sent = 0
  const slice = rate !== undefined ? Math.max(256, Math.floor(rate / 20)) : Number.POSITIVE_INFINITY
  // Everything written is ASCII (Drupal's encoding), so characters are bytes.
  const put = async (text: string | Buffer): Promise<boolean> => {
    for (let at = 0; at < text.length; at += slice) {
      if (res.destroyed) return false
      const part = slice === Number.POSITIVE_INFINITY
        ? text
        : typeof text === "string"
        ? text.slice(at, at + slice)
        : text.subarray(at, at + slice)
      if (rate !== undefined) {
        const due = started + (sent / rate) * 1000 - Date.now()
        if (due > 0) await sleep(due)
        if (res.destroyed) return false
      }
      const bytes = part.length
      sent += bytes
      options.onBytes(bytes)
      if (!res.write(part)) await waitDrain(res)
      if (slice === Number.POSITIVE_INFINITY) break
    }
    return !res.destroyed
  }
  try {
    for (const piece of pieces) {
      if (typeof piece === "string") {
        if (!(await put(piece))) return
        continue
      }
      if (!(await put("\""))) return
      const it = piece.chunks()
      for (let step = it.next(); step.done !== true; step = it.next()) {
        if (!(await put(encodeStringBytes(step.value)))) {
          it.return?.()
          return
        }
      }
      if (!(await put("\""))) return
    }
    res.end()
  } catch {
    res.destroy()
  }
}
