/**
 * Writing JSON replies to a `node:http` response, streaming the large parts.
 *
 * A reply value may contain {@link LazyString}s (a tutorial body): the value is serialized to a
 * list of pieces, plain JSON text around the lazy strings, and each lazy string is written as a
 * JSON string chunk by chunk, escaped chunk by chunk, waiting for `drain` whenever the socket
 * buffer is full. Memory stays bounded by one chunk however large the body, also inside a batch.
 * A reply without lazy parts is written in one go with a `Content-Length`.
 *
 * @since 0.1.0
 */
import type * as Http from "node:http"

/** A JSON string value produced lazily, as a sequence of chunks (unescaped text). */
export class LazyString {
  constructor(
    /** A fresh iterator over the chunks; called once, when the reply is written. */
    readonly chunks: () => Iterator<string>
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
    out.push(JSON.stringify(v) ?? "null")
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
      out.push((first ? "" : ",") + JSON.stringify(k) + ":")
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
  const put = async (text: string): Promise<boolean> => {
    for (let at = 0; at < text.length; at += slice) {
      if (res.destroyed) return false
      const part = slice === Number.POSITIVE_INFINITY ? text : text.slice(at, at + slice)
      if (rate !== undefined) {
        const due = started + (sent / rate) * 1000 - Date.now()
        if (due > 0) await sleep(due)
        if (res.destroyed) return false
      }
      const bytes = Buffer.byteLength(part)
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
        if (!(await put(JSON.stringify(step.value).slice(1, -1)))) {
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
