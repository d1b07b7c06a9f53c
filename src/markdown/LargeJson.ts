/**
 * JSON for large bodies without blocking the event loop. `JSON.parse` and `JSON.stringify` of a
 * 30 MB reply each hold the event loop for hundreds of milliseconds; here the work is cut into
 * steps of bounded size and the fiber yields to the event loop between steps (a macrotask), so other requests run meanwhile.
 *
 * The large part of such bodies is a few huge strings (a tutorial's HTML). {@link parse} scans
 * the bytes a slice at a time (decoding UTF-8 as a stream), lifts every string longer than
 * `largeString` out of the text (its escaped source is unescaped in slices with `JSON.parse` of
 * each slice), parses the remaining small skeleton with one `JSON.parse`, and puts the strings
 * back. {@link stringify} does the reverse: the skeleton with `JSON.stringify`, each huge string
 * escaped and encoded a slice at a time; a value without a huge string (the common case) is one
 * plain `JSON.stringify`. Values and bytes are exactly those of `JSON.parse` and
 * of `JSON.stringify` + UTF-8 encoding.
 *
 * Bounds: no synchronous step handles more than `sliceBytes` of input, except the skeleton's
 * `JSON.parse` / `JSON.stringify` (everything but the huge strings) and the final copy of the
 * output bytes. CPU: about that of `JSON.parse`/`JSON.stringify`, plus a scan.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { randomBytes } from "node:crypto"

/**
 * Lets the event loop run (timers, I/O, other requests) before going on: a macrotask
 * (`setImmediate`), where `Effect.yieldNow` may resume from the microtask queue first.
 */
export const yieldToEventLoop: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** Default step: 64 KiB of input handled synchronously at most. */
export const DEFAULT_SLICE_BYTES = 64 * 1024

/** Bytes of output copied between two yields when {@link stringify} joins its pieces. */
const COPY_STEP_BYTES = 4 * 1024 * 1024

/**
 * Default of {@link LargeJsonOptions.largeString} for {@link parse}: strings longer than 16 KiB
 * are handled in slices (a reply of many medium strings, a batch of items, keeps a small
 * skeleton).
 */
export const DEFAULT_LARGE_STRING = 16 * 1024

/**
 * Default of {@link LargeJsonOptions.largeString} for {@link stringify}, which serialises one
 * value (an item): strings longer than 256 KiB are handled in slices; a value without one is a
 * single `JSON.stringify`, well under a millisecond for a few such strings, less than the steps.
 */
export const DEFAULT_STRINGIFY_LARGE_STRING = 256 * 1024

/** Options of {@link parse} and {@link stringify}. */
export interface LargeJsonOptions {
  /** Most input handled in one synchronous step (bytes for `parse`, UTF-16 units for `stringify`). */
  readonly sliceBytes?: number
  /** Strings longer than this (escaped source for `parse`, characters for `stringify`) are lifted out. */
  readonly largeString?: number
  /** Told of each synchronous step with the size of its input (observability, specs). */
  readonly onSlice?: (size: number) => void
}

const BACKSLASH = 92

/** Marker of a lifted string in a skeleton: a NUL (never raw in JSON text), a per-call nonce, the index. */
const markerPrefix = () => `\u0000${randomBytes(9).toString("base64")}:`

/** Unescapes the escaped source of one JSON string (without its quotes) a slice at a time. */
const unescapeSlices = (raw: ReadonlyArray<string>, slice: number, onSlice?: (size: number) => void): Effect.Effect<string | undefined> =>
  Effect.suspend(() => {
    let out = ""
    let carry = ""
    let index = 0
    const step = (): boolean => {
      let text = carry
      while (text.length < slice && index < raw.length) text += raw[index++]!
      let end = text.length
      if (index < raw.length || end > slice) {
        end = Math.min(end, slice)
        // Never cut inside an escape (at most 6 characters, `\uXXXX`): cut before the run of
        // backslashes that holds the last backslash of the final 6 characters.
        const last = text.lastIndexOf("\\", end - 1)
        if (last >= 0 && last >= end - 6) {
          end = last
          while (end > 0 && text.charCodeAt(end - 1) === BACKSLASH) end--
        }
        if (end === 0) {
          // The text starts with a long run of backslashes: cut inside it after an even count.
          let run = 0
          while (run < text.length && text.charCodeAt(run) === BACKSLASH) run++
          end = run & ~1
        }
      }
      onSlice?.(end)
      out += JSON.parse(`"${text.slice(0, end)}"`) as string
      carry = text.slice(end)
      return carry.length > 0 || index < raw.length
    }
    const loop: Effect.Effect<string | undefined> = Effect.suspend(() => {
      try {
        return step() ? Effect.zipRight(yieldToEventLoop, loop) : Effect.succeed(out)
      } catch {
        return Effect.succeed(undefined)
      }
    })
    return loop
  })

