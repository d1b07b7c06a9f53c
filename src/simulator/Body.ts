/**
 * Tutorial bodies: a deterministic sequence of blocks generated from an item's seed and terms,
 * rendered as HTML or Markdown from the same blocks. The HTML is what Drupal stores from
 * CKEditor 5: headings (some with ids, down to `h6`), paragraphs (with `<kbd>`, `<sup>`,
 * `<span>`, links with `target`/`rel`), nested lists and step lists whose items hold a paragraph
 * and code, code blocks, tables (in `<figure class="table">` with a `<figcaption>`, or bare with a
 * `<caption>`; group rows with `colspan`, cells with `rowspan`), images (in
 * `<figure class="image">` with a caption), `<drupal-media>` embeds, the oEmbed `<iframe>` of a
 * video item, call-outs, block quotes (with `<br>`), glossaries (`dl`), rules, editor comments,
 * empty `<p>&nbsp;</p>` paragraphs and the odd `<script>`/`<style>`. Text carries `&#039;`,
 * `&rsquo;`, `&mdash;`, `&ndash;`, `&hellip;`, `&nbsp;`, `&amp;`, `&copy;` and non-ASCII letters;
 * an item whose `langcode` is not English is written in that language (see `LanguagePack`).
 *
 * The Markdown rendering is what the gateway's converter makes of that HTML: captions as an
 * emphasised paragraph, `<drupal-media>` as `[Media: …](urn:uuid:…)`, the video as a link to the
 * provider, `dt` bold with its `dd` on the next line, `kbd` as code, `sup` kept as HTML, row spans
 * repeated; comments, `&nbsp;` paragraphs, scripts and styles render to nothing.
 *
 * Bodies are never held whole: {@link bodyChunks} yields strings of about `chunkSize` characters
 * while it generates, so a 50 MB body costs one chunk of memory at a time. The block sequence
 * stops once the HTML rendering reaches the item's target size, in both formats, so the HTML and
 * Markdown of one item always describe the same blocks.
 *
 * @since 0.1.0
 */
import { chance, int, makeRng, mixSeed, pick, type Rng } from "./Random.js"
import {
  type CodeLanguage,
  COMMENTS,
  EXTERNAL_LINKS,
  type HeadingLevel,
  type LanguagePack,
  LANGUAGES,
  type Langcode,
  SCRIPTS,
  SHORTCUTS,
  STYLES,
  TABLE_HEADERS,
  TABLE_NOTES,
  TAGS,
  VIDEOS
} from "./Vocabulary.js"

/** Output format of a body. */
export type BodyFormat = "html" | "markdown"

/** What a body is generated from; all of it comes from the item's metadata. */
export interface BodySource {
  readonly id: number
  readonly seed: number
  readonly title: string
  /** `video` items open with their oEmbed player. */
  readonly contentType: string
  /** Language the body is written in. */
  readonly langcode: Langcode
  /** Topic words of the item (lower case). */
  readonly terms: ReadonlyArray<string>
  /** Topic phrases of the item. */
  readonly topics: ReadonlyArray<string>
  /** Module machine name used in code and inline code. */
  readonly module: string
  /** Indexes into `TAGS` of the item's tags. */
  readonly tagIndexes: ReadonlyArray<number>
  readonly drupalVersion: string
  /** Size the HTML rendering must reach, in characters (UTF-16 code units). */
  readonly targetChars: number
  /** Highest item id, for internal links. */
  readonly maxId: number
}

type Inline =
  | { readonly k: "text"; readonly s: string }
  | { readonly k: "strong"; readonly s: string }
  | { readonly k: "em"; readonly s: string }
  | { readonly k: "code"; readonly s: string }
  | { readonly k: "link"; readonly href: string; readonly s: string; readonly blank: boolean }
  | { readonly k: "kbd"; readonly keys: ReadonlyArray<string> }
  | { readonly k: "sup"; readonly s: string }
  | { readonly k: "span"; readonly s: string }
  | { readonly k: "nbsp" }
  | { readonly k: "amp" }
  | { readonly k: "copy" }

