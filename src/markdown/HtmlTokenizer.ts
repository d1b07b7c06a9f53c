/**
 * A streaming HTML tokenizer and tree builder for the Markdown converter: the events htmlparser2
 * 12's `Parser` emits in HTML mode with `decodeEntities`, `lowerCaseTags` and
 * `lowerCaseAttributeNames` on (open tags with their attributes, text, close tags, implied ones
 * included), from any split of the input, at about three times its speed (350–370 against
 * 108–116 MB/s of Drupal HTML here, with callbacks that only count).
 *
 * It is a port of htmlparser2 12.0's `Tokenizer` and `Parser` reduced to what the converter uses,
 * with the same states, entity decoder (`entities`' `EntityDecoder`) and tree rules (implied
 * closes, void elements, `</p>` and `</br>`, a second `<form>`, foreign content, raw-text and
 * RCDATA elements). What makes it faster:
 * - an ordinary start or end tag that ends in the chunk is read by a fast path in tight loops
 *   and emitted as the states would (anything else, and a tag cut by the chunk's end, is read by
 *   the states from its `<`), where htmlparser2 visits every character through its state switch;
 * - text and quoted attribute values are found with native `indexOf` (the chunk's next `&` is
 *   looked up once until it is passed); common entities are decoded from a table; tag and
 *   attribute names come from a small cache, common ones as internalized strings (comparisons
 *   and lookups by pointer); elements without attributes share one frozen empty object;
 * - the tree rules call the handler directly: no optional callbacks, no per-event index
 *   bookkeeping, the open elements on an array's end (htmlparser2 unshifts and shifts); a name's
 *   rules are one record, kept with the name in the cache (no set lookups per tag);
 * - a slice of the input is made only for what the handler receives: comments, declarations and
 *   processing instructions are skipped without building their text, and an input chunk is kept
 *   only while a name, an entity or a raw-text end tag begun in it is still being read
 *   (htmlparser2 keeps every chunk since the start of the oldest open section, a whole comment
 *   for instance).
 * `test/markdown/HtmlTokenizer.test.ts` holds it to htmlparser2's events on generated documents
 * and chunkings (htmlparser2 stays a development dependency for that).
 *
 * Memory: a tag or attribute name cut by the end of a chunk is carried to the next one (as
 * htmlparser2 does); attribute values are assembled until their tag ends; text is handed over at
 * the end of every chunk.
 *
 * Derived from htmlparser2 (https://github.com/fb55/htmlparser2), MIT License,
 * Copyright 2010, 2011, Chris Winberry <chris@winberry.net>. All rights reserved.
 * Permission is hereby granted, free of charge, to any person obtaining a copy of this software
 * and associated documentation files (the "Software"), to deal in the Software without
 * restriction, including without limitation the rights to use, copy, modify, merge, publish,
 * distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
 * Software is furnished to do so, subject to the following conditions: The above copyright notice
 * and this permission notice shall be included in all copies or substantial portions of the
 * Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
 * INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE
 * AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
 * DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 * OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
 *
 * @since 0.1.0
 */
import { DecodingMode, EntityDecoder, htmlDecodeTree } from "entities/decode"

/** What the tokenizer calls, in document order. */
export interface HtmlHandler {
  /**
   * An element opens; `attribs` holds each attribute's first value, names in lower case (read
   * only: elements without attributes share one frozen empty object).
   */
  onopentag(name: string, attribs: Record<string, string>): void
  /** Text, entities decoded; a run of text may come in several calls. */
  ontext(text: string): void
  /** An element closes: an end tag, a void element, or an implied close (also at the end). */
  onclosetag(name: string): void
}

// --- characters ---------------------------------------------------------------------------

const TAB = 9
const NEW_LINE = 10
const FORM_FEED = 12
const CARRIAGE_RETURN = 13
const SPACE = 32
const EXCLAMATION = 33
const DOUBLE_QUOTE = 34
const AMP = 38
const SINGLE_QUOTE = 39
const DASH = 45
const SLASH = 47
const LT = 60
const EQ = 61
const GT = 62
const QUESTION = 63
const OPENING_SQUARE_BRACKET = 91

const isWhitespace = (c: number): boolean =>
  c === SPACE || c === NEW_LINE || c === TAB || c === FORM_FEED || c === CARRIAGE_RETURN

const isEndOfTagSection = (c: number): boolean => c === SLASH || c === GT || isWhitespace(c)

const isAsciiAlpha = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90)

/** 1 where a tag name ends (whitespace, `/`, `>`); 2 for `=`, which also ends an attribute name. */
const NAME_END = new Uint8Array(128)
for (const c of [TAB, NEW_LINE, FORM_FEED, CARRIAGE_RETURN, SPACE, SLASH, GT]) NAME_END[c] = 1
NAME_END[EQ] = 2

// --- sequences ----------------------------------------------------------------------------

const bytes = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0))
const EMPTY = new Uint8Array(0)
const CDATA = bytes("CDATA[")
const CDATA_END = bytes("]]>")
const COMMENT_END = bytes("--!>")
const DOCTYPE = bytes("doctype")
const IFRAME_END = bytes("</iframe")
const NOEMBED_END = bytes("</noembed")
const NOFRAMES_END = bytes("</noframes")
const PLAINTEXT = bytes("</plaintext")
const SCRIPT_END = bytes("</script")
const STYLE_END = bytes("</style")
const TITLE_END = bytes("</title")
const TEXTAREA_END = bytes("</textarea")
const XMP_END = bytes("</xmp")

/** The raw-text and RCDATA elements (their content is read by the states, not by the fast path). */
const SPECIAL_NAMES = new Set(["iframe", "noembed", "noframes", "plaintext", "script", "style", "title", "textarea", "xmp"])

/** The raw-text / RCDATA element a tag name may be, by its first letter (matched from index 3). */
const SPECIAL_START: Array<Uint8Array | undefined> = Array.from({ length: 128 }, () => undefined)
for (const sequence of [IFRAME_END, NOEMBED_END, PLAINTEXT, SCRIPT_END, TITLE_END, XMP_END]) {
  SPECIAL_START[sequence[2]!] = sequence
}

// --- states -------------------------------------------------------------------------------