/**
 * Parses the concatenation of `chunks` as one JSON value, in steps, yielding between them.
 * `undefined` when it is not exactly one JSON value (malformed, truncated, invalid UTF-8), like a
 * failed `JSON.parse`. Never fails, never dies.
 */
export const parse = (chunks: ReadonlyArray<Uint8Array>, options?: LargeJsonOptions): Effect.Effect<unknown> =>
  Effect.suspend(() => {
    const slice = Math.max(16, options?.sliceBytes ?? DEFAULT_SLICE_BYTES)
    const large = Math.max(1, options?.largeString ?? DEFAULT_LARGE_STRING)
    const decoder = new TextDecoder("utf-8", { fatal: true })
    const marker = markerPrefix()
    // As written in JSON text (the NUL escaped); parsed, it reads `marker` again.
    const markerText = JSON.stringify(marker).slice(1, -1)
    const skeleton: Array<string> = []
    const lifted: Array<ReadonlyArray<string>> = []
    // Scanner state: inside a string?, its escaped source so far, whether the next character
    // is escaped (an odd run of backslashes ended the previous piece).
    let inString = false
    let parts: Array<string> = []
    let partsLength = 0
    let escaped = false
    const closeString = () => {
      if (partsLength > large) {
        skeleton.push(`"${markerText}${lifted.length}"`)
        lifted.push(parts)
      } else {
        skeleton.push(`"${parts.join("")}"`)
      }
      parts = []
      partsLength = 0
      inString = false
    }
    const scan = (text: string) => {
      let pos = 0
      while (pos < text.length) {
        if (!inString) {
          const quote = text.indexOf("\"", pos)
          if (quote < 0) {
            skeleton.push(text.slice(pos))
            return
          }
          skeleton.push(text.slice(pos, quote))
          inString = true
          escaped = false
          pos = quote + 1
          continue
        }
        const from = pos
        if (escaped) {
          // The character after a backslash that ended the previous piece: part of that escape.
          pos++
          escaped = false
        }
        // Backslashes from `fresh` on are not escaped by anything before them.
        const fresh = pos
        const runBefore = (at: number) => {
          let run = 0
          while (at - run - 1 >= fresh && text.charCodeAt(at - run - 1) === BACKSLASH) run++
          return run
        }
        let quote = text.indexOf("\"", pos)
        while (quote >= 0 && runBefore(quote) % 2 === 1) quote = text.indexOf("\"", quote + 1)
        if (quote < 0) {
          const rest = text.slice(from)
          parts.push(rest)
          partsLength += rest.length
          escaped = runBefore(text.length) % 2 === 1
          return
        }
        const piece = text.slice(from, quote)
        parts.push(piece)
        partsLength += piece.length
        closeString()
        pos = quote + 1
      }
    }
    let chunk = 0
    let offset = 0
    const step = (): boolean => {
      let budget = slice
      while (budget > 0 && chunk < chunks.length) {
        const current = chunks[chunk]!
        const end = Math.min(current.byteLength, offset + budget)
        budget -= end - offset
        options?.onSlice?.(end - offset)
        scan(decoder.decode(current.subarray(offset, end), { stream: true }))
        offset = end
        if (offset >= current.byteLength) {
          chunk++
          offset = 0
        }
      }
      return chunk < chunks.length
    }
    const restore = (value: unknown, strings: ReadonlyArray<string>): unknown => {
      if (typeof value === "string") {
        if (!value.startsWith(marker)) return value
        const found = strings[Number(value.slice(marker.length))]
        return found ?? value
      }
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) value[i] = restore(value[i], strings)
        return value
      }
      if (typeof value === "object" && value !== null) {
        const record = value as Record<string, unknown>
        const keys = Object.keys(record)
        if (!keys.some((key) => key.startsWith(marker))) {
          for (const key of keys) record[key] = restore(record[key], strings)
          return record
        }
        // A lifted key (longer than `largeString`): rebuild the object, keys in their order.
        const rebuilt: Record<string, unknown> = {}
        for (const key of keys) {
          Object.defineProperty(rebuilt, restore(key, strings) as string, {
            value: restore(record[key], strings),
            writable: true,
            enumerable: true,
            configurable: true
          })
        }
        return rebuilt
      }
      return value
    }
    const scanAll: Effect.Effect<boolean> = Effect.suspend(() => {
      try {
        if (step()) return Effect.zipRight(yieldToEventLoop, scanAll)
        scan(decoder.decode())
        return Effect.succeed(true)
      } catch {
        return Effect.succeed(false)
      }
    })
    return Effect.gen(function*() {
      if (!(yield* scanAll)) return undefined
      if (inString) return undefined // truncated inside a string
      const strings: Array<string> = []
      for (const raw of lifted) {
        const text = yield* unescapeSlices(raw, slice, options?.onSlice)
        if (text === undefined) return undefined
        strings.push(text)
      }
      let parsed: unknown
      try {
        parsed = JSON.parse(skeleton.join(""))
      } catch {
        return undefined
      }
      return lifted.length === 0 ? parsed : restore(parsed, strings)
    })
  })

