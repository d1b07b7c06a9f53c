/**
 * Streaming conversion of Drupal HTML into RAG-ready Markdown (CommonMark + GFM tables).
 *
 * The converter sits on an incremental tokenizer ({@link HtmlTokenizer}: htmlparser2's events,
 * about twice as fast): HTML is written chunk by chunk and Markdown is emitted as soon as it is
 * final. Nothing holds the whole document: the state is a stack of open elements (bounded by the
 * nesting depth), one bounded buffer for a code block or an inline code span (`maxBufferBytes`),
 * and the output of the chunk being converted.
 *
 * One bound comes from the tokenizer and is documented rather than enforced here: a single tag
 * (with its attributes) is buffered until it ends (as htmlparser2 does; a comment is not).
 *
 * Output rules: ATX headings (`id`s dropped: Markdown renderers derive their own anchors, and
 * chunkers split on the heading text); blocks separated by one blank line (never more, outside
 * code blocks); `**strong**`, `_em_` (`*em*` right after a letter or digit, where `_` cannot
 * open), `~~del~~`, `<sup>`/`<sub>` kept as HTML; inline code (also for `kbd`, `samp`) with a
 * fence longer than its longest backtick run; fenced code blocks with the language of
 * `class="language-x"`/`lang-x`, content verbatim; `-` and `N.` lists indented by their marker
 * width, paragraphs and code blocks of an item inside it; GFM pipe tables (header from the first
 * row, `|` escaped, block breaks in a cell as `<br>`, a `colspan` cell followed by empty cells, a
 * `rowspan` cell's text repeated in the rows it covers); captions (`<caption>`, `<figcaption>`)
 * as an emphasised paragraph where they stand (CKEditor 5 puts a table's after it); absolute
 * links and images; `<dt>` as a bold line and its `<dd>` on the next line; CKEditor 5's
 * `<drupal-media>` as `[Media: caption or alt](urn:uuid:…)`; an `<iframe>` as a link to what it
 * embeds (`[Video: title](…)`, the provider URL for Drupal's `/media/oembed?url=…`); `\` + line
 * break for `<br>`; `---`; `>` quotes. `script`, `style`, `noscript`, `template`, `head`, `svg`,
 * media elements, form controls and comments are dropped; entities are decoded (`&nbsp;` as a
 * space, so `<p>&nbsp;</p>` vanishes); whitespace collapses outside code. Text is escaped where
 * it would change meaning (`\`, `` ` ``, `*`, `[`, `]`, `<`, `~` always; `_` at a word boundary;
 * `&` before an entity-like character; `#`, `>`, `-`, `+`, `=` and `1.`/`1)` at the start of a
 * line; `|` in a table cell).
 *
 * Known limits: emphasis whose inside edge is punctuation while its outside neighbour is a letter
 * (`x<b>(y)</b>`, `<b>Note:</b>Text`) does not meet CommonMark's flanking rules and renders with
 * literal markers; text inside a `<table>` but outside its cells and caption is dropped; a
 * `rowspan` cell whose Markdown exceeds 1 KiB leaves the rows below empty in its column; once a
 * construct exceeds `maxBufferBytes`, where it degrades depends on the chunking.
 *
 * @since 0.1.0
 */
import { Chunk, Stream } from "effect"
import { dual } from "effect/Function"
import { type HtmlHandler, HtmlTokenizer } from "./HtmlTokenizer.js"

/** Options of the converter. */
export interface HtmlToMarkdownOptions {
  /**
   * Absolute URL the document was served from: relative link hrefs and image srcs are resolved
   * against it. Without it they are kept as written. An unparsable value is a defect (it dies).
   */
  readonly baseUrl?: string | URL | undefined
  /**
   * Largest code block (`<pre>`) or inline code span buffered to pick a fence longer than any
   * backtick run inside, in UTF-16 code units (bytes for ASCII). Beyond it a code block is
   * streamed (a later line that would close the fence starts a new block with a longer fence) and
   * an inline code span is closed, the rest of its text continuing as escaped plain text.
   * Default {@link DEFAULT_MAX_BUFFER_BYTES}.
   */
  readonly maxBufferBytes?: number | undefined
}

/** Default of {@link HtmlToMarkdownOptions.maxBufferBytes}: 1 MiB. */
export const DEFAULT_MAX_BUFFER_BYTES = 1024 * 1024

/**
 * A synchronous, single-use converter: `write` HTML pieces in order, then `end` once. Each call
 * returns the Markdown that became final with it (possibly `""`). Not safe to share between
 * concurrent conversions; create one per document with {@link makeConverter}.
 */
export interface HtmlMarkdownConverter {
  /** Feeds the next piece of HTML; returns the Markdown made final by it. */
  readonly write: (html: string) => string
  /** Ends the document (closes every open element); returns the remaining Markdown. Idempotent. */
  readonly end: () => string
}

/**
 * Creates a {@link HtmlMarkdownConverter}. Memory is bounded by the nesting depth, the chunk
 * size and `maxBufferBytes`, never by the document. Never throws on malformed HTML (the tokenizer
 * recovers as htmlparser2 does); throws a `TypeError` when `options.baseUrl` is not an absolute URL.
 */
export const makeConverter = (options: HtmlToMarkdownOptions = {}): HtmlMarkdownConverter => {
  const emitter = new MarkdownEmitter(
    options.baseUrl === undefined ? undefined : new URL(options.baseUrl),
    Math.max(16, options.maxBufferBytes ?? DEFAULT_MAX_BUFFER_BYTES)
  )
  const parser = new HtmlTokenizer(emitter)
  let ended = false
  return {
    write: (html) => {
      if (ended || html.length === 0) return ""
      parser.write(html)
      return emitter.drain()
    },
    end: () => {
      if (ended) return ""
      ended = true
      parser.end()
      emitter.finish()
      return emitter.drain()
    }
  }
}

/**
 * Converts a stream of HTML chunks (any split, even inside a tag, an entity or a UTF-16 pair)
 * into a stream of Markdown chunks: at most one Markdown chunk per upstream Effect chunk, plus
 * a last one when the upstream ends. The output does not depend on how the input is split.
 *
 * Bounds: see {@link makeConverter}. Failure: the upstream's errors pass through unchanged; the
 * conversion itself does not fail (an invalid `baseUrl` is a defect). Each run of the returned
 * stream uses a fresh converter.
 */
export const htmlToMarkdown: {
  (options?: HtmlToMarkdownOptions): <E, R>(html: Stream.Stream<string, E, R>) => Stream.Stream<string, E, R>
  <E, R>(html: Stream.Stream<string, E, R>, options?: HtmlToMarkdownOptions): Stream.Stream<string, E, R>
} = dual(
  (args) => Stream.StreamTypeId in Object(args[0]),
  <E, R>(html: Stream.Stream<string, E, R>, options?: HtmlToMarkdownOptions): Stream.Stream<string, E, R> =>
    Stream.suspend(() => {
      const converter = makeConverter(options)
      return html.pipe(
        Stream.mapChunks((chunk) => {
          let out = ""
          for (const piece of chunk) out += converter.write(piece)
          return out === "" ? Chunk.empty<string>() : Chunk.of(out)
        }),
        Stream.concat(Stream.suspend(() => {
          const out = converter.end()
          return out === "" ? Stream.empty : Stream.make(out)
        }))
      )
    })
)

// ---------------------------------------------------------------------------------------------
// Front matter
// ---------------------------------------------------------------------------------------------

/** A scalar accepted in front matter. A `Date` is written as an ISO-8601 string. */
export type FrontMatterScalar = string | number | boolean | Date | null