const TEXT = 1
const BEFORE_TAG_NAME = 2
const IN_TAG_NAME = 3
const IN_SELF_CLOSING_TAG = 4
const BEFORE_CLOSING_TAG_NAME = 5
const IN_CLOSING_TAG_NAME = 6
const AFTER_CLOSING_TAG_NAME = 7
const BEFORE_ATTRIBUTE_NAME = 8
const IN_ATTRIBUTE_NAME = 9
const AFTER_ATTRIBUTE_NAME = 10
const BEFORE_ATTRIBUTE_VALUE = 11
const IN_ATTRIBUTE_VALUE_DQ = 12
const IN_ATTRIBUTE_VALUE_SQ = 13
const IN_ATTRIBUTE_VALUE_NQ = 14
const BEFORE_DECLARATION = 15
const IN_DECLARATION = 16
const BEFORE_COMMENT = 18
const CDATA_SEQUENCE = 19
const DECLARATION_SEQUENCE = 20
const IN_SPECIAL_COMMENT = 21
const IN_COMMENT_LIKE = 22
const SPECIAL_START_SEQUENCE = 23
const IN_SPECIAL_TAG = 24
const IN_PLAIN_TEXT = 25
const IN_ENTITY = 26

// --- tree rules (htmlparser2's Parser, HTML mode) -------------------------------------------

const FORM_TAGS = new Set(["input", "option", "optgroup", "select", "button", "datalist", "textarea"])
const P_TAG = new Set(["p"])
const HEADING_TAGS = new Set(["h1", "h2", "h3", "h4", "h5", "h6", "p"])
const TABLE_SECTION_TAGS = new Set(["thead", "tbody"])
const DDT_TAGS = new Set(["dd", "dt"])
const RTP_TAGS = new Set(["rt", "rp"])
/** Open elements that opening a tag closes first (while one of them is the current element). */
const OPEN_IMPLIES_CLOSE = new Map<string, ReadonlySet<string>>([
  ["tr", new Set(["tr", "th", "td"])],
  ["th", new Set(["th"])],
  ["td", new Set(["thead", "th", "td"])],
  ["body", new Set(["head", "link", "script"])],
  ["a", new Set(["a"])],
  ["li", new Set(["li"])],
  ["p", P_TAG],
  ["h1", HEADING_TAGS],
  ["h2", HEADING_TAGS],
  ["h3", HEADING_TAGS],
  ["h4", HEADING_TAGS],
  ["h5", HEADING_TAGS],
  ["h6", HEADING_TAGS],
  ["select", FORM_TAGS],
  ["input", FORM_TAGS],
  ["output", FORM_TAGS],
  ["button", FORM_TAGS],
  ["datalist", FORM_TAGS],
  ["textarea", FORM_TAGS],
  ["option", new Set(["option"])],
  ["optgroup", new Set(["optgroup", "option"])],
  ["dd", DDT_TAGS],
  ["dt", DDT_TAGS],
  ...[
    "address", "article", "aside", "blockquote", "details", "div", "dl", "fieldset", "figcaption", "figure",
    "footer", "form", "header", "hr", "main", "nav", "ol", "pre", "section", "table", "ul"
  ].map((tag) => [tag, P_TAG] as const),
  ["rt", RTP_TAGS],
  ["rp", RTP_TAGS],
  ["tbody", TABLE_SECTION_TAGS],
  ["tfoot", TABLE_SECTION_TAGS]
])
const VOID_ELEMENTS = new Set([
  "area", "base", "basefont", "br", "col", "command", "embed", "frame", "hr", "img", "input", "isindex",
  "keygen", "link", "meta", "param", "source", "track", "wbr"
])
const FOREIGN_CONTEXT_ELEMENTS = new Set(["math", "svg"])
/** Elements whose content is HTML again inside SVG or MathML (SVG-adjusted names). */
const HTML_INTEGRATION_ELEMENTS = new Set(["mi", "mo", "mn", "ms", "mtext", "annotation-xml", "foreignObject", "desc", "title"])
const NO_FOREIGN = 0
const SVG = 1
const MATH_ML = 2

/** A void element: closed as soon as it opens. */
const VOID = 1
/** Opens a foreign context or an HTML integration point, closed with the element. */
const CONTEXT = 2
/** A raw-text or RCDATA element. */
const SPECIAL = 4

/** The tree rules of one element name, found with one lookup per tag. */
interface TagRule {
  readonly flags: number
  /** Open elements that opening it closes first (`OPEN_IMPLIES_CLOSE`). */
  readonly closes: ReadonlySet<string> | undefined
  /** The foreign context it opens (with `CONTEXT`). */
  readonly context: number
}

/** Rules of the names some rule applies to; any other name has none. */
const RULES = new Map<string, TagRule>()
for (
  const name of new Set([
    ...OPEN_IMPLIES_CLOSE.keys(),
    ...VOID_ELEMENTS,
    ...FOREIGN_CONTEXT_ELEMENTS,
    ...HTML_INTEGRATION_ELEMENTS,
    ...SPECIAL_NAMES
  ])
) {
  const context = name === "svg" ? SVG : name === "math" ? MATH_ML : NO_FOREIGN
  const flags = (VOID_ELEMENTS.has(name) ? VOID : 0) |
    (FOREIGN_CONTEXT_ELEMENTS.has(name) || HTML_INTEGRATION_ELEMENTS.has(name) ? CONTEXT : 0) |
    (SPECIAL_NAMES.has(name) ? SPECIAL : 0)
  RULES.set(name, { flags, closes: OPEN_IMPLIES_CLOSE.get(name), context })
}

const SVG_TAG_NAMES = new Map(
  [
    "altGlyph", "altGlyphDef", "altGlyphItem", "animateColor", "animateMotion", "animateTransform", "clipPath", "feBlend",
    "feColorMatrix", "feComponentTransfer", "feComposite", "feConvolveMatrix", "feDiffuseLighting", "feDisplacementMap",
    "feDistantLight", "feDropShadow", "feFlood", "feFuncA", "feFuncB", "feFuncG", "feFuncR", "feGaussianBlur", "feImage",
    "feMerge", "feMergeNode", "feMorphology", "feOffset", "fePointLight", "feSpecularLighting", "feSpotLight", "feTile",
    "feTurbulence", "foreignObject", "glyphRef", "linearGradient", "radialGradient", "textPath"
  ].map((name) => [name.toLowerCase(), name] as const)
)

const { fromCodePoint } = String