interface ListBlock {
  readonly ordered: boolean
  readonly items: ReadonlyArray<{ readonly inl: ReadonlyArray<Inline>; readonly sub: ListBlock | undefined }>
}

interface Step {
  readonly inl: ReadonlyArray<Inline>
  readonly code: { readonly lang: CodeLanguage; readonly code: string } | undefined
}

interface Cell {
  readonly inl: ReadonlyArray<Inline>
  readonly colspan: number
  readonly rowspan: number
  /** Covered by the `rowspan` cell above: not in the HTML, repeated in the Markdown. */
  readonly covered: boolean
}

type Block =
  | { readonly k: "h"; readonly level: HeadingLevel; readonly text: string; readonly id: string | undefined }
  | { readonly k: "p"; readonly inl: ReadonlyArray<Inline> }
  | { readonly k: "list"; readonly list: ListBlock }
  | { readonly k: "steps"; readonly steps: ReadonlyArray<Step> }
  | { readonly k: "code"; readonly lang: CodeLanguage; readonly code: string }
  | {
    readonly k: "table"
    readonly head: ReadonlyArray<string>
    readonly rows: ReadonlyArray<ReadonlyArray<Cell>>
    readonly caption: ReadonlyArray<Inline> | undefined
    /** CKEditor 5's `<figure class="table">` (caption as `<figcaption>`), or a bare table. */
    readonly figure: boolean
  }
  | {
    readonly k: "img"
    readonly src: string
    readonly alt: string
    readonly caption: ReadonlyArray<Inline> | undefined
  }
  | { readonly k: "media"; readonly uuid: string; readonly caption: string }
  | { readonly k: "video"; readonly url: string; readonly title: string; readonly hash: string }
  | { readonly k: "note"; readonly label: string; readonly inl: ReadonlyArray<Inline> }
  | { readonly k: "quote"; readonly text: string; readonly by: string }
  | {
    readonly k: "dl"
    readonly entries: ReadonlyArray<{ readonly term: string; readonly inl: ReadonlyArray<Inline> }>
  }
  | { readonly k: "hr" }
  | { readonly k: "empty" }
  | { readonly k: "comment"; readonly s: string }
  | { readonly k: "script"; readonly s: string }
  | { readonly k: "style"; readonly s: string }

type Segment = string | { readonly slot: string }

/**
 * The text as V8's one-byte string when it is ASCII. A slice of a template holding `’` or `—` is
 * stored two bytes per character even when the slice is ASCII, and one such piece makes every
 * chunk it is joined into two-byte: slower to join, escape and encode.
 */
const oneByte = (s: string): string => (/[^\x00-\x7f]/.test(s) ? s : Buffer.from(s, "latin1").toString("latin1"))

const compile = (template: string): ReadonlyArray<Segment> => {
  const out: Array<Segment> = []
  const text = (s: string) => {
    // Runs of ASCII and of other characters apart, so that only the latter are two-byte.
    for (const run of s.match(/[\x00-\x7f]+|[^\x00-\x7f]+/g) ?? []) out.push(oneByte(run))
  }
  const re = /\{([A-Za-z0-9]+)\}/g
  let last = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(template)) !== null) {
    if (m.index > last) text(template.slice(last, m.index))
    out.push({ slot: m[1] as string })
    last = m.index + m[0].length
  }
  if (last < template.length) text(template.slice(last))
  return out
}

/** A language pack with its templates compiled once. */
interface CompiledPack {
  readonly pack: LanguagePack
  readonly sentences: ReadonlyArray<ReadonlyArray<Segment>>
  readonly listItems: ReadonlyArray<ReadonlyArray<Segment>>
  readonly steps: ReadonlyArray<ReadonlyArray<Segment>>
  readonly headings: { readonly [L in HeadingLevel]: ReadonlyArray<ReadonlyArray<Segment>> }
  readonly alts: ReadonlyArray<ReadonlyArray<Segment>>
  readonly captions: ReadonlyArray<ReadonlyArray<Segment>>
  readonly definitions: ReadonlyArray<ReadonlyArray<Segment>>
}