const encoder = new TextEncoder()

/** Whether JSON data `value` holds a string value longer than `large` characters (walked without recursion). */
const holdsLongString = (value: unknown, large: number): boolean => {
  const stack: Array<unknown> = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === "string") {
      if (v.length > large) return true
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push(v[i])
    } else if (typeof v === "object" && v !== null) {
      for (const key of Object.keys(v)) stack.push((v as Record<string, unknown>)[key])
    }
  }
  return false
}

/**
 * `JSON.stringify(value)` encoded as UTF-8, in steps, yielding between them: the bytes are those
 * of `new TextEncoder().encode(JSON.stringify(value))`. `value` must be JSON data (plain objects,
 * arrays, strings, finite numbers, booleans, null).
 */
export const stringify = (value: unknown, options?: LargeJsonOptions): Effect.Effect<Uint8Array> =>
  Effect.suspend(() => {
    const slice = Math.max(16, options?.sliceBytes ?? DEFAULT_SLICE_BYTES)
    const large = Math.max(1, options?.largeString ?? DEFAULT_STRINGIFY_LARGE_STRING)
    // The common case, nothing to lift: one plain `JSON.stringify` (no replacer, no steps).
    if (!holdsLongString(value, large)) return Effect.succeed(encoder.encode(JSON.stringify(value)))
    const marker = markerPrefix()
    const lifted: Array<string> = []
    const skeleton = JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v === "string" && v.length > large) {
        lifted.push(v)
        return `${marker}${lifted.length - 1}`
      }
      return v
    })
    if (lifted.length === 0) return Effect.succeed(encoder.encode(skeleton))
    // In the skeleton a marker reads `"\u0000<nonce>:<i>"` (NUL escaped by JSON.stringify).
    const escapedMarker = JSON.stringify(marker).slice(1, -1)
    const out: Array<Uint8Array> = []
    let total = 0
    const push = (bytes: Uint8Array) => {
      out.push(bytes)
      total += bytes.byteLength
    }
    return Effect.gen(function*() {
      let pos = 0
      for (;;) {
        const at = skeleton.indexOf(escapedMarker, pos)
        if (at < 0) break
        const digitsEnd = skeleton.indexOf("\"", at + escapedMarker.length)
        const index = Number(skeleton.slice(at + escapedMarker.length, digitsEnd))
        const text = lifted[index]!
        push(encoder.encode(skeleton.slice(pos, at)))
        for (let start = 0; start < text.length;) {
          let end = Math.min(text.length, start + slice)
          // Never split a surrogate pair.
          if (end < text.length) {
            const code = text.charCodeAt(end - 1)
            if (code >= 0xd800 && code <= 0xdbff) end--
          }
          options?.onSlice?.(end - start)
          push(encoder.encode(JSON.stringify(text.slice(start, end)).slice(1, -1)))
          start = end
          yield* yieldToEventLoop
        }
        pos = digitsEnd
      }
      push(encoder.encode(skeleton.slice(pos)))
      // The pieces copied into one array in steps too (a 30 MB copy holds the loop for tens of ms).
      const bytes = new Uint8Array(total)
      let offset = 0
      let sinceYield = 0
      for (const piece of out) {
        bytes.set(piece, offset)
        offset += piece.byteLength
        sinceYield += piece.byteLength
        if (sinceYield >= COPY_STEP_BYTES) {
          sinceYield = 0
          yield* yieldToEventLoop
        }
      }
      return bytes
    })
  })