/** A copy of `s` that shares no memory with the string it was sliced from. */
const unpinned = (s: string): string => Buffer.from(s, "utf16le").toString("utf16le")

/**
 * Common element and attribute names, each mapped to itself: a name read from the input is
 * replaced by this copy, an internalized string (a source literal), so that comparing it with a
 * literal, a set or map lookup and an attribute key compare pointers instead of characters.
 */
const KNOWN_NAMES = new Map<string, string>()
for (
  const name of [
    ...RULES.keys(),
    "a", "abbr", "article", "aside", "audio", "b", "bdi", "bdo", "blockquote", "body", "canvas", "caption",
    "center", "cite", "code", "colgroup", "data", "dd", "del", "details", "dfn", "dialog", "div", "dl",
    "drupal-media", "dt", "em", "figcaption", "figure", "font", "footer", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "head", "header", "hgroup", "html", "i", "image", "ins", "kbd", "label", "legend", "li", "main", "map",
    "mark", "nav", "noscript", "object", "ol", "optgroup", "option", "output", "p", "picture", "pre", "q", "rp",
    "rt", "ruby", "s", "samp", "section", "select", "small", "span", "strike", "strong", "sub", "summary", "sup",
    "table", "tbody", "td", "template", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "video",
    "align", "alt", "aria-label", "class", "colspan", "data-align", "data-caption", "data-entity-type",
    "data-entity-uuid", "data-src", "data-view-mode", "dir", "height", "href", "id", "lang", "loading", "name",
    "rel", "role", "rowspan", "scope", "srcset", "src", "start", "style", "target", "title", "type", "value",
    "width"
  ]
) KNOWN_NAMES.set(name, name)

/**
 * Entities common in Drupal text, with a `;`, and their text, as pairs in arrays by the code unit
 * after the `&` (see `commonEntity`).
 */
const COMMON_ENTITIES: Array<Array<string> | undefined> = []
for (
  const [source, text] of [
    ["&#039;", "'"], ["&#39;", "'"], ["&quot;", "\""], ["&amp;", "&"], ["&lt;", "<"], ["&gt;", ">"],
    ["&nbsp;", "\u00a0"], ["&copy;", "\u00a9"], ["&hellip;", "\u2026"], ["&rsquo;", "\u2019"],
    ["&lsquo;", "\u2018"], ["&ldquo;", "\u201c"], ["&rdquo;", "\u201d"], ["&mdash;", "\u2014"],
    ["&ndash;", "\u2013"], ["&apos;", "'"]
  ] as const
) (COMMON_ENTITIES[source.charCodeAt(1)] ??= []).push(source, text)

/** The attributes of an element that has none (shared: handlers only read them). */
const NO_ATTRIBUTES: Record<string, string> = Object.freeze({}) as Record<string, string>

/** Entries of the tag and attribute name cache (a power of two). */
const NAME_CACHE_SIZE = 256

/**
 * The tokenizer: `write` chunks in order, then `end` once. Single use, not shareable between
 * documents. Never throws on malformed HTML.
 */
export class HtmlTokenizer {
  private state = TEXT
  /** The current chunk and the absolute position of its first code unit. */
  private buffer = ""
  private offset = 0
  /** Absolute positions: the code unit being read, the start of the current section. */
  private index = 0
  private sectionStart = 0
  private entityStart = 0
  private baseState = TEXT
  private isSpecial = false
  private currentSequence: Uint8Array = EMPTY
  private sequenceIndex = 0
  private readonly entityDecoder: EntityDecoder
  /** Input from `carryStart` to `offset`: the part of an open section read in earlier chunks. */
  private carry = ""
  private carryStart = 0
  private ended = false
  /** See `nextAmpFrom`; -1 until looked up in the chunk. */
  private nextAmp = -1

  /** Names met in this document (see `lowerName`). */
  private readonly names: Array<string> = Array.from({ length: NAME_CACHE_SIZE }, () => "")

  // Tree builder.
  private tagname = ""
  private attribname = ""
  private attribvalue = ""
  private attribs: Record<string, string> | null = null
  /** Open elements, the current one last; `stackFlags` holds their rules' flags. */
  private readonly stack: Array<string> = []
  private readonly stackFlags: Array<number> = []
  /** The rules' flags of `tagname`. */
  private tagFlags = 0
  /** The rules of the name read last (see `lowerName`), and of each name in the cache. */
  private nameRule: TagRule | undefined = undefined
  private readonly nameRules: Array<TagRule | undefined> = Array.from({ length: NAME_CACHE_SIZE }, () => undefined)
  /** Foreign contexts, the current one last (never empty). */
  private readonly foreignContext: Array<number> = [NO_FOREIGN]

  constructor(private readonly handler: HtmlHandler) {
    this.entityDecoder = new EntityDecoder(htmlDecodeTree, (cp, consumed) => this.emitCodePoint(cp, consumed))
  }

  write(chunk: string): void {
    if (this.ended || chunk.length === 0) return
    this.offset += this.buffer.length
    this.buffer = chunk
    this.nextAmp = -1
    this.parse()
  }

  end(): void {
    if (this.ended) return
    this.ended = true
    if (this.state === IN_ENTITY) {
      this.entityDecoder.end()
      this.state = this.baseState
    }
    this.handleTrailingData()
    const stack = this.stack
    for (let i = stack.length - 1; i >= 0; i--) this.handler.onclosetag(stack[i]!)
    stack.length = 0
    this.stackFlags.length = 0
  }

  // --- the main loop ----------------------------------------------------------------------

