/**
 * A gzip-compressed copy of a document being streamed, so that a large document (a Markdown
 * conversion of tens of MB) can be cached without holding it whole while it streams: the memory
 * held is the compressed size (HTML-derived Markdown compresses ~4–6×), up to a bound on the raw
 * size. Compression runs on libuv's thread pool (`node:zlib` streams); each `add` waits until its
 * bytes are taken by zlib, so at most one chunk is in flight.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as zlib from "node:zlib"

/** A compressed copy under construction. */
export interface CompressedCopy {
  /** Adds bytes; gives up (and frees what it held) once the raw size passes the bound. */
  readonly add: (bytes: Uint8Array) => Effect.Effect<void>
  /** The whole document (inflated off the event loop), or `undefined` when it passed the bound or zlib failed. */
  readonly finish: Effect.Effect<Uint8Array | undefined>
  /** Frees what it held (the stream failed or was abandoned). Idempotent. */
  readonly discard: Effect.Effect<void>
}

/** Starts a copy that keeps documents up to `maxRawBytes`. */
export const make = (maxRawBytes: number): CompressedCopy => {
  let gzip: zlib.Gzip | undefined = zlib.createGzip({ level: 1 })
  let compressed: Array<Buffer> = []
  let raw = 0
  let failed = false
  gzip.on("data", (chunk: Buffer) => compressed.push(chunk))
  gzip.on("error", () => {
    failed = true
  })
  const drop = () => {
    gzip?.destroy()
    gzip = undefined
    compressed = []
  }
  const add = (bytes: Uint8Array): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (gzip === undefined) return Effect.void
      raw += bytes.byteLength
      if (raw > maxRawBytes || failed) {
        drop()
        return Effect.void
      }
      const stream = gzip
      return Effect.async<void>((resume) => {
        stream.write(bytes, () => resume(Effect.void))
      })
    })
  const finish = Effect.suspend(() => {
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
  return { add, finish, discard: Effect.sync(drop) }
}