const compilePack = (pack: LanguagePack): CompiledPack => ({
  pack,
  sentences: pack.sentences.map(compile),
  listItems: pack.listItems.map(compile),
  steps: pack.steps.map(compile),
  headings: {
    2: pack.headings[2].map(compile),
    3: pack.headings[3].map(compile),
    4: pack.headings[4].map(compile),
    5: pack.headings[5].map(compile),
    6: pack.headings[6].map(compile)
  },
  alts: pack.imageAlts.map(compile),
  captions: pack.captions.map(compile),
  definitions: pack.definitions.map(compile)
})

const PACKS: { readonly [L in Langcode]: CompiledPack } = {
  en: compilePack(LANGUAGES.en),
  de: compilePack(LANGUAGES.de),
  fr: compilePack(LANGUAGES.fr),
  es: compilePack(LANGUAGES.es)
}

/** First letter upper case. */
export const capitalize = (s: string): string => (s.length === 0 ? s : s[0]!.toUpperCase() + s.slice(1))

/** Title Case for topic phrases, keeping words that already carry capitals ("CKEditor"). */
export const titleCase = (s: string): string =>
  s.split(" ").map((w) => (/[A-Z]/.test(w) || w === "the" || w === "and" ? w : capitalize(w))).join(" ")

/** The `id` CKEditor's heading-id plugins give a heading: its slug, made unique by a counter. */
const headingId = (text: string, n: number): string =>
  `${
    text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(
      /^-|-$/g,
      ""
    )
  }-${n}`

/** A UUID made of decimal digits only, so that no body word is outside the search vocabulary. */
const digitUuid = (rng: Rng): string => {
  const digits = (n: number) => {
    let s = ""
    for (let i = 0; i < n; i++) s += String(int(rng, 0, 9))
    return s
  }
  return `${digits(8)}-${digits(4)}-4${digits(3)}-8${digits(3)}-${digits(12)}`
}