  private parse(): void {
    const buffer = this.buffer
    const end = this.offset + buffer.length
    while (this.index < end) {
      const c = buffer.charCodeAt(this.index - this.offset)
      switch (this.state) {
        case TEXT:
          this.stateText(c)
          break
        case IN_ATTRIBUTE_VALUE_DQ:
          this.stateInAttributeValueQuoted(c, DOUBLE_QUOTE)
          break
        case IN_ATTRIBUTE_NAME:
          this.stateInAttributeName(c)
          break
        case BEFORE_ATTRIBUTE_NAME:
          this.stateBeforeAttributeName(c)
          break
        case IN_TAG_NAME:
          this.stateInTagName(c)
          break
        case IN_CLOSING_TAG_NAME:
          this.stateInClosingTagName(c)
          break
        case BEFORE_TAG_NAME:
          this.stateBeforeTagName(c)
          break
        case AFTER_ATTRIBUTE_NAME:
          this.stateAfterAttributeName(c)
          break
        case BEFORE_ATTRIBUTE_VALUE:
          this.stateBeforeAttributeValue(c)
          break
        case BEFORE_CLOSING_TAG_NAME:
          this.stateBeforeClosingTagName(c)
          break
        case AFTER_CLOSING_TAG_NAME:
          this.stateAfterClosingTagName(c)
          break
        case IN_ATTRIBUTE_VALUE_SQ:
          this.stateInAttributeValueQuoted(c, SINGLE_QUOTE)
          break
        case IN_ENTITY:
          this.stateInEntity()
          break
        case SPECIAL_START_SEQUENCE:
          this.stateSpecialStartSequence(c)
          break
        case IN_SPECIAL_TAG:
          this.stateInSpecialTag(c)
          break
        case IN_PLAIN_TEXT:
          this.index = end - 1
          break
        case CDATA_SEQUENCE:
          this.stateCdataSequence(c)
          break
        case DECLARATION_SEQUENCE:
          this.stateDeclarationSequence(c)
          break
        case IN_COMMENT_LIKE:
          this.stateInCommentLike(c)
          break
        case IN_SPECIAL_COMMENT:
          this.stateInSpecialComment(c)
          break
        case IN_ATTRIBUTE_VALUE_NQ:
          this.stateInAttributeValueNoQuotes(c)
          break
        case IN_SELF_CLOSING_TAG:
          this.stateInSelfClosingTag(c)
          break
        case IN_DECLARATION:
          this.stateInDeclaration(c)
          break
        case BEFORE_DECLARATION:
          this.stateBeforeDeclaration(c)
          break
        case BEFORE_COMMENT:
          this.stateBeforeComment(c)
      }
      this.index++
    }
    this.cleanup(end)
  }

  /** Hands over the text and attribute data read so far; carries what a later event needs. */
  private cleanup(end: number): void {
    const state = this.state
    if (this.sectionStart !== this.index) {
      if (state === TEXT || state === IN_PLAIN_TEXT || (state === IN_SPECIAL_TAG && this.sequenceIndex === 0)) {
        this.emitText(this.sectionStart, this.index)
        this.sectionStart = this.index
      } else if (state === IN_ATTRIBUTE_VALUE_DQ || state === IN_ATTRIBUTE_VALUE_SQ || state === IN_ATTRIBUTE_VALUE_NQ) {
        this.attribvalue += this.slice(this.sectionStart, this.index)
        this.sectionStart = this.index
      }
    }
    // States whose section a later event reads (a name, text before an entity or an end tag).
    const keep = state === IN_TAG_NAME || state === SPECIAL_START_SEQUENCE || state === IN_CLOSING_TAG_NAME ||
      state === IN_ATTRIBUTE_NAME || state === IN_ENTITY || state === IN_SPECIAL_TAG || state === BEFORE_TAG_NAME ||
      (state === IN_COMMENT_LIKE && this.currentSequence === CDATA_END)
    if (keep && this.sectionStart >= 0 && this.sectionStart < end) {
      this.carry = this.slice(this.sectionStart, end)
      this.carryStart = this.sectionStart
    } else {
      this.carry = ""
      this.carryStart = end
    }
  }

  /** The input from `start` to `end` (absolute); `start` may lie in the carried part. */
  private slice(start: number, end: number): string {
    if (start >= end) return ""
    const offset = this.offset
    if (start >= offset) return this.buffer.slice(start - offset, end - offset)
    const head = this.carry.slice(start - this.carryStart, Math.min(end, offset) - this.carryStart)
    return end > offset ? head + this.buffer.slice(0, end - offset) : head
  }

  /** Moves `index` to just before the next `a` or `b` in the chunk (or its last code unit). */
  private skipUntil(a: number, b: number): void {
    const buffer = this.buffer
    const n = buffer.length
    let i = this.index - this.offset + 1
    while (i < n) {
      const c = buffer.charCodeAt(i)
      if (c === a || c === b) break
      i++
    }
    this.index = this.offset + i - 1
  }

  /** Moves `index` to just before the next character ending a name (`NAME_END` ≤ `level`). */
  private skipName(level: number): void {
    const buffer = this.buffer
    const n = buffer.length
    let i = this.index - this.offset + 1
    while (i < n) {
      const c = buffer.charCodeAt(i)
      if (c < 128) {
        const k = NAME_END[c]!
        if (k !== 0 && k <= level) break
      }
      i++
    }
    this.index = this.offset + i - 1
  }

  /** Whether the character was found; else `index` is on the chunk's last code unit. */
  private fastForwardTo(c: number): boolean {
    const buffer = this.buffer
    const at = buffer.indexOf(String.fromCharCode(c), this.index - this.offset + 1)
    if (at >= 0) {
      this.index = this.offset + at
      return true
    }
    this.index = this.offset + buffer.length - 1
    return false
  }

  // --- tokenizer states ---------------------------------------------------------------------

  private stateText(c: number): void {
    if (c === LT) {
      if (this.index > this.sectionStart) this.emitText(this.sectionStart, this.index)
      if (this.tag()) return
      this.state = BEFORE_TAG_NAME
      this.sectionStart = this.index
    } else if (c === AMP) {
      if (!this.commonEntity()) this.startEntity()
    } else {
      // To the next `<` or `&` (native scans).
      const buffer = this.buffer
      const at = this.index - this.offset + 1
      let lt = buffer.indexOf("<", at)
      if (lt < 0) lt = buffer.length
      const amp = this.nextAmpFrom(at)
      this.index = this.offset + (lt < amp ? lt : amp) - 1
    }
  }

  /**
   * At a `&` in text: a common entity written in full in this chunk (`&amp;`, `&#039;`, …) is
   * decoded from a table, as the entity decoder would decode it, without its per-character
   * states; returns `false` for anything else, which the decoder then reads.
   */
  private commonEntity(): boolean {
    const buffer = this.buffer
    const at = this.index - this.offset
    const candidates = at + 1 < buffer.length ? COMMON_ENTITIES[buffer.charCodeAt(at + 1)] : undefined
    if (candidates === undefined) return false
    for (let k = 0; k < candidates.length; k += 2) {
      const source = candidates[k]!
      if (!buffer.startsWith(source, at)) continue
      if (this.index > this.sectionStart) this.emitText(this.sectionStart, this.index)
      this.sectionStart = this.index + source.length
      this.index = this.sectionStart - 1
      this.handler.ontext(candidates[k + 1]!)
      return true
    }
    return false
  }

