/**
 * Long documents in pieces sized for a model's context. A piece ends at a heading or paragraph
 * boundary of the Markdown (or HTML) text when one lies in the second half of the byte budget,
 * and carries the cursor of the next piece: the offset (UTF-16 code units) where it starts.
 *
 * A document may be a string or a stream of string chunks; a stream is read only up to the end
 * of the asked piece (one byte past the budget), then left, so reading piece N of a huge document
 * holds at most one budget of text.
 *
 * @since 0.1.0
 */
import { Effect, Stream } from "effect"

/** One piece of a document. */
export interface Piece {
  readonly text: string
  /** Where this piece starts. */
  readonly offset: number
  /** Where the next piece starts; absent on the last piece. */
  readonly next?: number
}

const byteLength = (text: string): number => Buffer.byteLength(text, "utf8")

/** The longest prefix of `text` (in code units) whose UTF-8 encoding fits `budget` bytes; never splits a surrogate pair. */
const prefixWithin = (text: string, budget: number): number => {
  if (byteLength(text) <= budget) return text.length
  let lo = 0
  let hi = Math.min(text.length, budget)
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (byteLength(text.slice(0, mid)) <= budget) lo = mid
    else hi = mid - 1
  }
  const code = text.charCodeAt(lo - 1)
  return lo > 0 && code >= 0xd800 && code <= 0xdbff ? lo - 1 : lo
}

const HTML_HEADING = /<h[1-6][\s>]/g

const lastHtmlHeading = (text: string): number => {
  let last = -1
  for (const match of text.matchAll(HTML_HEADING)) last = match.index
  return last
}

/**
 * Where to cut a window of `length` code units that must end before `limit`: before the last
 * heading (Markdown `#` or HTML `<h1`…`<h6`) in the second half, else after the last blank line in
 * the second half, else after the last line break, else at `limit`.
 */
export const cutPoint = (window: string, limit: number): number => {
  const head = window.slice(0, limit)
  const half = Math.floor(limit / 2)
  const markdownHeading = head.lastIndexOf("\n#")
  if (markdownHeading + 1 > half) return markdownHeading + 1
  const htmlHeading = lastHtmlHeading(head)
  if (htmlHeading > half) return htmlHeading
  const blank = head.lastIndexOf("\n\n")
  const closed = head.lastIndexOf("</p>")
  const paragraph = Math.max(blank === -1 ? -1 : blank + 2, closed === -1 ? -1 : closed + 4)
  if (paragraph > half) return paragraph
  const line = head.lastIndexOf("\n")
  if (line + 1 > 0) return line + 1
  return limit
}

/** The piece of `window` (the document from `offset` on, `ended` when it holds the rest of it) within `budget` bytes. */
const pieceOf = (window: string, offset: number, ended: boolean, budget: number): Piece => {
  if (ended && byteLength(window) <= budget) return { text: window, offset }
  const limit = prefixWithin(window, budget)
  const cut = Math.max(1, cutPoint(window, limit))
  return { text: window.slice(0, cut), offset, next: offset + cut }
}

/** The piece of a whole document starting at `offset`, within `budget` UTF-8 bytes. */
export const fromString = (document: string, offset: number, budget: number): Piece =>
  pieceOf(document.slice(offset, offset + budget + 1), offset, offset + budget + 1 >= document.length, budget)

/**
 * The piece of a streamed document starting at `offset`, within `budget` UTF-8 bytes. Reads the
 * stream up to `offset + budget + 1` code units and no further.
 */
export const fromStream = <E, R>(document: Stream.Stream<string, E, R>, offset: number, budget: number): Effect.Effect<Piece, E, R> =>
  Effect.suspend(() => {
    const want = budget + 1
    const parts: Array<string> = []
    let seen = 0
    let held = 0
    let ended = true
    return Stream.runForEachWhile(document, (chunk) =>
      Effect.sync(() => {
        const start = seen
        seen += chunk.length
        if (seen <= offset) return true
        const from = Math.max(0, offset - start)
        const part = chunk.slice(from, from + (want - held))
        parts.push(part)
        held += part.length
        if (held >= want) {
          ended = false
          return false
        }
        return true
      })).pipe(Effect.map(() => pieceOf(parts.join(""), offset, ended, budget)))
  })