class Writer {
  readonly lang: CompiledPack
  private headings = 0
  constructor(readonly rng: Rng, readonly src: BodySource) {
    this.lang = PACKS[src.langcode]
  }
  term(): string {
    return pick(this.rng, this.src.terms)
  }
  topic(): string {
    return pick(this.rng, this.src.topics)
  }
  codeSpan(): string {
    const m = this.src.module
    switch (int(this.rng, 0, 3)) {
      case 0:
        return m
      case 1:
        return `${m}.settings`
      case 2:
        return `$${this.term()}`
      default:
        return `${m}_${this.term()}()`
    }
  }
  internalLink(): Inline {
    return { k: "link", href: `/tutorial/${int(this.rng, 1, this.src.maxId)}`, s: this.topic(), blank: false }
  }
  sentence(segments: ReadonlyArray<Segment>): Array<Inline> {
    const out = this.inline(segments)
    const first = out[0]
    if (first !== undefined && first.k === "text") out[0] = { k: "text", s: capitalize(first.s) }
    return out
  }
  inline(segments: ReadonlyArray<Segment>): Array<Inline> {
    const out: Array<Inline> = []
    for (const seg of segments) {
      if (typeof seg === "string") {
        out.push({ k: "text", s: seg })
        continue
      }
      switch (seg.slot) {
        case "t":
          out.push({ k: "text", s: this.term() })
          break
        case "T":
          out.push({ k: "text", s: capitalize(this.term()) })
          break
        case "topic":
          out.push({ k: "text", s: this.topic() })
          break
        case "Topic":
          out.push({ k: "text", s: titleCase(this.topic()) })
          break
        case "strong":
          out.push({ k: "strong", s: this.term() })
          break
        case "em":
          out.push({ k: "em", s: this.term() })
          break
        case "code":
          out.push({ k: "code", s: this.codeSpan() })
          break
        case "link":
          out.push(this.internalLink())
          break
        case "ext": {
          const [href, s] = pick(this.rng, EXTERNAL_LINKS)
          out.push({ k: "link", href, s, blank: chance(this.rng, 0.5) })
          break
        }
        case "v":
          out.push({ k: "text", s: "Drupal" }, { k: "nbsp" }, { k: "text", s: this.src.drupalVersion })
          break
        case "amp":
          out.push({ k: "text", s: capitalize(this.term()) + " " }, { k: "amp" }, { k: "text", s: " " + this.term() })
          break
        case "copy":
          out.push({ k: "copy" })
          break
        case "n":
          out.push({ k: "text", s: String(int(this.rng, 1, 9)) })
          break
        case "kbd":
          out.push({ k: "kbd", keys: pick(this.rng, SHORTCUTS) })
          break
        case "sup":
          out.push({ k: "sup", s: String(int(this.rng, 1, 3)) })
          break
        case "span":
          out.push({ k: "span", s: this.term() })
          break
      }
    }
    return out
  }
  plain(segments: ReadonlyArray<Segment>): string {
    return this.inline(segments).map((i) => ("s" in i ? i.s : "")).join("")
  }
  paragraph(): Block {
    const n = int(this.rng, 2, 5)
    const inl: Array<Inline> = []
    for (let i = 0; i < n; i++) {
      if (i > 0) inl.push({ k: "text", s: " " })
      inl.push(...this.sentence(pick(this.rng, this.lang.sentences)))
    }
    return { k: "p", inl }
  }
  list(depth: number): ListBlock {
    const n = int(this.rng, 2, 5)
    const items: Array<{ inl: ReadonlyArray<Inline>; sub: ListBlock | undefined }> = []
    for (let i = 0; i < n; i++) {
      const sub = depth < 2 && chance(this.rng, 0.2) ? this.list(depth + 1) : undefined
      items.push({ inl: this.sentence(pick(this.rng, this.lang.listItems)), sub })
    }
    return { ordered: chance(this.rng, 0.4), items }
  }
  steps(): Block {
    const n = int(this.rng, 2, 4)
    const steps: Array<Step> = []
    for (let i = 0; i < n; i++) {
      const template = pick(this.rng, this.lang.steps)
      const last = template[template.length - 1]
      // A step that announces its command ("… with Composer:") always shows one.
      const announces = typeof last === "string" && last.endsWith(":")
      const inl = this.sentence(template)
      steps.push({ inl, code: announces || chance(this.rng, 0.3) ? this.snippet() : undefined })
    }
    return { k: "steps", steps }
  }
  snippet(): { lang: CodeLanguage; code: string } {
    const tag = TAGS[pick(this.rng, this.src.tagIndexes)]!
    const snippet = pick(this.rng, tag.snippets)
    return { lang: snippet.lang, code: snippet.code.replace(/\{module\}/g, this.src.module) }
  }
  code(): Block {
    return { k: "code", ...this.snippet() }
  }
  caption(): Array<Inline> {
    return this.sentence(pick(this.rng, this.lang.captions))
  }
  table(): Block {
    const head = pick(this.rng, TABLE_HEADERS)
    const rows: Array<Array<Cell>> = []
    const n = int(this.rng, 2, 6)
    const cell = (inl: ReadonlyArray<Inline>): Cell => ({ inl, colspan: 1, rowspan: 1, covered: false })
    for (let i = 0; i < n; i++) {
      rows.push([
        cell([{ k: "code", s: `${this.src.module}.${this.term()}` }]),
        cell([{ k: "text", s: chance(this.rng, 0.5) ? "Yes" : "No" }]),
        cell([{ k: "text", s: pick(this.rng, TABLE_NOTES) }])
      ])
    }
    if (chance(this.rng, 0.4)) {
      // Two rows sharing their middle value, and a group row across every column.
      const at = int(this.rng, 0, n - 2)
      const shared = rows[at]![1]!
      rows[at]![1] = { ...shared, rowspan: 2 }
      rows[at + 1]![1] = { ...shared, covered: true }
      const group = int(this.rng, 0, n)
      rows.splice(group, 0, [
        { inl: [{ k: "strong", s: pick(this.rng, this.lang.pack.groups) }], colspan: 3, rowspan: 1, covered: false }
      ])
    }
    const figure = chance(this.rng, 0.7)
    const caption = chance(this.rng, 0.6) ? this.caption() : undefined
    return { k: "table", head, rows, caption, figure }
  }
  image(n: number): Block {
    return {
      k: "img",
      src: `/sites/default/files/tutorials/${this.src.id}-${n}.png`,
      alt: capitalize(this.plain(pick(this.rng, this.lang.alts))),
      caption: chance(this.rng, 0.5) ? this.caption() : undefined
    }
  }
  media(): Block {
    return { k: "media", uuid: digitUuid(this.rng), caption: this.plain(pick(this.rng, this.lang.captions)) }
  }
  video(): Block {
    let hash = ""
    for (let i = 0; i < 10; i++) hash += String(int(this.rng, 0, 9))
    return { k: "video", url: pick(this.rng, VIDEOS), title: this.src.title, hash }
  }
  heading(level: HeadingLevel): Block {
    const text = capitalize(this.plain(pick(this.rng, this.lang.headings[level])))
    const n = ++this.headings
    return { k: "h", level, text, id: chance(this.rng, 0.4) ? headingId(text, n) : undefined }
  }
  note(): Block {
    const label = pick(this.rng, this.lang.pack.noteLabels)
    return { k: "note", label, inl: this.sentence(pick(this.rng, this.lang.sentences)) }
  }
  quote(): Block {
    const [text, by] = pick(this.rng, this.lang.pack.quotes)
    return { k: "quote", text, by }
  }
  glossary(): Block {
    const n = int(this.rng, 2, 3)
    const entries: Array<{ term: string; inl: ReadonlyArray<Inline> }> = []
    for (let i = 0; i < n; i++) {
      entries.push({ term: capitalize(this.term()), inl: this.sentence(pick(this.rng, this.lang.definitions)) })
    }
    return { k: "dl", entries }
  }
}