  /**
   * Where the chunk's first `&` at or after `at` is (the chunk's length if none): looked up once
   * and kept until passed (the tokenizer only moves forward), so a chunk without one is not
   * scanned again at every text run.
   */
  private nextAmpFrom(at: number): number {
    let amp = this.nextAmp
    if (amp < at) {
      amp = this.buffer.indexOf("&", at)
      if (amp < 0) amp = this.buffer.length
      this.nextAmp = amp
    }
    return amp
  }

  /**
   * The fast path of a tag: at its `<`, reads a whole ordinary start or end tag that ends in this
   * chunk in tight loops and emits it as the states would; returns `false`, having emitted
   * nothing, for anything else (a raw-text element, a `/` not followed by `>`, an entity in an
   * attribute value, foreign content's self-closing tags, a tag cut by the chunk's end), which the
   * states then read from the `<`.
   */
  private tag(): boolean {
    const buffer = this.buffer
    const offset = this.offset
    const n = buffer.length
    let i = this.index - offset + 1
    if (i >= n) return false
    let c = buffer.charCodeAt(i)
    if (c === SLASH) return this.endTag(i + 1)
    if (!isAsciiAlpha(c)) return false
    const nameStart = i
    while (++i < n) {
      c = buffer.charCodeAt(i)
      if (c < 128 && NAME_END[c] === 1) break
    }
    if (i >= n) return false
    const foreign = this.foreignContext[this.foreignContext.length - 1] !== NO_FOREIGN
    const specialStart = !foreign && SPECIAL_START[buffer.charCodeAt(nameStart) | 0x20] !== undefined
    const name = this.readTagName(offset + nameStart, offset + i)
    const rule = this.nameRule
    if (specialStart && rule !== undefined && (rule.flags & SPECIAL) !== 0) return false
    let attribs: Record<string, string> | null = null
    for (;;) {
      while (isWhitespace(c) && ++i < n) c = buffer.charCodeAt(i)
      if (i >= n) return false
      if (c === GT) break
      if (c === SLASH) {
        // `<br/>`: the `/` is ignored in HTML; in foreign content it closes the element.
        if (foreign || i + 1 >= n || buffer.charCodeAt(i + 1) !== GT) return false
        i++
        break
      }
      // An attribute: its name starts with any other character.
      const attributeStart = i
      while (++i < n) {
        c = buffer.charCodeAt(i)
        if (c < 128 && NAME_END[c] !== 0) break
      }
      if (i >= n) return false
      const attributeName = this.lowerName(offset + attributeStart, offset + i)
      while (isWhitespace(c) && ++i < n) c = buffer.charCodeAt(i)
      if (i >= n) return false
      let value = ""
      if (c === EQ) {
        while (++i < n && isWhitespace(c = buffer.charCodeAt(i)));
        if (i >= n) return false
        const valueStart = c === DOUBLE_QUOTE || c === SINGLE_QUOTE ? i + 1 : i
        if (valueStart !== i) {
          const close = buffer.indexOf(c === DOUBLE_QUOTE ? "\"" : "'", valueStart)
          if (close < 0 || this.nextAmpFrom(valueStart) < close) return false
          value = buffer.slice(valueStart, close)
          i = close + 1
          c = i < n ? buffer.charCodeAt(i) : 0
        } else {
          for (; i < n; c = buffer.charCodeAt(++i)) {
            if (c === GT || isWhitespace(c)) break
            if (c === AMP) return false
          }
          if (i >= n) return false
          value = buffer.slice(valueStart, i)
        }
      }
      if (attribs === null) attribs = {}
      if (!Object.hasOwn(attribs, attributeName)) attribs[attributeName] = value
    }
    if (specialStart) this.currentSequence = EMPTY
    this.emitOpenTag(name, rule)
    // A second <form> was ignored with its attributes.
    if (attribs !== null && this.attribs !== null) this.attribs = attribs
    this.endOpenTag()
    this.index = offset + i
    this.sectionStart = this.index + 1
    this.enterTagBody()
    return true
  }

  /** {@link tag} for an end tag, from the code unit after `</`. */
  private endTag(from: number): boolean {
    const buffer = this.buffer
    const offset = this.offset
    const n = buffer.length
    let i = from
    if (i >= n || !isAsciiAlpha(buffer.charCodeAt(i))) return false
    let c = 0
    while (++i < n) {
      c = buffer.charCodeAt(i)
      if (c < 128 && NAME_END[c] === 1) break
    }
    if (i >= n) return false
    const gt = c === GT ? i : buffer.indexOf(">", i)
    if (gt < 0) return false
    this.closeTag(this.readTagName(offset + from, offset + i), this.nameRule)
    this.index = offset + gt
    this.sectionStart = this.index + 1
    this.state = TEXT
    return true
  }

  private enterTagBody(): void {
    if (this.currentSequence === PLAINTEXT) {
      this.currentSequence = EMPTY
      this.state = IN_PLAIN_TEXT
    } else if (this.isSpecial) {
      this.state = IN_SPECIAL_TAG
      this.sequenceIndex = 0
    } else {
      this.state = TEXT
    }
  }

  private stateSpecialStartSequence(c: number): void {
    const lower = c | 0x20
    if (this.sequenceIndex < this.currentSequence.length) {
      if (lower === this.currentSequence[this.sequenceIndex]) {
        this.sequenceIndex++
        return
      }
      if (this.sequenceIndex === 3) {
        if (this.currentSequence === SCRIPT_END && lower === STYLE_END[3]) {
          this.currentSequence = STYLE_END
          this.sequenceIndex = 4
          return
        }
        if (this.currentSequence === TITLE_END && lower === TEXTAREA_END[3]) {
          this.currentSequence = TEXTAREA_END
          this.sequenceIndex = 4
          return
        }
      } else if (this.sequenceIndex === 4 && this.currentSequence === NOEMBED_END && lower === NOFRAMES_END[4]) {
        this.currentSequence = NOFRAMES_END
        this.sequenceIndex = 5
        return
      }
    } else if (isEndOfTagSection(c)) {
      this.sequenceIndex = 0
      this.state = IN_TAG_NAME
      this.stateInTagName(c)
      return
    }
    this.isSpecial = false
    this.currentSequence = EMPTY
    this.sequenceIndex = 0
    this.state = IN_TAG_NAME
    this.stateInTagName(c)
  }

