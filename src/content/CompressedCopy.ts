/**
 * A gzip-compressed copy of a document being streamed, so that a large document (a Markdown
 * conversion of tens of MB) can be cached without holding it whole while it streams: the memory
 * held is the compressed size (HTML-derived Markdown compresses ~4–6×), up to a bound on the raw
 * size. Compression runs on libuv's thread pool (`node:zlib` streams); each `add` waits until the
 * previous chunk's bytes are taken by zlib, so at most two chunks are in flight and one
 * compresses while the next is converted. Documents up to `RAW_BELOW` are
 * held as they are (most are a few KB: a zlib stream per document would cost more than it saves).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as zlib from "node:zlib"

/** A compressed copy under construction. */
export interface CompressedCopy {
  /**
   * Adds bytes (a string: its UTF-8, encoded only while the copy is still kept); gives up (and
   * frees what it held) once the raw size passes the bound.
   */
  readonly add: (chunk: Uint8Array | string) => Effect.Effect<void>
  /** The whole document (inflated off the event loop), or `undefined` when it passed the bound or zlib failed. */
  readonly finish: Effect.Effect<Uint8Array | undefined>
  /** Frees what it held (the stream failed or was abandoned). Idempotent. */
  readonly discard: Effect.Effect<void>
  /** Bytes held now: raw below `RAW_BELOW`, compressed beyond (observability, specs). */
  readonly heldBytes: () => number
  /** Whether it gave up (the bound passed, or zlib failed): `finish` will give `undefined`. */
  readonly givenUp: () => boolean
}

/** Documents up to this size are held uncompressed. */
export const RAW_BELOW = 256 * 1024

/** Starts a copy that keeps documents up to `maxRawBytes`. */
export const make = (maxRawBytes: number): CompressedCopy => {
  // `held`: the raw chunks while the document is small; then `gzip` takes over.
  let held: Array<Uint8Array> | undefined = []
  let gzip: zlib.Gzip | undefined
  let compressed: Array<Buffer> = []
  let raw = 0
  let failed = false
  const drop = () => {
    gzip?.destroy()
    gzip = undefined
    held = undefined
    compressed = []
  }
  const startGzip = (): zlib.Gzip => {
    const stream = zlib.createGzip({ level: 1 })
    stream.on("data", (chunk: Buffer) => compressed.push(chunk))
    stream.on("error", () => {
      failed = true
    })
    gzip = stream
    return stream
  }
  // Writes handed to zlib and not yet taken; `waiting` resumes an `add` once one is.
  let inFlight = 0
  let waiting: (() => void) | undefined
  /**
   * Hands the bytes to zlib and resumes once at most these are still being taken: the previous
   * chunk compresses (on the thread pool) while the caller converts the next, and no more than
   * two chunks are ever held for zlib.
   */
  const write = (stream: zlib.Gzip, bytes: Uint8Array): Effect.Effect<void> =>
    Effect.async<void>((resume) => {
      inFlight++
      stream.write(bytes, () => {
        inFlight--
        const resumeWaiting = waiting
        waiting = undefined
        resumeWaiting?.()
      })
      if (inFlight <= 1) resume(Effect.void)
      else waiting = () => resume(Effect.void)
    })
  const add = (chunk: Uint8Array | string): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (held === undefined && gzip === undefined) return Effect.void
      const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk
      raw += bytes.byteLength
      if (raw > maxRawBytes || failed) {
        drop()
        return Effect.void
      }
      if (held !== undefined && raw <= RAW_BELOW) {
        held.push(bytes)
        return Effect.void
      }
      const stream = gzip
      if (stream === undefined) {
        // Past `RAW_BELOW`: everything held so far goes to zlib first, with these bytes.
        const started = startGzip()
        const first = Buffer.concat([...(held ?? []), bytes])
        held = undefined
        return write(started, first)
      }
      return write(stream, bytes)
    })
  const finish = Effect.suspend(() => {
    if (held !== undefined) {
      const value = Buffer.concat(held)
      held = undefined
      return Effect.succeed(value)
    }
    const stream = gzip
    if (stream === undefined || failed) return Effect.succeed(undefined)
    return Effect.async<Uint8Array | undefined>((resume) => {
      // "end" (not end()'s callback): every compressed byte has been emitted as "data" by then.
      stream.once("end", () => {
        const body = Buffer.concat(compressed)
        compressed = []
        gzip = undefined
        zlib.gunzip(body, { maxOutputLength: Math.max(raw, 1) }, (error, result) => {
          resume(Effect.succeed(error || result.byteLength !== raw ? undefined : result))
        })
      })
      stream.end()
    })
  })
  const heldBytes = () =>
    (held ?? []).reduce((n, b) => n + b.byteLength, 0) + compressed.reduce((n, b) => n + b.byteLength, 0)
  return { add, finish, discard: Effect.sync(drop), heldBytes, givenUp: () => failed || raw > maxRawBytes }
}