/** A value accepted in front matter: a scalar or a list of scalars. */
export type FrontMatterValue = FrontMatterScalar | ReadonlyArray<FrontMatterScalar>

/** The metadata written by {@link frontMatter}; keys beyond the named ones are allowed. */
export interface FrontMatterMeta {
  readonly title: string
  readonly url: string
  readonly drupal_version?: string | number | undefined
  readonly tags?: ReadonlyArray<string> | undefined
  readonly updated?: string | Date | undefined
  readonly [key: string]: FrontMatterValue | undefined
}

/**
 * Renders a YAML front matter block, `---\n…\n---\n\n`: `title` and `url` first, then the other
 * keys in insertion order; `undefined` values are left out. Every string is a double-quoted YAML
 * scalar with `\`-escapes for quotes, backslashes, control characters, U+0085, U+2028, U+2029,
 * BOM and noncharacters (lone surrogates become U+FFFD), so any text round-trips through a YAML
 * 1.2 parser. Lists are block sequences (`[]` when empty). Keys that are not plain identifiers
 * are quoted too. Pure and total.
 */
export const frontMatter = (meta: FrontMatterMeta): string => {
  const lines = ["---"]
  const keys = ["title", "url", ...Object.keys(meta).filter((k) => k !== "title" && k !== "url")]
  for (const key of keys) {
    const value = meta[key]
    if (value === undefined) continue
    const name = PLAIN_KEY.test(key) ? key : yamlString(key)
    if (isReadonlyArray(value)) {
      if (value.length === 0) {
        lines.push(`${name}: []`)
      } else {
        lines.push(`${name}:`)
        for (const item of value) lines.push(`  - ${yamlScalar(item)}`)
      }
    } else {
      lines.push(`${name}: ${yamlScalar(value)}`)
    }
  }
  lines.push("---", "", "")
  return lines.join("\n")
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/

const isReadonlyArray = (u: unknown): u is ReadonlyArray<FrontMatterScalar> => Array.isArray(u)

const yamlScalar = (value: FrontMatterScalar): string => {
  if (value === null) return "null"
  if (typeof value === "boolean") return value ? "true" : "false"
  if (typeof value === "number") {
    if (Number.isFinite(value)) return String(value)
    return Number.isNaN(value) ? ".nan" : value > 0 ? ".inf" : "-.inf"
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "null" : yamlString(value.toISOString())
  return yamlString(value)
}

const YAML_ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "\"": "\\\"",
  "\0": "\\0",
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
  "\u0085": "\\N",
  "\u2028": "\\L",
  "\u2029": "\\P"
}

// Everything YAML does not accept as printable inside a double-quoted scalar, plus `"` and `\`.
const YAML_NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

const yamlString = (s: string): string =>
  `"${
    s.replace(YAML_NEEDS_ESCAPE, (c) => {
      const named = YAML_ESCAPES[c]
      if (named !== undefined) return named
      const code = c.charCodeAt(0)
      if (code >= 0xd800 && code <= 0xdfff) return "\uFFFD"
      return code <= 0xff ? `\\x${hex(code, 2)}` : `\\u${hex(code, 4)}`
    })
  }"`

const hex = (n: number, width: number): string => n.toString(16).toUpperCase().padStart(width, "0")

// ---------------------------------------------------------------------------------------------
// The emitter: tokenizer events → Markdown
// ---------------------------------------------------------------------------------------------

/** Character classes for text outside code (index: UTF-16 code unit < 128; 0: plain). */
const SPACE = 1
const ALWAYS = 2
const CONTEXT = 3
const CLASS = new Uint8Array(128)
for (const c of [9, 10, 12, 13, 32]) CLASS[c] = SPACE
// Characters that can start or end Markdown syntax anywhere in a line.
for (const c of "\\`*[]<~") CLASS[c.charCodeAt(0)] = ALWAYS
// `_` (only at a word boundary), `&` (only before an entity name), `|` (only in a table cell),
// `#` (only at a word start in a heading).
for (const c of "_&|#") CLASS[c.charCodeAt(0)] = CONTEXT
const NBSP = 0xa0
const BACKTICK = 96

/**
 * Where a run of plain text stops in `normalText`: a character of class ALWAYS or CONTEXT, or
 * whitespace other than a single space between two words (a single space is written as it is:
 * the same output as collapsing it, without a write per word). Kept in step with `CLASS`.
 */
const TEXT_STOP = /[\\`*[\]<~_&|#\t\n\f\r\u00a0]| (?![^\t\n\f\r \u00a0])/g

/** Longest rest of a text piece scanned by {@link textStop} rather than by `TEXT_STOP`. */
const SHORT_TEXT = 16

/** Where `TEXT_STOP` would match in `t` from `i` (before `n`, its length), or `n`. */
const textStop = (t: string, from: number, n: number): number => {
  for (let i = from; i < n; i++) {
    const c = t.charCodeAt(i)
    if (c < 128) {
      const k = CLASS[c]!
      if (k === 0) continue
      // A single space between two words is plain.
      if (c === 32 && i + 1 < n && !isSpace(t.charCodeAt(i + 1))) continue
      return i
    }
    if (c === NBSP) return i
  }
  return n
}

const ESCAPED: Array<string> = []
for (let c = 0; c < 128; c++) ESCAPED[c] = "\\" + String.fromCharCode(c)

// Characters that would open a block when they start a line: ATX heading, blockquote, bullet,
// setext underline.
const LINE_START_ESCAPE = new Uint8Array(128)
for (const c of "#>-+=") LINE_START_ESCAPE[c.charCodeAt(0)] = 1

const isSpace = (c: number): boolean => (c < 128 ? CLASS[c] === SPACE : c === NBSP)
const isDigit = (c: number): boolean => c >= 48 && c <= 57
// Non-ASCII counts as a word character: `_` between letters of any script cannot emphasise.
const isWordChar = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c > 127 && c !== NBSP)

/** Elements whose whole content is dropped. */
const SKIPPED = new Set([
  "script",
  "style",
  "noscript",
  "template",
  "head",
  "title",
  "svg",
  "canvas",
  "object",
  "embed",
  "select",
  "textarea",
  "audio",
  "video",
  "map"
])

/** Elements rendered as a paragraph-like block. */
const BLOCKS = new Set([
  "p",
  "div",
  "section",
  "article",
  "header",
  "footer",
  "main",
  "nav",
  "aside",
  "address",
  "figure",
  "details",
  "summary",
  "dl",
  "form",
  "fieldset",
  "legend",
  "center",
  "hgroup",
  "body",
  "html"
])

const INLINE_MARKERS: Record<string, string> = {
  strong: "**",
  b: "**",
  em: "_",
  i: "_",
  var: "_",
  del: "~~",
  s: "~~",
  strike: "~~"
}

const INLINE_CODE = new Set(["code", "kbd", "samp", "tt"])

const MARKER_OF = new Map(Object.entries(INLINE_MARKERS))

/** Elements with a case of their own in `MarkdownEmitter.open`. */
const OWN_CASE = [
  "br", "hr", "img", "iframe", "drupal-media", "figcaption", "dt", "dd", "sup", "sub", "h1", "h2", "h3", "h4",
  "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "a", "table", "caption", "tr", "td", "th"
]
const SKIPPED_TAG = 1
const CODE_TAG = 2
const MARKER_TAG = 3
const BLOCK_TAG = 4
const OWN_CASE_TAG = 5
/** The class of every element the emitter knows (others: `undefined`, a transparent element). */
const TAG_CLASS = new Map<string, number>([
  ...[...SKIPPED].map((tag) => [tag, SKIPPED_TAG] as const),
  ...[...INLINE_CODE].map((tag) => [tag, CODE_TAG] as const),
  ...[...MARKER_OF.keys()].map((tag) => [tag, MARKER_TAG] as const),
  ...[...BLOCKS].map((tag) => [tag, BLOCK_TAG] as const),
  ...OWN_CASE.map((tag) => [tag, OWN_CASE_TAG] as const)
])

interface Opener {
  text: string
  written: boolean
}

/** An inline element written as `open … close` (emphasis, link). */
interface InlineFrame {
  readonly open: string
  readonly close: string
  readonly marker: string
  opener: Opener
}

/** The closing text of a written inline frame: emphasis closes with the marker it opened with. */
const closerOf = (inline: InlineFrame): string => inline.marker === "_" ? inline.opener.text : inline.close

interface QuoteContainer {
  readonly kind: "quote"
  started: boolean
}

interface ItemContainer {
  readonly kind: "item"
  readonly marker: string
  readonly indent: string
  started: boolean
}

type Container = QuoteContainer | ItemContainer

interface ListState {
  readonly ordered: boolean
  next: number
  items: number
}

/** A cell spanning rows: its text is repeated in the rows below it, `left` more times. */
interface CarriedCell {
  left: number
  readonly text: string
}

interface TableState {
  headerDone: boolean
  columns: number
  row: { cells: number } | null
  /** Cells of earlier rows that still cover a column (`rowspan`), by column index. */
  readonly carried: Array<CarriedCell | undefined>
  /** The inline state around the table, set aside while its rows are written. */
  readonly suspended: {
    readonly inlineStack: Array<InlineFrame>
    readonly openers: Array<Opener>
    readonly depths: readonly [number, number, number]
  }
}

interface CodeSpan {
  parts: Array<string>
  length: number
  tickRun: number
  maxTick: number
  pendingSpace: boolean
}

// Line states of a streamed code block: could the current line still be a closing fence?
const LEAD = 0
const TICKS = 1
const TRAIL = 2
const OTHER = 3

interface CodeBlock {
  lang: string
  parts: Array<string>
  length: number
  tickRun: number
  maxTick: number
  atStart: boolean
  lastCR: boolean
  hasText: boolean
  streaming: boolean
  fence: string
  lineState: number
  lead: number
  ticks: number
  trail: string
  heldNewlines: number
}

type Frame =
  | { readonly tag: string; readonly kind: "none" }
  | { readonly tag: string; readonly kind: "skip" }
  | { readonly tag: string; readonly kind: "block" }
  | { readonly tag: string; readonly kind: "caption"; readonly inline: InlineFrame }
  | { readonly tag: string; readonly kind: "figcaption"; readonly inline: InlineFrame }
  | { readonly tag: string; readonly kind: "term"; readonly inline: InlineFrame }
  | { readonly tag: string; readonly kind: "heading" }
  | { readonly tag: string; readonly kind: "list"; readonly list: ListState }
  | { readonly tag: string; readonly kind: "item"; readonly container: ItemContainer | null }
  | { readonly tag: string; readonly kind: "quote"; readonly container: QuoteContainer }
  | { readonly tag: string; readonly kind: "pre" }
  | { readonly tag: string; readonly kind: "code" }
  | { readonly tag: string; readonly kind: "inline"; readonly inline: InlineFrame }
  | { readonly tag: string; readonly kind: "table"; readonly table: TableState }
  | { readonly tag: string; readonly kind: "row" }
  | { readonly tag: string; readonly kind: "cell"; readonly span: number; readonly rows: number; readonly column: number }
  | { readonly tag: string; readonly kind: "nestedTable" }

const noneFrame = (tag: string): Frame => ({ tag, kind: "none" })

const INDENTS = Array.from({ length: 16 }, (_, n) => " ".repeat(n))
const indentOf = (n: number): string => n < INDENTS.length ? INDENTS[n]! : " ".repeat(n)
const BACKTICKS = Array.from({ length: 16 }, (_, n) => "`".repeat(n))
const backticks = (n: number): string => n < BACKTICKS.length ? BACKTICKS[n]! : "`".repeat(n)
const HEADING_MARKERS = Array.from({ length: 7 }, (_, n) => "#".repeat(n) + " ")

const hasOtherThanNewlines = (t: string): boolean => {
  for (let i = 0; i < t.length; i++) if (t.charCodeAt(i) !== 10) return true
  return false
}

/** Removes the last occurrence of `item` from `a` (mostly its last element: a pop, no splice). */
const removeLast = <A>(a: Array<A>, item: A): void => {
  const n = a.length
  if (n > 0 && a[n - 1] === item) {
    a.pop()
    return
  }
  const at = a.lastIndexOf(item)
  if (at >= 0) a.splice(at, 1)
}

/**
 * The last element of `a`. Reading past the end of an array (`a[a.length - 1]` when it is empty)
 * takes V8's slow path, about 10× a guarded read: this runs several times per HTML element.
 */
const lastOf = <A>(a: ReadonlyArray<A>): A | undefined => (a.length === 0 ? undefined : a[a.length - 1])

/** `languageOf` by class attribute, for the few code classes a document uses (at most 64). */
const LANGUAGES = new Map<string, string>()

const languageOf = (className: string | undefined): string => {
  if (className === undefined) return ""
  let lang = LANGUAGES.get(className)
  if (lang === undefined) {
    lang = languageOfClass(className)
    if (LANGUAGES.size >= 64) LANGUAGES.clear()
    LANGUAGES.set(className, lang)
  }
  return lang
}

const languageOfClass = (className: string): string => {
  for (const token of className.split(/\s+/)) {
    const lang = token.startsWith("language-") ? token.slice(9) : token.startsWith("lang-") ? token.slice(5) : ""
    // Only characters that cannot end the info string or open another construct.
    const clean = lang.replace(/[^A-Za-z0-9_+#.-]/g, "")
    if (clean !== "") return clean
  }
  return ""
}

/** Longest text of a row-spanning cell repeated in the rows below (longer: left empty). */
const CARRY_MAX = 1024

const spanOf = (value: string | undefined): number => {
  const n = Number.parseInt(value ?? "1", 10)
  return Number.isFinite(n) && n > 1 ? Math.min(n, 1000) : 1
}

const VIDEO_URL = /^https?:\/\/([a-z0-9-]+\.)*(youtube\.com|youtube-nocookie\.com|youtu\.be|vimeo\.com)\//i
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const oneLine = (s: string): string => s.replace(/\s+/g, " ").trim()

const BASIC_ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'", nbsp: " " }

/** Decodes the few entities left in an attribute that holds escaped HTML (`data-caption`). */
const decodeBasic = (s: string): string =>
  s.indexOf("&") < 0 ? s : s.replace(/&(amp|lt|gt|quot|apos|nbsp|#0*39);/g, (_, name: string) => BASIC_ENTITIES[name] ?? "'")

/** Characters of a path that the URL parser keeps as written (no escaping, no normalisation). */
const PLAIN_PATH = new Uint8Array(128)
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~/.") PLAIN_PATH[c.charCodeAt(0)] = 1

/**
 * Whether `s` is a path from the root (`/`, not `//`) of plain characters without a dot segment
 * (no `/.`): resolved against an http(s) base, it is appended to the base's origin unchanged.
 */
const isPlainRootPath = (s: string): boolean => {
  const n = s.length
  if (n === 0 || s.charCodeAt(0) !== 47 || (n > 1 && s.charCodeAt(1) === 47)) return false
  for (let i = 1; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 128 || PLAIN_PATH[c] === 0) return false
    if (c === 46 && s.charCodeAt(i - 1) === 47) return false
  }
  return true
}

/** Entries of a converter's memo of link targets (cleared when full). */
const URL_MEMO_SIZE = 256

const URL_ESCAPES: Record<string, string> = {
  " ": "%20",
  "\t": "%09",
  "\n": "%0A",
  "\r": "%0D",
  "(": "%28",
  ")": "%29",
  "<": "%3C",
  ">": "%3E",
  "|": "%7C"
}

/**
 * Buffers Markdown for one document. Output rules live in the `write…` helpers; the tokenizer
 * callbacks (`onopentag`, `ontext`, `onclosetag`) only dispatch.
 */
class MarkdownEmitter implements HtmlHandler {
  /** Markdown of the current chunk, appended piece by piece (flattened once per chunk in `drain`). */
  private out = ""
  /** The last non-empty string written ("\n" at the start): its last character decides the word-boundary rules. */
  private last = "\n"
  private wroteAny = false
  /** The current output line has its container prefix written and no line break after it. */
  private lineOpen = false
  /** Nothing but the prefix (or a table cell's `| `) is written on the current line/cell yet. */
  private atSegmentStart = true
  /** 0: none, 1: line break, 2: blank line — requested before the next content. */
  private pendingSep = 0
  private pendingSpace = false
  private brCount = 0
  /** A block break inside a table cell, written as `<br>` before the next content. */
  private cellBreak = false
  /** A `_` or `&` whose escaping depends on the next character, not yet written. */
  private held = 0
  private heldPrevWord = false
  /** Digits written since the start of the line (to escape `1.`), or -1. */
  private digitRun = -1
  /** A heading marker (`## `) to write before the heading's first content. */
  private lineMarker: string | null = null
  private readonly openers: Array<Opener> = []
  private readonly inlineStack: Array<InlineFrame> = []
  private readonly containers: Array<Container> = []
  private readonly lists: Array<ListState> = []
  private readonly tables: Array<TableState> = []
  private readonly frames: Array<Frame> = []
  private skipDepth = 0
  private captionDepth = 0
  private headingDepth = 0
  private linkDepth = 0
  private cellDepth = 0
  private strongDepth = 0
  private emDepth = 0
  private delDepth = 0
  private code: CodeSpan | null = null
  private codeDepth = 0
  private pre: CodeBlock | null = null
  /** Number of `push` calls so far: tells whether anything was written between two events. */
  private pushes = 0
  /** `pushes` when the last `<dt>` closed. */
  private termEnd = -1
  /** Text of a cell that spans rows, collected while it is written (bounded by `CARRY_MAX`). */
  private capture: { parts: Array<string>; length: number } | null = null

  /** Links written so far (at most `URL_MEMO_SIZE`): a href's Markdown target by its trimmed value. */
  private readonly urls = new Map<string, string>()
  /** What a root-relative path is appended to (`http://host:port`, credentials kept), for http(s) bases. */
  private readonly rootPrefix: string | undefined

  constructor(private readonly baseUrl: URL | undefined, private readonly maxBuffer: number) {
    this.rootPrefix = baseUrl !== undefined && (baseUrl.protocol === "http:" || baseUrl.protocol === "https:")
      ? new URL("/", baseUrl).href.slice(0, -1)
      : undefined
  }

  drain(): string {
    const out = this.out
    this.out = ""
    // Reading a character flattens the rope of appended pieces in V8 (one copy, while they are
    // young): the pieces, and the input chunks that sliced ones point into, become garbage now,
    // not when the consumer first reads the output.
    out.charCodeAt(out.length >> 1)
    return out
  }

  /** Code unit of the last character written (read only by a few rules: computed on demand). */
  private get lastCode(): number {
    return this.last.charCodeAt(this.last.length - 1)
  }

  finish(): void {
    this.resolveHeld()
    if (this.wroteAny && this.lineOpen) this.push("\n")
  }

  // --- tokenizer handler ------------------------------------------------------------------

  onopentag(name: string, attribs: Record<string, string>): void {
    if (this.skipDepth > 0) {
      this.skipDepth++
      return
    }
    this.resolveHeld()
    this.frames.push(this.open(name, attribs))
  }

  onclosetag(name: string): void {
    if (this.skipDepth > 0) {
      if (--this.skipDepth === 0) this.frames.pop()
      return
    }
    const frame = lastOf(this.frames)
    // The tokenizer (as htmlparser2) closes a tag left unfinished at EOF without having opened it.
    if (frame === undefined || frame.tag !== name) return
    this.frames.pop()
    this.resolveHeld()
    this.close(frame)
  }

  ontext(text: string): void {
    if (this.skipDepth > 0 || text.length === 0) return
    // Text between table rows and cells has no place in a pipe table (HTML would move it before
    // the table): dropped.
    if (this.tables.length > 0 && this.cellDepth === 0 && this.captionDepth === 0) return
    if (this.pre !== null) this.preText(this.pre, text)
    else if (this.code !== null) this.codeText(this.code, text)
    else this.normalText(text)
  }

  // --- elements ----------------------------------------------------------------------------

  private open(tag: string, attribs: Record<string, string>): Frame {
    const tagClass = TAG_CLASS.get(tag)
    if (tagClass === SKIPPED_TAG) {
      this.skipDepth = 1
      return { tag, kind: "skip" }
    }
    if (this.pre !== null) {
      if (tag === "br") this.preText(this.pre, "\n")
      else if (tag === "code" && this.pre.lang === "") this.pre.lang = languageOf(attribs["class"])
      return noneFrame(tag)
    }
    if (this.code !== null) {
      if (tag === "br") this.codeText(this.code, " ")
      return noneFrame(tag)
    }
    // One lookup classifies the tag: most are plain blocks, emphasis or unknown (no string switch).
    switch (tagClass) {
      case undefined:
        return noneFrame(tag)
      case CODE_TAG:
        return this.openCode(tag)
      case MARKER_TAG:
        return this.openEmphasis(tag, MARKER_OF.get(tag)!)
      case BLOCK_TAG:
        this.requestSep(2)
        return { tag, kind: "block" }
    }
    const singleLine = this.cellDepth > 0 || this.headingDepth > 0 || this.linkDepth > 0
    switch (tag) {
      case "br":
        this.lineBreak()
        return noneFrame(tag)
      case "hr":
        if (!singleLine) {
          this.requestSep(2)
          this.beginLine()
          this.push("---")
          this.atSegmentStart = false
          this.requestSep(2)
        }
        return noneFrame(tag)
      case "img":
        this.image(attribs)
        return noneFrame(tag)
      case "iframe":
        // An embedded player (oEmbed video, map): a link to what it shows; its fallback content
        // is dropped.
        this.embed(attribs)
        this.skipDepth = 1
        return { tag, kind: "skip" }
      case "drupal-media":
        // Not a skipped element: a self-closed `<drupal-media />` is not closed in HTML, and
        // skipping it would swallow the rest of the document.
        this.media(attribs)
        return noneFrame(tag)
      case "figcaption":
        this.requestSep(2)
        return { tag, kind: "figcaption", inline: this.captionInline() }
      case "dt":
        this.requestSep(2)
        return { tag, kind: "term", inline: this.openEmphasisInline("**") }
      case "dd":
        this.requestSep(2)
        // A definition right after its term goes on the next line of the same paragraph.
        if (this.termEnd === this.pushes && this.pendingSep === 2) {
          this.pendingSep = 0
          this.brCount = 1
        }
        return { tag, kind: "block" }
      case "sup":
      case "sub":
        // Kept as HTML (GFM renders it): `x^2` or `H2O` would change what the text says.
        return { tag, kind: "inline", inline: this.pushInline(`<${tag}>`, `</${tag}>`, tag) }
      case "h1":
      case "h2":
      case "h3":
      case "h4":
      case "h5":
      case "h6":
        this.requestSep(2)
        if (this.cellDepth === 0 && this.headingDepth === 0 && this.linkDepth === 0) {
          this.lineMarker = HEADING_MARKERS[tag.charCodeAt(1) - 48]!
        }
        this.headingDepth++
        return { tag, kind: "heading" }
      case "ul":
      case "ol": {
        const top = lastOf(this.containers)
        this.requestSep(top !== undefined && top.kind === "item" ? 1 : 2)
        const start = tag === "ol" ? Number.parseInt(attribs["start"] ?? "1", 10) : 1
        const list: ListState = { ordered: tag === "ol", next: Number.isFinite(start) && start >= 0 ? start : 1, items: 0 }
        this.lists.push(list)
        return { tag, kind: "list", list }
      }
      case "li":
        return this.openItem(tag)
      case "blockquote": {
        this.requestSep(2)
        const container: QuoteContainer = { kind: "quote", started: false }
        if (!singleLine) this.containers.push(container)
        return { tag, kind: "quote", container }
      }
      case "pre":
        if (singleLine) return this.openCode(tag)
        this.requestSep(2)
        this.pre = {
          lang: languageOf(attribs["class"]),
          parts: [],
          length: 0,
          tickRun: 0,
          maxTick: 0,
          atStart: true,
          lastCR: false,
          hasText: false,
          streaming: false,
          fence: "```",
          lineState: LEAD,
          lead: 0,
          ticks: 0,
          trail: "",
          heldNewlines: 0
        }
        return { tag, kind: "pre" }
      case "a": {
        const href = attribs["href"]
        if (href === undefined || this.linkDepth > 0 || /^\s*(javascript|vbscript|data):/i.test(href)) {
          return noneFrame(tag)
        }
        this.linkDepth++
        return { tag, kind: "inline", inline: this.pushInline("[", `](${this.url(href)})`, "a") }
      }
      case "table":
        return this.openTable(tag)
      case "caption":
        this.requestSep(2)
        this.captionDepth++
        return { tag, kind: "caption", inline: this.captionInline() }
      case "tr":
        return this.openRow(tag)
      case "td":
      case "th":
        return this.openCell(tag, attribs)
      default:
        return noneFrame(tag)
    }
  }

  private close(frame: Frame): void {
    switch (frame.kind) {
      case "none":
      case "skip":
        return
      case "block":
        this.requestSep(2)
        return
      case "caption":
        this.closeInline(frame.inline)
        this.captionDepth--
        this.requestSep(2)
        return
      case "figcaption":
        this.closeInline(frame.inline)
        this.requestSep(2)
        return
      case "term":
        this.closeInline(frame.inline)
        this.requestSep(2)
        this.termEnd = this.pushes
        return
      case "heading":
        this.headingDepth--
        if (this.headingDepth === 0) this.lineMarker = null
        this.requestSep(2)
        return
      case "list":
        this.lists.pop()
        this.requestSep(2)
        return
      case "item":
        if (frame.container !== null) this.popContainer(frame.container)
        // A blank line, or text after the item would continue it lazily; the next item asks for a
        // plain line break instead.
        this.requestSep(frame.container !== null ? 2 : 1)
        return
      case "quote":
        this.popContainer(frame.container)
        this.requestSep(2)
        return
      case "pre":
        if (this.pre !== null) this.endPre(this.pre)
        this.pre = null
        this.requestSep(2)
        return
      case "code":
        // After a degraded (over-long) span `code` is null while its elements are still open.
        if (--this.codeDepth === 0 && this.code !== null) {
          this.endCodeSpan(this.code)
          this.code = null
        }
        return
      case "inline":
        this.closeInline(frame.inline)
        return
      case "table":
        this.endRow(frame.table)
        this.tables.pop()
        this.inlineStack.push(...frame.table.suspended.inlineStack)
        this.openers.push(...frame.table.suspended.openers)
        ;[this.strongDepth, this.emDepth, this.delDepth] = frame.table.suspended.depths
        this.requestSep(2)
        return
      case "row": {
        const table = lastOf(this.tables)
        if (table !== undefined) this.endRow(table)
        return
      }
      case "cell":
        this.cellDepth--
        this.endCell(frame)
        return
      case "nestedTable":
        this.requestSep(1)
        return
    }
  }

  private popContainer(container: Container): void {
    removeLast(this.containers, container)
  }

  private openItem(tag: string): Frame {
    if (this.cellDepth > 0 || this.headingDepth > 0 || this.linkDepth > 0) {
      this.requestSep(1)
      return { tag, kind: "item", container: null }
    }
    let list = lastOf(this.lists)
    if (list === undefined) {
      list = { ordered: false, next: 1, items: 0 }
      this.lists.push(list)
    }
    // A later item follows its sibling on the next line even after a block that asked for a
    // blank line: keeps the list tight.
    if (list.items > 0) this.pendingSep = 1
    else this.requestSep(1)
    list.items++
    const marker = list.ordered ? `${list.next++}. ` : "- "
    const container: ItemContainer = { kind: "item", marker, indent: indentOf(marker.length), started: false }
    this.containers.push(container)
    return { tag, kind: "item", container }
  }

  private openEmphasis(tag: string, marker: string): Frame {
    return { tag, kind: "inline", inline: this.openEmphasisInline(marker) }
  }

  private openEmphasisInline(marker: string): InlineFrame {
    const depth = marker === "**" ? this.strongDepth++ : marker === "_" ? this.emDepth++ : this.delDepth++
    // Nested emphasis of the same kind renders the same: mark only the outermost.
    return depth === 0 ? this.pushInline(marker, marker, marker) : this.pushInline("", "", marker)
  }

  /** Captions (of tables and figures) are an emphasised paragraph of their own. */
  private captionInline(): InlineFrame {
    return this.openEmphasisInline("_")
  }

  private pushInline(open: string, close: string, marker: string): InlineFrame {
    const opener: Opener = { text: open, written: open === "" }
    if (open !== "") this.openers.push(opener)
    const inline: InlineFrame = { open, close, marker, opener }
    this.inlineStack.push(inline)
    return inline
  }

  private closeInline(inline: InlineFrame): void {
    removeLast(this.inlineStack, inline)
    if (inline.marker === "**") this.strongDepth--
    else if (inline.marker === "_") this.emDepth--
    else if (inline.marker === "~~") this.delDepth--
    else if (inline.marker === "a") this.linkDepth--
    if (inline.open === "") return
    if (inline.opener.written) {
      this.push(closerOf(inline))
      this.digitRun = -1
    } else {
      // Empty element: its opener was never written, so nothing to close.
      removeLast(this.openers, inline.opener)
    }
  }

  private openCode(tag: string): Frame {
    if (this.codeDepth++ === 0) {
      this.code = { parts: [], length: 0, tickRun: 0, maxTick: 0, pendingSpace: false }
    }
    return { tag, kind: "code" }
  }

  private openTable(tag: string): Frame {
    if (this.cellDepth > 0 || this.headingDepth > 0 || this.linkDepth > 0) {
      this.requestSep(1)
      return { tag, kind: "nestedTable" }
    }
    this.requestSep(2)
    // Emphasis or a link around a table cannot span its rows: close it before the table, keep it
    // out of the cells, and reopen it after.
    this.closeInlineForBreak()
    const suspended = {
      inlineStack: this.inlineStack.splice(0),
      openers: this.openers.splice(0),
      depths: [this.strongDepth, this.emDepth, this.delDepth] as const
    }
    this.strongDepth = this.emDepth = this.delDepth = 0
    const table: TableState = { headerDone: false, columns: 0, row: null, carried: [], suspended }
    this.tables.push(table)
    return { tag, kind: "table", table }
  }

  private openRow(tag: string): Frame {
    const table = lastOf(this.tables)
    if (table === undefined || this.cellDepth > 0) {
      this.requestSep(1)
      return { tag, kind: "nestedTable" }
    }
    this.endRow(table)
    table.row = { cells: 0 }
    this.requestSep(1)
    return { tag, kind: "row" }
  }

  private openCell(tag: string, attribs: Record<string, string>): Frame {
    const table = lastOf(this.tables)
    if (table === undefined || this.cellDepth > 0) {
      this.pendingSpace = true
      return noneFrame(tag)
    }
    if (table.row === null) {
      table.row = { cells: 0 }
      this.requestSep(1)
    }
    this.writeCarried(table, table.row, false)
    this.startCell(table.row)
    this.push(" ")
    this.cellDepth++
    this.lineMarker = null
    this.atSegmentStart = true
    this.pendingSpace = false
    this.cellBreak = false
    this.digitRun = -1
    const span = spanOf(attribs["colspan"])
    const rows = spanOf(attribs["rowspan"])
    if (rows > 1) this.capture = { parts: [], length: 0 }
    return { tag, kind: "cell", span, rows, column: table.row.cells }
  }

  /** Writes the `|` that opens a row before its first cell. */
  private startCell(row: { cells: number }): void {
    if (row.cells === 0) {
      this.beginLine()
      this.push("|")
    }
  }

  /**
   * Writes the cells of earlier rows that span down into this row at the current column (and,
   * with `toEnd`, at every later column, with empty cells between), so columns stay aligned and
   * every row carries its own values.
   */
  private writeCarried(table: TableState, row: { cells: number }, toEnd: boolean): void {
    const carried = table.carried
    while (row.cells < carried.length) {
      const cell = carried[row.cells]
      if (cell !== undefined && cell.left > 0) {
        this.startCell(row)
        this.push(" " + cell.text + " |")
        cell.left--
      } else if (toEnd && carried.some((c, i) => i > row.cells && c !== undefined && c.left > 0)) {
        this.startCell(row)
        this.push("  |")
      } else {
        return
      }
      row.cells++
    }
  }

  private endCell(frame: { readonly span: number; readonly rows: number; readonly column: number }): void {
    const table = lastOf(this.tables)
    const capture = this.capture
    this.capture = null
    if (table === undefined || table.row === null) return
    if (frame.rows > 1) {
      const text = capture !== null && capture.length <= CARRY_MAX ? capture.parts.join("").trim() : ""
      for (let i = 0; i < frame.span; i++) {
        table.carried[frame.column + i] = { left: frame.rows - 1, text: i === 0 ? text : "" }
      }
    }
    this.push(" |")
    for (let i = 1; i < frame.span; i++) this.push("  |")
    table.row.cells += frame.span
    this.pendingSpace = false
    this.cellBreak = false
    this.brCount = 0
  }

  private endRow(table: TableState): void {
    const row = table.row
    if (row === null) return
    this.writeCarried(table, row, true)
    table.row = null
    if (row.cells === 0) return
    if (!table.headerDone) {
      table.headerDone = true
      table.columns = row.cells
      // The delimiter row belongs right under the header, whatever was requested meanwhile.
      this.endLine()
      this.push(this.linePrefix())
      this.lineOpen = true
      this.push("|" + " --- |".repeat(row.cells))
    } else {
      for (let i = row.cells; i < table.columns; i++) this.push("  |")
    }
    this.atSegmentStart = false
    this.requestSep(1)
  }

  // --- output primitives ------------------------------------------------------------------

  private push(s: string): void {
    if (s.length === 0) return
    this.pushes++
    const capture = this.capture
    if (capture !== null) {
      capture.length += s.length
      if (capture.length <= CARRY_MAX) capture.parts.push(s)
    }
    this.out += s
    this.last = s
  }

  private requestSep(level: number): void {
    if (this.cellDepth > 0) {
      if (!this.atSegmentStart) this.cellBreak = true
      return
    }
    if (this.headingDepth > 0 || this.linkDepth > 0) {
      this.pendingSpace = true
      return
    }
    const top = lastOf(this.containers)
    // The first block inside a list item or quote shares the container's own separation.
    if (top !== undefined && !top.started) return
    if (level > this.pendingSep) this.pendingSep = level
  }

  private lineBreak(): void {
    if (this.cellDepth > 0) {
      if (!this.atSegmentStart) this.cellBreak = true
    } else if (this.headingDepth > 0 || this.linkDepth > 0) {
      this.pendingSpace = true
    } else if (++this.brCount >= 2) {
      // `<br><br>` is how WYSIWYG editors separate paragraphs.
      this.requestSep(2)
    }
  }

  private linePrefix(): string {
    let prefix = ""
    for (const c of this.containers) {
      if (c.kind === "quote") {
        prefix += "> "
      } else {
        prefix += c.started ? c.indent : c.marker
      }
      c.started = true
    }
    return prefix
  }

  private blankPrefix(): string {
    if (this.containers.length === 0) return ""
    let prefix = ""
    for (const c of this.containers) {
      if (!c.started) break
      prefix += c.kind === "quote" ? "> " : c.indent
    }
    return prefix.trimEnd()
  }

  private endLine(): void {
    if (!this.lineOpen) this.push(this.blankPrefix())
    this.push("\n")
    this.lineOpen = false
    this.atSegmentStart = true
    this.digitRun = -1
  }

  /** Writes pending separations and the line prefix: after it, content goes on the line. */
  private beginLine(): void {
    if (this.pendingSep > 0) {
      if (this.wroteAny) {
        this.closeInlineForBreak()
        if (this.lineOpen) this.endLine()
        if (this.pendingSep === 2) this.endLine()
      }
      this.pendingSep = 0
      this.brCount = 0
      this.pendingSpace = false
    } else if (this.brCount > 0) {
      if (this.lineOpen && !this.atSegmentStart) {
        this.push("\\")
        this.endLine()
      }
      this.brCount = 0
      this.pendingSpace = false
    }
    if (!this.lineOpen) {
      this.push(this.linePrefix())
      this.lineOpen = true
      this.wroteAny = true
      this.atSegmentStart = true
      this.digitRun = -1
    }
  }

  /**
   * Emphasis and links cannot span a blank line: close the written ones before a block break
   * and queue them to reopen before the next content.
   */
  private closeInlineForBreak(): void {
    let any = false
    for (let i = this.inlineStack.length - 1; i >= 0; i--) {
      const inline = this.inlineStack[i]!
      if (inline.open !== "" && inline.opener.written) {
        this.push(closerOf(inline))
        any = true
      }
    }
    if (!any) return
    const pending = this.openers.slice()
    this.openers.length = 0
    for (const inline of this.inlineStack) {
      if (inline.open !== "" && inline.opener.written) {
        inline.opener = { text: inline.open, written: false }
        this.openers.push(inline.opener)
      }
    }
    for (const opener of pending) this.openers.push(opener)
  }

  /** Everything that must precede inline content: separation, prefix, cell break, space. */
  private beginInline(): void {
    this.beginLine()
    if (this.cellBreak) {
      if (!this.atSegmentStart) {
        this.push("<br>")
        this.digitRun = -1
      }
      this.cellBreak = false
      this.pendingSpace = false
    }
    if (this.pendingSpace) {
      if (!this.atSegmentStart) {
        this.push(" ")
        this.digitRun = -1
      }
      this.pendingSpace = false
    }
  }

  private flushOpeners(): void {
    if (this.lineMarker !== null) {
      this.push(this.lineMarker)
      this.lineMarker = null
      this.atSegmentStart = false
      this.digitRun = -1
    }
    const openers = this.openers
    if (openers.length === 0) return
    for (let i = 0; i < openers.length; i++) {
      const opener = openers[i]!
      // `_` cannot open emphasis right after a letter or digit; `*` can.
      if (opener.text === "_" && isWordChar(this.lastCode)) opener.text = "*"
      this.push(opener.text)
      opener.written = true
    }
    // Popped (setting `length` takes the runtime's slow path).
    while (openers.length > 0) openers.pop()
    this.atSegmentStart = false
    this.digitRun = -1
  }

  /** Writes a `_`/`&` held at the end of a text piece; `next` is the following code unit or -1. */
  private resolveHeld(next = -1): void {
    const held = this.held
    if (held === 0) return
    this.held = 0
    if (held === 95) {
      this.push(this.heldPrevWord && next >= 0 && isWordChar(next) ? "_" : "\\_")
    } else {
      this.push(next >= 0 && isSpace(next) ? "&" : "\\&")
    }
  }

  /** Writes an inline construct that is not text (image, code span). */
  private writeAtom(s: string): void {
    this.beginInline()
    this.flushOpeners()
    this.push(s)
    this.atSegmentStart = false
    this.digitRun = -1
  }

  // --- text --------------------------------------------------------------------------------

  private normalText(t: string): void {
    const n = t.length
    let i = 0
    if (this.held !== 0) this.resolveHeld(t.charCodeAt(0))
    while (i < n) {
      let c = t.charCodeAt(i)
      if (isSpace(c)) {
        this.pendingSpace = true
        i++
        while (i < n && isSpace(t.charCodeAt(i))) i++
        continue
      }
      this.beginInline()
      const lineStart = this.atSegmentStart && this.openers.length === 0 && this.lineMarker === null &&
        this.cellDepth === 0 && this.headingDepth === 0
      this.flushOpeners()
      this.atSegmentStart = false
      let start = i
      if (lineStart) {
        if (c < 128 && LINE_START_ESCAPE[c] === 1) this.push("\\")
        this.digitRun = 0
      }
      if (this.digitRun >= 0) {
        while (i < n && isDigit(t.charCodeAt(i)) && this.digitRun < 10) {
          this.digitRun++
          i++
        }
        if (i < n) {
          c = t.charCodeAt(i)
          // `1.` or `1)` at the start of a line would open an ordered list.
          if ((c === 46 || c === 41) && this.digitRun > 0 && this.digitRun <= 9) {
            this.push(t.slice(start, i))
            this.push("\\")
            start = i
          }
          this.digitRun = -1
        }
      }
      for (;; i++) {
        // The next character that is not plain text: a native scan, or a loop over a short rest
        // (a word in a cell, a code span's neighbour), cheaper than a call of the scan.
        if (n - i <= SHORT_TEXT) {
          i = textStop(t, i, n)
          if (i === n) break
        } else {
          TEXT_STOP.lastIndex = i
          if (!TEXT_STOP.test(t)) {
            i = n
            break
          }
          i = TEXT_STOP.lastIndex - 1
        }
        c = t.charCodeAt(i)
        const k = c < 128 ? CLASS[c]! : SPACE
        if (k === SPACE) break
        if (i > start) this.push(t.slice(start, i))
        start = i + 1
        if (k === ALWAYS) {
          this.push(ESCAPED[c]!)
          continue
        }
        switch (c) {
          case 95: // _
            if (i + 1 < n) {
              this.push(isWordChar(this.lastCode) && isWordChar(t.charCodeAt(i + 1)) ? "_" : "\\_")
            } else {
              this.held = 95
              this.heldPrevWord = isWordChar(this.lastCode)
            }
            break
          case 38: // &
            if (i + 1 < n) this.push(isSpace(t.charCodeAt(i + 1)) ? "&" : "\\&")
            else this.held = 38
            break
          case 124: // |
            this.push(this.cellDepth > 0 ? "\\|" : "|")
            break
          default: // #
            this.push(this.headingDepth > 0 && this.lastCode === 32 ? "\\#" : "#")
        }
      }
      if (i > start) this.push(t.slice(start, i))
    }
  }

  private codeText(code: CodeSpan, t: string): void {
    const n = t.length
    let start = 0
    for (let i = 0; i < n; i++) {
      const c = t.charCodeAt(i)
      if (isSpace(c)) {
        if (i > start) this.codePush(code, t.slice(start, i))
        start = i + 1
        if (code.length === 0) this.pendingSpace = true
        else code.pendingSpace = true
        continue
      }
      if (code.pendingSpace) {
        if (i > start) this.codePush(code, t.slice(start, i))
        start = i
        code.pendingSpace = false
        this.codePush(code, " ")
      }
      if (c === BACKTICK) {
        if (++code.tickRun > code.maxTick) code.maxTick = code.tickRun
      } else {
        code.tickRun = 0
      }
    }
    if (start < n) this.codePush(code, t.slice(start))
    if (code.length > this.maxBuffer) {
      // Degrade: close the span with what we have, the rest of the element is plain text.
      this.endCodeSpan(code)
      this.code = null
    }
  }

  private codePush(code: CodeSpan, s: string): void {
    if (s.length === 0) return
    code.parts.push(s)
    code.length += s.length
  }

  private endCodeSpan(code: CodeSpan): void {
    if (code.length > 0) {
      const parts = code.parts
      let content = parts.length === 1 ? parts[0]! : parts.join("")
      if (this.cellDepth > 0 && content.indexOf("|") >= 0) content = content.replaceAll("|", "\\|")
      const fence = backticks(code.maxTick + 1)
      const pad = content.charCodeAt(0) === BACKTICK || content.charCodeAt(content.length - 1) === BACKTICK ? " " : ""
      this.beginInline()
      this.flushOpeners()
      // Backticks right before the span would lengthen its opening fence.
      if (this.lastCode === BACKTICK && !this.atSegmentStart) this.push(" ")
      this.writeAtom(fence + pad + content + pad + fence)
    }
    if (code.pendingSpace) this.pendingSpace = true
    code.parts = []
    code.length = 0
  }

  private image(attribs: Record<string, string>): void {
    const alt = (attribs["alt"] ?? "").replace(/\s+/g, " ").trim()
    const src = attribs["src"]
    const escapedAlt = alt.replace(this.cellDepth > 0 ? /[\\`*_[\]<|]/g : /[\\`*_[\]<]/g, "\\$&")
    if (src === undefined || src.trim() === "" || /^\s*(javascript|vbscript|data):/i.test(src)) {
      // An inline data: image would flood the text with base64: keep what it says, not what it is.
      if (alt !== "") this.writeAtom(escapedAlt)
      return
    }
    this.writeAtom(`![${escapedAlt}](${this.url(src)})`)
  }

  /** An embedded frame: a link to what it shows (the provider's URL for Drupal's oEmbed route). */
  private embed(attribs: Record<string, string>): void {
    const src = (attribs["src"] ?? attribs["data-src"] ?? "").trim()
    if (src === "" || /^(javascript|vbscript|data):/i.test(src)) return
    let target = src
    const q = src.indexOf("?")
    if (q >= 0 && /\/media\/oembed$/.test(src.slice(0, q))) {
      const url = new URLSearchParams(src.slice(q + 1)).get("url")
      if (url !== null && /^https?:\/\//i.test(url)) target = url
    }
    const kind = VIDEO_URL.test(target) ? "Video" : "Embedded content"
    const title = oneLine(attribs["title"] ?? "")
    this.blockLink(title === "" ? kind : `${kind}: ${title}`, target)
  }

  /** CKEditor 5's `<drupal-media>`: its caption (or alt) and a `urn:uuid:` link to the entity. */
  private media(attribs: Record<string, string>): void {
    const caption = oneLine(decodeBasic((attribs["data-caption"] ?? "").slice(0, CARRY_MAX).replace(/<[^>]*>/g, "")))
    const label = caption !== "" ? caption : oneLine(attribs["alt"] ?? "")
    const uuid = (attribs["data-entity-uuid"] ?? "").trim()
    this.blockLink(label === "" ? "Media" : `Media: ${label}`, UUID.test(uuid) ? `urn:uuid:${uuid}` : undefined)
  }

  /** A link (or, inside a link, its text) as a paragraph of its own. */
  private blockLink(label: string, href: string | undefined): void {
    this.requestSep(2)
    const text = label.replace(this.cellDepth > 0 ? /[\\`*_[\]<|]/g : /[\\`*_[\]<]/g, "\\$&")
    this.writeAtom(href === undefined || this.linkDepth > 0 ? text : `[${text}](${this.url(href)})`)
    this.requestSep(2)
  }

  private url(raw: string): string {
    const trimmed = raw.trim()
    // A plain root-relative path (most links and images of a Drupal site) resolves to the base's
    // origin followed by the path as written: no URL parse per link.
    if (this.rootPrefix !== undefined && isPlainRootPath(trimmed)) return this.rootPrefix + trimmed
    // Documents link to the same few pages again and again: those are parsed once.
    const known = this.urls.get(trimmed)
    if (known !== undefined) return known
    let href = trimmed
    if (this.baseUrl !== undefined) {
      try {
        href = new URL(trimmed, this.baseUrl).href
      } catch {
        href = trimmed
      }
    }
    const written = href.replace(/[\s()<>|]/g, (c) => URL_ESCAPES[c] ?? encodeURIComponent(c))
    if (this.urls.size >= URL_MEMO_SIZE) this.urls.clear()
    this.urls.set(trimmed, written)
    return written
  }

  // --- code blocks -------------------------------------------------------------------------

  private preText(pre: CodeBlock, raw: string): void {
    let t = raw
    if (pre.lastCR && t.charCodeAt(0) === 10) t = t.slice(1)
    pre.lastCR = false
    if (t.length === 0) return
    pre.lastCR = t.charCodeAt(t.length - 1) === 13
    if (t.indexOf("\r") >= 0) t = t.replace(/\r\n?/g, "\n")
    if (pre.atStart) {
      pre.atStart = false
      // HTML drops the line break that directly follows `<pre>`.
      if (t.charCodeAt(0) === 10) t = t.slice(1)
      if (t.length === 0) return
    }
    if (!pre.hasText && hasOtherThanNewlines(t)) pre.hasText = true
    if (pre.streaming) {
      this.streamCode(pre, t)
      return
    }
    // Backtick runs, found with native scans (code rarely holds any).
    let tick = t.indexOf("`")
    if (tick < 0) {
      pre.tickRun = 0
    } else {
      if (tick > 0) pre.tickRun = 0
      while (tick >= 0) {
        let end = tick + 1
        while (end < t.length && t.charCodeAt(end) === BACKTICK) end++
        pre.tickRun += end - tick
        if (pre.tickRun > pre.maxTick) pre.maxTick = pre.tickRun
        if (end === t.length) break
        pre.tickRun = 0
        tick = t.indexOf("`", end)
      }
    }
    pre.parts.push(t)
    pre.length += t.length
    if (pre.length > this.maxBuffer) this.startCodeBlock(pre)
  }

  /** Writes the opening fence and everything buffered; from now on the block streams. */
  private startCodeBlock(pre: CodeBlock): void {
    pre.streaming = true
    pre.fence = backticks(Math.max(3, pre.maxTick + 1))
    this.beginLine()
    this.push(pre.fence + pre.lang)
    this.atSegmentStart = false
    const parts = pre.parts
    pre.parts = []
    pre.length = 0
    pre.heldNewlines = 1
    for (const part of parts) this.streamCode(pre, part)
  }

  private endPre(pre: CodeBlock): void {
    if (!pre.streaming) {
      if (!pre.hasText) return
      this.startCodeBlock(pre)
    }
    this.endCodeLine(pre)
    // Trailing line breaks of the content are formatting; the closing fence starts its own line.
    pre.heldNewlines = 1
    this.writeCodeText(pre, pre.fence)
    this.atSegmentStart = false
  }

  private streamCode(pre: CodeBlock, t: string): void {
    const n = t.length
    let i = 0
    while (i < n) {
      const nl = t.indexOf("\n", i)
      const end = nl < 0 ? n : nl
      if (end > i) this.codeSegment(pre, t, i, end)
      if (nl < 0) return
      this.endCodeLine(pre)
      pre.heldNewlines++
      i = nl + 1
    }
  }

  private writeCodeText(pre: CodeBlock, s: string): void {
    for (; pre.heldNewlines > 0; pre.heldNewlines--) this.endLine()
    if (!this.lineOpen) {
      this.push(this.linePrefix())
      this.lineOpen = true
    }
    this.push(s)
  }

  /**
   * Writes a piece of one code line. While the line so far could still be a closing fence
   * (up to 3 spaces, backticks, spaces) it is only counted, not written.
   */
  private codeSegment(pre: CodeBlock, t: string, from: number, end: number): void {
    if (pre.lineState === OTHER) {
      this.writeCodeText(pre, t.slice(from, end))
      return
    }
    let j = from
    for (; j < end; j++) {
      const c = t.charCodeAt(j)
      if (pre.lineState === LEAD) {
        if (c === 32 && pre.lead < 3) pre.lead++
        else if (c === BACKTICK) {
          pre.lineState = TICKS
          pre.ticks = 1
        } else break
      } else if (pre.lineState === TICKS) {
        if (c === BACKTICK) pre.ticks++
        else if (c === 32 || c === 9) {
          pre.lineState = TRAIL
          pre.trail = String.fromCharCode(c)
        } else break
      } else if (c === 32 || c === 9) {
        pre.trail += String.fromCharCode(c)
      } else break
    }
    if (j < end) {
      pre.lineState = OTHER
      this.writeCodeText(pre, this.heldLine(pre) + t.slice(j, end))
    }
  }

  private heldLine(pre: CodeBlock): string {
    if (pre.lead === 0 && pre.ticks === 0) return pre.trail
    return indentOf(pre.lead) + backticks(pre.ticks) + pre.trail
  }

  private endCodeLine(pre: CodeBlock): void {
    if (pre.lineState !== OTHER) {
      const held = this.heldLine(pre)
      if (pre.ticks >= pre.fence.length) {
        // This line would close the fence: end the block and go on in a new one whose fence is
        // longer, so the content stays verbatim.
        this.writeCodeText(pre, pre.fence)
        pre.fence = backticks(pre.ticks + 1)
        pre.heldNewlines = 1
        this.writeCodeText(pre, pre.fence + pre.lang)
        pre.heldNewlines = 1
      }
      if (held.length > 0) this.writeCodeText(pre, held)
    }
    pre.lineState = LEAD
    pre.lead = 0
    pre.ticks = 0
    pre.trail = ""
  }
}