  private stateCdataSequence(c: number): void {
    if (c === CDATA[this.sequenceIndex]) {
      if (++this.sequenceIndex === CDATA.length) {
        this.state = IN_COMMENT_LIKE
        this.currentSequence = CDATA_END
        this.sequenceIndex = 0
        this.sectionStart = this.index + 1
      }
    } else {
      this.sequenceIndex = 0
      this.state = IN_SPECIAL_COMMENT
      this.stateInSpecialComment(c)
    }
  }

  /** A comment (`offset`: code units of its end sequence before `index`) ends: nothing to emit. */
  private endComment(): void {
    this.sequenceIndex = 0
    this.sectionStart = this.index + 1
    this.state = TEXT
  }

  private stateInCommentLike(c: number): void {
    const sequence = this.currentSequence
    if (
      sequence === COMMENT_END && this.sequenceIndex <= 1 && this.index === this.sectionStart + this.sequenceIndex &&
      c === GT
    ) {
      this.endComment()
    } else if (sequence === COMMENT_END && this.sequenceIndex === 2 && c === GT) {
      this.endComment()
    } else if (sequence === COMMENT_END && this.sequenceIndex === sequence.length - 1 && c !== GT) {
      this.sequenceIndex = c === DASH ? 1 : 0
    } else if (c === sequence[this.sequenceIndex]) {
      if (++this.sequenceIndex === sequence.length) {
        if (sequence === CDATA_END) this.oncdata(this.sectionStart, this.index - 2)
        this.endComment()
      }
    } else if (this.sequenceIndex === 0) {
      if (this.fastForwardTo(sequence[0]!)) this.sequenceIndex = 1
    } else if (c !== sequence[this.sequenceIndex - 1]) {
      this.sequenceIndex = 0
    }
  }

  private stateInSpecialTag(c: number): void {
    if (this.sequenceIndex === this.currentSequence.length) {
      if (isEndOfTagSection(c)) {
        const endOfText = this.index - this.currentSequence.length
        if (this.sectionStart < endOfText) this.emitText(this.sectionStart, endOfText)
        this.isSpecial = false
        this.sectionStart = endOfText + 2
        this.stateInClosingTagName(c)
        return
      }
      this.sequenceIndex = 0
    }
    if ((c | 0x20) === this.currentSequence[this.sequenceIndex]) {
      this.sequenceIndex += 1
    } else if (this.sequenceIndex === 0) {
      if (this.currentSequence === TITLE_END || this.currentSequence === TEXTAREA_END) {
        // RCDATA: entities are decoded while looking for the end tag.
        if (c === AMP) this.startEntity()
      } else if (this.fastForwardTo(LT)) {
        this.sequenceIndex = 1
      }
    } else {
      this.sequenceIndex = c === LT ? 1 : 0
    }
  }

  private stateBeforeTagName(c: number): void {
    if (c === EXCLAMATION) {
      this.state = BEFORE_DECLARATION
      this.sectionStart = this.index + 1
    } else if (c === QUESTION) {
      this.state = IN_SPECIAL_COMMENT
      this.sectionStart = this.index
    } else if (isAsciiAlpha(c)) {
      this.sectionStart = this.index
      const special = this.foreignContext[this.foreignContext.length - 1] !== NO_FOREIGN
        ? undefined
        : SPECIAL_START[c | 0x20]
      if (special === undefined) {
        this.state = IN_TAG_NAME
      } else {
        this.isSpecial = true
        this.currentSequence = special
        this.sequenceIndex = 3
        this.state = SPECIAL_START_SEQUENCE
      }
    } else if (c === SLASH) {
      this.state = BEFORE_CLOSING_TAG_NAME
    } else {
      this.state = TEXT
      this.stateText(c)
    }
  }

  private stateInTagName(c: number): void {
    if (isEndOfTagSection(c)) {
      this.emitOpenTag(this.readTagName(this.sectionStart, this.index), this.nameRule)
      this.sectionStart = -1
      this.state = BEFORE_ATTRIBUTE_NAME
      this.stateBeforeAttributeName(c)
    } else {
      this.skipName(1)
    }
  }

  private stateBeforeClosingTagName(c: number): void {
    if (isWhitespace(c)) {
      this.state = IN_SPECIAL_COMMENT
      this.sectionStart = this.index
    } else if (c === GT) {
      this.state = TEXT
      this.sectionStart = this.index + 1
    } else {
      this.state = isAsciiAlpha(c) ? IN_CLOSING_TAG_NAME : IN_SPECIAL_COMMENT
      this.sectionStart = this.index
    }
  }

  private stateInClosingTagName(c: number): void {
    if (isEndOfTagSection(c)) {
      this.closeTag(this.readTagName(this.sectionStart, this.index), this.nameRule)
      this.sectionStart = -1
      this.state = AFTER_CLOSING_TAG_NAME
      this.stateAfterClosingTagName(c)
    } else {
      this.skipName(1)
    }
  }

  private stateAfterClosingTagName(c: number): void {
    if (c === GT || this.fastForwardTo(GT)) {
      this.state = TEXT
      this.sectionStart = this.index + 1
    }
  }

  private stateBeforeAttributeName(c: number): void {
    if (c === GT) {
      this.endOpenTag()
      this.enterTagBody()
      this.sectionStart = this.index + 1
    } else if (c === SLASH) {
      this.state = IN_SELF_CLOSING_TAG
    } else if (!isWhitespace(c)) {
      this.state = IN_ATTRIBUTE_NAME
      this.sectionStart = this.index
    }
  }

  private stateInSelfClosingTag(c: number): void {
    if (c === GT) {
      this.onSelfClosingTag()
      this.sectionStart = this.index + 1
      // HTML mode: raw-text elements still enter their text state.
      this.enterTagBody()
    } else if (!isWhitespace(c)) {
      this.state = BEFORE_ATTRIBUTE_NAME
      this.stateBeforeAttributeName(c)
    }
  }