/**
 * The blocks of one body, in order. The consumer passes back the HTML length of each block
 * (`next(length)`), and the sequence ends once the sum reaches the target.
 */
function* blocks(src: BodySource): Generator<Block, void, number> {
  const rng = makeRng(mixSeed(src.seed, 0xb0d1))
  const w = new Writer(rng, src)
  let size = 0
  const emit = function*(b: Block): Generator<Block, void, number> {
    size += yield b
  }
  if (chance(rng, 0.05)) yield* emit({ k: "comment", s: pick(rng, COMMENTS) })
  if (chance(rng, 0.1)) yield* emit({ k: "style", s: pick(rng, STYLES) })
  if (src.contentType === "video") yield* emit(w.video())
  yield* emit(w.paragraph())
  if (chance(rng, 0.5)) yield* emit(w.paragraph())
  let images = 0
  while (size < src.targetChars) {
    yield* emit(w.heading(2))
    const paragraphs = int(rng, 1, 3)
    for (let i = 0; i < paragraphs; i++) yield* emit(w.paragraph())
    if (chance(rng, 0.05)) yield* emit({ k: "empty" })
    if (chance(rng, 0.4)) yield* emit(chance(rng, 0.3) ? w.steps() : { k: "list", list: w.list(0) })
    if (chance(rng, 0.5)) yield* emit(w.code())
    if (chance(rng, 0.2)) yield* emit(w.table())
    if (chance(rng, 0.25)) yield* emit(w.image(++images))
    if (chance(rng, 0.08)) yield* emit(w.media())
    if (chance(rng, 0.2)) yield* emit(w.note())
    if (chance(rng, 0.08)) yield* emit(w.quote())
    if (chance(rng, 0.08)) yield* emit(w.glossary())
    if (chance(rng, 0.04)) yield* emit({ k: "comment", s: pick(rng, COMMENTS) })
    if (chance(rng, 0.3)) {
      yield* emit(w.heading(3))
      yield* emit(w.paragraph())
      if (chance(rng, 0.4)) yield* emit(w.code())
      if (chance(rng, 0.3)) {
        yield* emit(w.heading(4))
        yield* emit(w.paragraph())
        if (chance(rng, 0.3)) {
          yield* emit(w.heading(5))
          yield* emit(w.paragraph())
          if (chance(rng, 0.4)) {
            yield* emit(w.heading(6))
            yield* emit(w.paragraph())
          }
        }
      }
    }
    if (chance(rng, 0.1)) yield* emit({ k: "hr" })
    if (chance(rng, 0.03)) yield* emit({ k: "script", s: pick(rng, SCRIPTS) })
  }
  yield { k: "h", level: 2, text: w.lang.pack.related, id: undefined }
  const related: Array<{ inl: ReadonlyArray<Inline>; sub: ListBlock | undefined }> = []
  for (let i = 0; i < 3; i++) related.push({ inl: [w.internalLink()], sub: undefined })
  yield { k: "list", list: { ordered: false, items: related } }
  yield { k: "p", inl: [{ k: "copy" }, { k: "text", s: ` ${2019 + (src.id % 7)} Drupalize.Me` }] }
}