  private stateInAttributeName(c: number): void {
    if (c === EQ || isEndOfTagSection(c)) {
      this.attribname = this.lowerName(this.sectionStart, this.index)
      this.sectionStart = this.index
      this.state = AFTER_ATTRIBUTE_NAME
      this.stateAfterAttributeName(c)
    } else {
      this.skipName(2)
    }
  }

  private stateAfterAttributeName(c: number): void {
    if (c === EQ) {
      this.state = BEFORE_ATTRIBUTE_VALUE
    } else if (c === SLASH || c === GT) {
      this.endAttribute()
      this.sectionStart = -1
      this.state = BEFORE_ATTRIBUTE_NAME
      this.stateBeforeAttributeName(c)
    } else if (!isWhitespace(c)) {
      this.endAttribute()
      this.state = IN_ATTRIBUTE_NAME
      this.sectionStart = this.index
    }
  }

  private stateBeforeAttributeValue(c: number): void {
    if (c === DOUBLE_QUOTE) {
      this.state = IN_ATTRIBUTE_VALUE_DQ
      this.sectionStart = this.index + 1
    } else if (c === SINGLE_QUOTE) {
      this.state = IN_ATTRIBUTE_VALUE_SQ
      this.sectionStart = this.index + 1
    } else if (!isWhitespace(c)) {
      this.sectionStart = this.index
      this.state = IN_ATTRIBUTE_VALUE_NQ
      this.stateInAttributeValueNoQuotes(c)
    }
  }

  private stateInAttributeValueQuoted(c: number, quote: number): void {
    if (c === quote) {
      this.attribvalue += this.slice(this.sectionStart, this.index)
      this.sectionStart = -1
      this.endAttribute()
      this.state = BEFORE_ATTRIBUTE_NAME
    } else if (c === AMP) {
      this.startEntity()
    } else {
      this.skipUntil(quote, AMP)
    }
  }

  private stateInAttributeValueNoQuotes(c: number): void {
    if (isWhitespace(c) || c === GT) {
      this.attribvalue += this.slice(this.sectionStart, this.index)
      this.sectionStart = -1
      this.endAttribute()
      this.state = BEFORE_ATTRIBUTE_NAME
      this.stateBeforeAttributeName(c)
    } else if (c === AMP) {
      this.startEntity()
    }
  }

  private stateBeforeDeclaration(c: number): void {
    if (c === OPENING_SQUARE_BRACKET) {
      this.state = CDATA_SEQUENCE
      this.sequenceIndex = 0
    } else if ((c | 0x20) === DOCTYPE[0]) {
      this.state = DECLARATION_SEQUENCE
      this.currentSequence = DOCTYPE
      this.sequenceIndex = 1
    } else if (c === GT) {
      this.endComment()
    } else if (c === DASH) {
      this.state = BEFORE_COMMENT
    } else {
      this.state = IN_SPECIAL_COMMENT
    }
  }

  private stateDeclarationSequence(c: number): void {
    if (this.sequenceIndex === this.currentSequence.length) {
      this.state = IN_DECLARATION
      this.stateInDeclaration(c)
    } else if ((c | 0x20) === this.currentSequence[this.sequenceIndex]) {
      this.sequenceIndex += 1
    } else if (c === GT) {
      this.endComment()
    } else {
      this.state = IN_SPECIAL_COMMENT
    }
  }

  private stateInDeclaration(c: number): void {
    if (c === GT || this.fastForwardTo(GT)) {
      this.state = TEXT
      this.sectionStart = this.index + 1
    }
  }

  private stateBeforeComment(c: number): void {
    if (c === DASH) {
      this.state = IN_COMMENT_LIKE
      this.currentSequence = COMMENT_END
      this.sequenceIndex = 0
      this.sectionStart = this.index + 1
    } else if (c === GT) {
      this.endComment()
    } else {
      this.state = IN_SPECIAL_COMMENT
    }
  }

  private stateInSpecialComment(c: number): void {
    if (c === GT || this.fastForwardTo(GT)) {
      this.state = TEXT
      this.sectionStart = this.index + 1
    }
  }

  private startEntity(): void {
    this.baseState = this.state
    this.state = IN_ENTITY
    this.entityStart = this.index
    this.entityDecoder.startEntity(
      this.baseState === TEXT || this.baseState === IN_SPECIAL_TAG ? DecodingMode.Legacy : DecodingMode.Attribute
    )
  }

  private stateInEntity(): void {
    const indexInBuffer = this.index - this.offset
    const length = this.entityDecoder.write(this.buffer, indexInBuffer)
    if (length >= 0) {
      this.state = this.baseState
      if (length === 0) this.index -= 1
    } else if (indexInBuffer < this.buffer.length && this.buffer.charCodeAt(indexInBuffer) === AMP) {
      this.state = this.baseState
      this.index -= 1
    } else {
      this.index = this.offset + this.buffer.length - 1
    }
  }

  private emitCodePoint(cp: number, consumed: number): void {
    if (this.baseState !== TEXT && this.baseState !== IN_SPECIAL_TAG) {
      if (this.sectionStart < this.entityStart) this.attribvalue += this.slice(this.sectionStart, this.entityStart)
      this.sectionStart = this.entityStart + consumed
      this.index = this.sectionStart - 1
      this.attribvalue += fromCodePoint(cp)
    } else {
      if (this.sectionStart < this.entityStart) this.emitText(this.sectionStart, this.entityStart)
      this.sectionStart = this.entityStart + consumed
      this.index = this.sectionStart - 1
      this.handler.ontext(fromCodePoint(cp))
    }
  }

  private handleTrailingData(): void {
    const endIndex = this.buffer.length + this.offset
    const state = this.state
    if (state === IN_COMMENT_LIKE) {
      // An unclosed CDATA section is a comment in HTML: nothing to emit, as for comments.
      return
    }
    if (
      state === BEFORE_DECLARATION || state === IN_SPECIAL_COMMENT || state === BEFORE_COMMENT ||
      state === CDATA_SEQUENCE || state === DECLARATION_SEQUENCE || state === IN_DECLARATION
    ) {
      return
    }
    // No section (-1): the document ends inside a tag after its name (`</b x`, `<br/`); htmlparser2
    // would emit a slice from a negative index there (its last code unit): the tag is dropped.
    if (this.sectionStart < 0 || this.sectionStart >= endIndex) return
    switch (state) {
      case IN_TAG_NAME:
      case BEFORE_ATTRIBUTE_NAME:
      case BEFORE_ATTRIBUTE_VALUE:
      case AFTER_ATTRIBUTE_NAME:
      case IN_ATTRIBUTE_NAME:
      case IN_ATTRIBUTE_VALUE_SQ:
      case IN_ATTRIBUTE_VALUE_DQ:
      case IN_ATTRIBUTE_VALUE_NQ:
      case IN_CLOSING_TAG_NAME:
        // A tag cut by the end of the document is dropped.
        break
      default:
        this.emitText(this.sectionStart, endIndex)
    }
  }