// Drupal's Html::escape writes `'` as `&#039;`; legacy content keeps typographic named entities.
const HTML_ESCAPES = new Map([
  ["&", "&amp;"],
  ["<", "&lt;"],
  [">", "&gt;"],
  ["\"", "&quot;"],
  ["'", "&#039;"],
  ["\u2019", "&rsquo;"],
  ["\u2014", "&mdash;"],
  ["\u2013", "&ndash;"],
  ["\u2026", "&hellip;"]
])

/**
 * Escapes text for HTML. A template's `’` or `—` is a segment of its own (see `compile`) and is
 * looked up whole: `replace` on a two-byte subject returns a two-byte string even when the result
 * is ASCII, and one two-byte piece makes a whole chunk two-byte (twice the bytes to join).
 */
const escapeHtml = (s: string): string =>
  s.length === 1 ? HTML_ESCAPES.get(s) ?? s : NEEDS_ESCAPE.test(s) ? s.replace(ESCAPES, escapeChar) : s

const NEEDS_ESCAPE = /[&<>"'\u2019\u2014\u2013\u2026]/
const ESCAPES = /[&<>"'\u2019\u2014\u2013\u2026]/g
const escapeChar = (c: string): string => HTML_ESCAPES.get(c)!

const linkAttrs = (href: string, blank: boolean): string =>
  `href="${escapeHtml(href)}"${blank ? ` target="_blank" rel="noopener noreferrer"` : ""}`

const inlineHtml = (inl: ReadonlyArray<Inline>): string => {
  let out = ""
  for (const i of inl) {
    switch (i.k) {
      case "text":
        out += escapeHtml(i.s)
        break
      case "strong":
        out += `<strong>${escapeHtml(i.s)}</strong>`
        break
      case "em":
        out += `<em>${escapeHtml(i.s)}</em>`
        break
      case "code":
        out += `<code>${escapeHtml(i.s)}</code>`
        break
      case "link":
        out += `<a ${linkAttrs(i.href, i.blank)}>${escapeHtml(i.s)}</a>`
        break
      case "kbd":
        out += i.keys.map((k) => `<kbd>${escapeHtml(k)}</kbd>`).join("+")
        break
      case "sup":
        out += `<sup>${escapeHtml(i.s)}</sup>`
        break
      case "span":
        out += `<span class="highlight">${escapeHtml(i.s)}</span>`
        break
      case "nbsp":
        out += "&nbsp;"
        break
      case "amp":
        out += "&amp;"
        break
      case "copy":
        out += "&copy;"
        break
    }
  }
  return out
}

const listHtml = (l: ListBlock): string => {
  const tag = l.ordered ? "ol" : "ul"
  let out = `<${tag}>\n`
  for (const item of l.items) {
    out += `<li>${inlineHtml(item.inl)}${item.sub ? "\n" + listHtml(item.sub) : ""}</li>\n`
  }
  return out + `</${tag}>\n`
}

const codeHtml = (lang: CodeLanguage, code: string): string =>
  `<pre><code class="language-${lang}">${escapeHtml(code)}</code></pre>\n`

const cellHtml = (tag: "td" | "th", c: Cell): string =>
  `<${tag}${c.colspan > 1 ? ` colspan="${c.colspan}"` : ""}${c.rowspan > 1 ? ` rowspan="${c.rowspan}"` : ""}>${
    inlineHtml(c.inl)
  }</${tag}>`

const tableHtml = (b: Extract<Block, { k: "table" }>): string => {
  const caption = b.caption !== undefined && !b.figure ? `<caption>${inlineHtml(b.caption)}</caption>\n` : ""
  const table = `<table>\n${caption}<thead>\n<tr>${
    b.head.map((h) => `<th>${escapeHtml(h)}</th>`).join("")
  }</tr>\n</thead>\n<tbody>\n${
    b.rows.map((r) => `<tr>${r.filter((c) => !c.covered).map((c) => cellHtml("td", c)).join("")}</tr>\n`).join("")
  }</tbody>\n</table>\n`
  if (!b.figure) return table
  const figcaption = b.caption !== undefined ? `<figcaption>${inlineHtml(b.caption)}</figcaption>\n` : ""
  return `<figure class="table">\n${table}${figcaption}</figure>\n`
}

const renderHtml = (b: Block): string => {
  switch (b.k) {
    case "h":
      return `<h${b.level}${b.id !== undefined ? ` id="${b.id}"` : ""}>${escapeHtml(b.text)}</h${b.level}>\n`
    case "p":
      return `<p>${inlineHtml(b.inl)}</p>\n`
    case "list":
      return listHtml(b.list)
    case "steps":
      return `<ol>\n${
        b.steps.map((s) => `<li><p>${inlineHtml(s.inl)}</p>${s.code ? "\n" + codeHtml(s.code.lang, s.code.code) : ""}</li>\n`)
          .join("")
      }</ol>\n`
    case "code":
      return codeHtml(b.lang, b.code)
    case "table":
      return tableHtml(b)
    case "img": {
      const img = `<img src="${escapeHtml(b.src)}" alt="${escapeHtml(b.alt)}" width="800" height="450" loading="lazy">`
      return b.caption === undefined
        ? `<p>${img}</p>\n`
        : `<figure class="image">${img}<figcaption>${inlineHtml(b.caption)}</figcaption></figure>\n`
    }
    case "media":
      return `<drupal-media data-entity-type="media" data-entity-uuid="${b.uuid}" data-view-mode="default" data-align="center" data-caption="${
        escapeHtml(b.caption)
      }"></drupal-media>\n`
    case "video": {
      const query = `url=${encodeURIComponent(b.url).replace(/%2F/g, "/")}&max_width=0&max_height=0&hash=${b.hash}`
      return `<div class="media media--type-remote-video"><iframe src="/media/oembed?${
        escapeHtml(query)
      }" width="640" height="360" class="media-oembed-content" loading="eager" title="${
        escapeHtml(b.title)
      }"></iframe></div>\n`
    }
    case "note":
      return `<div class="tutorial-callout"><p><strong>${escapeHtml(b.label)}:</strong> ${inlineHtml(b.inl)}</p></div>\n`
    case "quote":
      return `<blockquote><p>${escapeHtml(b.text)}<br>&mdash; ${escapeHtml(b.by)}</p></blockquote>\n`
    case "dl":
      return `<dl>\n${b.entries.map((e) => `<dt>${escapeHtml(e.term)}</dt>\n<dd>${inlineHtml(e.inl)}</dd>\n`).join("")}</dl>\n`
    case "hr":
      return "<hr>\n"
    case "empty":
      return "<p>&nbsp;</p>\n"
    case "comment":
      return `<!-- ${b.s} -->\n`
    case "script":
      return `<script>${b.s}</script>\n`
    case "style":
      return `<style>${b.s}</style>\n`
  }
}

const escapeMd = (s: string): string => s.replace(/[\\`*[\]]/g, (c) => "\\" + c)

const inlineMd = (inl: ReadonlyArray<Inline>): string => {
  let out = ""
  for (const i of inl) {
    switch (i.k) {
      case "text":
        out += escapeMd(i.s)
        break
      case "strong":
        out += `**${escapeMd(i.s)}**`
        break
      case "em":
        out += `_${escapeMd(i.s)}_`
        break
      case "code":
        out += "`" + i.s + "`"
        break
      case "link":
        out += `[${escapeMd(i.s)}](${i.href})`
        break
      case "kbd":
        out += i.keys.map((k) => "`" + k + "`").join("+")
        break
      case "sup":
        out += `<sup>${i.s}</sup>`
        break
      case "span":
        out += escapeMd(i.s)
        break
      case "nbsp":
        out += "\u00a0"
        break
      case "amp":
        out += "&"
        break
      case "copy":
        out += "\u00a9"
        break
    }
  }
  return out
}

const listMd = (l: ListBlock, indent: string): string => {
  let out = ""
  l.items.forEach((item, n) => {
    const marker = l.ordered ? `${n + 1}. ` : "- "
    out += `${indent}${marker}${inlineMd(item.inl)}\n`
    if (item.sub) out += listMd(item.sub, indent + " ".repeat(marker.length))
  })
  return out
}

const fenceMd = (lang: string, code: string, indent: string): string =>
  ["```" + lang, ...code.split("\n"), "```"].map((line) => (line === "" ? "" : indent + line)).join("\n") + "\n"

const rowMd = (cells: ReadonlyArray<string>): string => `| ${cells.join(" | ")} |\n`

const tableMd = (b: Extract<Block, { k: "table" }>): string => {
  const cell = (inl: ReadonlyArray<Inline>) => inlineMd(inl).replace(/\|/g, "\\|")
  let out = b.caption !== undefined && !b.figure ? `_${inlineMd(b.caption)}_\n\n` : ""
  out += rowMd(b.head.map((h) => h.replace(/\|/g, "\\|"))) + `|${b.head.map(() => " --- |").join("")}\n`
  for (const r of b.rows) {
    const cells: Array<string> = []
    for (const c of r) {
      cells.push(cell(c.inl))
      for (let i = 1; i < c.colspan; i++) cells.push("")
    }
    out += rowMd(cells)
  }
  out += "\n"
  if (b.caption !== undefined && b.figure) out += `_${inlineMd(b.caption)}_\n\n`
  return out
}

const renderMarkdown = (b: Block): string => {
  switch (b.k) {
    case "h":
      return `${"#".repeat(b.level)} ${escapeMd(b.text)}\n\n`
    case "p":
      return `${inlineMd(b.inl)}\n\n`
    case "list":
      return listMd(b.list, "") + "\n"
    case "steps":
      return b.steps.map((s, n) => {
        const marker = `${n + 1}. `
        return `${marker}${inlineMd(s.inl)}\n` +
          (s.code ? "\n" + fenceMd(s.code.lang, s.code.code, " ".repeat(marker.length)) : "")
      }).join("") + "\n"
    case "code":
      return fenceMd(b.lang, b.code, "") + "\n"
    case "table":
      return tableMd(b)
    case "img":
      return `![${escapeMd(b.alt)}](${b.src})\n\n${b.caption !== undefined ? `_${inlineMd(b.caption)}_\n\n` : ""}`
    case "media":
      return `[Media: ${escapeMd(b.caption)}](urn:uuid:${b.uuid})\n\n`
    case "video":
      return `[Video: ${escapeMd(b.title)}](${b.url})\n\n`
    case "note":
      return `> **${b.label}:** ${inlineMd(b.inl)}\n\n`
    case "quote":
      return `> ${escapeMd(b.text)}\\\n> \u2014 ${escapeMd(b.by)}\n\n`
    case "dl":
      return b.entries.map((e) => `**${escapeMd(e.term)}**\\\n${inlineMd(e.inl)}\n\n`).join("")
    case "hr":
      return "---\n\n"
    case "empty":
    case "comment":
    case "script":
    case "style":
      return ""
  }
}

/**
 * The body of one item as a sequence of strings of at least `chunkSize` characters (the last may
 * be shorter; one block, at most a few KB, may overshoot). Deterministic: the same source gives
 * the same strings. Memory: one chunk plus one block.
 */
export function* bodyChunks(src: BodySource, format: BodyFormat, chunkSize: number): Generator<string> {
  let parts: Array<string> = []
  let length = 0
  const gen = blocks(src)
  let step = gen.next(0)
  while (step.done !== true) {
    const html = renderHtml(step.value)
    const s = format === "html" ? html : renderMarkdown(step.value)
    parts.push(s)
    length += s.length
    if (length >= chunkSize) {
      yield parts.join("")
      parts = []
      length = 0
    }
    step = gen.next(html.length)
  }
  if (length > 0) yield parts.join("")
}