  // --- tree builder ---------------------------------------------------------------------------

  private emitText(start: number, end: number): void {
    this.handler.ontext(this.slice(start, end))
  }

  private oncdata(start: number, end: number): void {
    // CDATA is text in foreign content, a comment elsewhere.
    if (this.foreignContext[this.foreignContext.length - 1] !== NO_FOREIGN) this.handler.ontext(this.slice(start, end))
  }

  /**
   * The name from `start` to `end` in lower case. Names met before come from a small cache keyed
   * by length and first and last code units, checked against the input in place: no string is
   * made, and the one returned has its hash computed already (every set and map lookup needs it).
   * Sets `nameRule` to the name's rules (kept with the name in the cache: no lookup on a hit).
   */
  private lowerName(start: number, end: number): string {
    const length = end - start
    const at = start - this.offset
    if (at < 0 || length > 24 || length === 0) {
      const name = this.slice(start, end).toLowerCase()
      this.nameRule = RULES.get(name)
      return name
    }
    const buffer = this.buffer
    // Multipliers chosen so that the common names of Drupal HTML do not share an entry.
    const key = (length * 10 + buffer.charCodeAt(at) * 35 + buffer.charCodeAt(at + length - 1) * 11) & (NAME_CACHE_SIZE - 1)
    const cached = this.names[key]!
    if (cached.length === length && buffer.startsWith(cached, at)) {
      this.nameRule = this.nameRules[key]
      return cached
    }
    const written = buffer.slice(at, at + length)
    const lower = written.toLowerCase()
    const known = KNOWN_NAMES.get(lower)
    const name = known ?? lower
    const rule = RULES.get(name)
    this.nameRule = rule
    // Only names written in lower case are cached: they are what `startsWith` can find. An
    // unknown long entry is copied: a slice of 13 or more code units would keep the whole chunk
    // alive in V8 (a shorter one is a copy already).
    if (lower === written) {
      this.names[key] = known !== undefined || length < 13 ? name : unpinned(name)
      this.nameRules[key] = rule
    }
    return name
  }

  /** A tag name: {@link lowerName} adjusted to its context; sets `nameRule` to its rules. */
  private readTagName(start: number, end: number): string {
    const name = this.lowerName(start, end)
    const context = this.foreignContext[this.foreignContext.length - 1]
    if (context === SVG) return this.adjusted(name, SVG_TAG_NAMES.get(name))
    if (this.foreignContext.length > 1) {
      // The end tag of an SVG element in its own HTML content (`</foreignObject>`).
      const adjusted = SVG_TAG_NAMES.get(name)
      if (adjusted !== undefined && this.stack.includes(adjusted)) return this.adjusted(name, adjusted)
    }
    if (context === NO_FOREIGN && name === "image") return this.adjusted(name, "img")
    return name
  }

  /** `adjusted` in place of `name` when there is one, `nameRule` following. */
  private adjusted(name: string, adjusted: string | undefined): string {
    if (adjusted === undefined || adjusted === name) return name
    this.nameRule = RULES.get(adjusted)
    return adjusted
  }

  private emitOpenTag(name: string, rule: TagRule | undefined = RULES.get(name)): void {
    this.tagname = name
    // A second <form> is ignored (attributes and all).
    if (name === "form" && this.stack.includes("form")) {
      this.tagname = ""
      this.tagFlags = 0
      return
    }
    const stack = this.stack
    const flags = rule === undefined ? 0 : rule.flags
    this.tagFlags = flags
    const impliesClose = rule === undefined ? undefined : rule.closes
    if (impliesClose !== undefined) {
      while (stack.length > 0 && impliesClose.has(stack[stack.length - 1]!)) this.popElement()
    }
    if ((flags & VOID) === 0) {
      stack.push(name)
      this.stackFlags.push(flags)
      if ((flags & CONTEXT) !== 0) this.foreignContext.push(rule!.context)
    }
    this.attribs = NO_ATTRIBUTES
  }

  private endOpenTag(): void {
    const name = this.tagname
    if (this.attribs !== null) {
      const attribs = this.attribs
      this.attribs = null
      this.handler.onopentag(name, attribs)
    }
    if ((this.tagFlags & VOID) !== 0) this.handler.onclosetag(name)
    this.tagname = ""
    this.tagFlags = 0
  }

  private endAttribute(): void {
    let attribs = this.attribs
    if (attribs === NO_ATTRIBUTES) this.attribs = attribs = {}
    if (attribs !== null && !Object.hasOwn(attribs, this.attribname)) attribs[this.attribname] = this.attribvalue
    this.attribvalue = ""
  }

  private onSelfClosingTag(): void {
    if (this.foreignContext[this.foreignContext.length - 1] !== NO_FOREIGN) this.closeCurrentTag()
    else this.endOpenTag()
  }

  private closeTag(name: string, rule: TagRule | undefined = RULES.get(name)): void {
    const stack = this.stack
    if (rule === undefined || (rule.flags & VOID) === 0) {
      const at = stack.lastIndexOf(name)
      if (at !== -1) {
        while (stack.length > at) this.popElement()
      } else if (name === "p") {
        // `</p>` with no open p: an empty paragraph.
        this.emitOpenTag("p")
        this.closeCurrentTag()
      }
    } else if (name === "br") {
      // `</br>` is a line break.
      this.handler.onopentag("br", NO_ATTRIBUTES)
      this.handler.onclosetag("br")
    }
  }

  private popElement(): void {
    const element = this.stack.pop()!
    if ((this.stackFlags.pop()! & CONTEXT) !== 0) this.foreignContext.pop()
    this.handler.onclosetag(element)
  }

  private closeCurrentTag(): void {
    const name = this.tagname
    this.endOpenTag()
    const stack = this.stack
    if (stack.length > 0 && stack[stack.length - 1] === name) this.popElement()
  }
}
