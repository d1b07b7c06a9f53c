/**
 * Tutorial bodies: a deterministic sequence of blocks (headings, paragraphs, lists, code,
 * tables, images, call-outs, and the odd `<script>`/`<style>`) generated from an item's seed and
 * terms, rendered as HTML or Markdown from the same blocks.
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
  EXTERNAL_LINKS,
  HEADINGS,
  IMAGE_ALTS,
  LIST_ITEMS,
  SCRIPTS,
  SENTENCES,
  STYLES,
  TABLE_HEADERS,
  TABLE_NOTES,
  TAGS
} from "./Vocabulary.js"

/** Output format of a body. */
export type BodyFormat = "html" | "markdown"

/** What a body is generated from; all of it comes from the item's metadata. */
export interface BodySource {
  readonly id: number
  readonly seed: number
  /** Topic words of the item (lower case). */
  readonly terms: ReadonlyArray<string>
  /** Topic phrases of the item. */
  readonly topics: ReadonlyArray<string>
  /** Module machine name used in code and inline code. */
  readonly module: string
  /** Indexes into `TAGS` of the item's tags. */
  readonly tagIndexes: ReadonlyArray<number>
  readonly drupalVersion: string
  /** Size the HTML rendering must reach, in characters (≈ bytes: the HTML is ASCII). */
  readonly targetChars: number
  /** Highest item id, for internal links. */
  readonly maxId: number
}

type Inline =
  | { readonly k: "text"; readonly s: string }
  | { readonly k: "strong"; readonly s: string }
  | { readonly k: "em"; readonly s: string }
  | { readonly k: "code"; readonly s: string }
  | { readonly k: "link"; readonly href: string; readonly s: string }
  | { readonly k: "nbsp" }
  | { readonly k: "amp" }
  | { readonly k: "copy" }

interface ListBlock {
  readonly ordered: boolean
  readonly items: ReadonlyArray<{ readonly inl: ReadonlyArray<Inline>; readonly sub: ListBlock | undefined }>
}

type Block =
  | { readonly k: "h"; readonly level: 2 | 3 | 4; readonly text: string }
  | { readonly k: "p"; readonly inl: ReadonlyArray<Inline> }
  | { readonly k: "list"; readonly list: ListBlock }
  | { readonly k: "code"; readonly lang: CodeLanguage; readonly code: string }
  | {
    readonly k: "table"
    readonly head: ReadonlyArray<string>
    readonly rows: ReadonlyArray<ReadonlyArray<ReadonlyArray<Inline>>>
  }
  | { readonly k: "img"; readonly src: string; readonly alt: string }
  | { readonly k: "note"; readonly label: string; readonly inl: ReadonlyArray<Inline> }
  | { readonly k: "script"; readonly s: string }
  | { readonly k: "style"; readonly s: string }

type Segment = string | { readonly slot: string }

const compile = (template: string): ReadonlyArray<Segment> => {
  const out: Array<Segment> = []
  const re = /\{([A-Za-z0-9]+)\}/g
  let last = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(template)) !== null) {
    if (m.index > last) out.push(template.slice(last, m.index))
    out.push({ slot: m[1] as string })
    last = m.index + m[0].length
  }
  if (last < template.length) out.push(template.slice(last))
  return out
}

const SENTENCE_SEGMENTS = SENTENCES.map(compile)
const LIST_SEGMENTS = LIST_ITEMS.map(compile)
const HEADING_SEGMENTS = {
  2: HEADINGS[2].map(compile),
  3: HEADINGS[3].map(compile),
  4: HEADINGS[4].map(compile)
} as const
const ALT_SEGMENTS = IMAGE_ALTS.map(compile)

/** First letter upper case. */
export const capitalize = (s: string): string => (s.length === 0 ? s : s[0]!.toUpperCase() + s.slice(1))

/** Title Case for topic phrases, keeping words that already carry capitals ("CKEditor"). */
export const titleCase = (s: string): string =>
  s.split(" ").map((w) => (/[A-Z]/.test(w) || w === "the" || w === "and" ? w : capitalize(w))).join(" ")

class Writer {
  constructor(readonly rng: Rng, readonly src: BodySource) {}
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
    return { k: "link", href: `/tutorial/${int(this.rng, 1, this.src.maxId)}`, s: this.topic() }
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
          out.push({ k: "link", href, s })
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
      inl.push(...this.sentence(pick(this.rng, SENTENCE_SEGMENTS)))
    }
    return { k: "p", inl }
  }
  list(depth: number): ListBlock {
    const n = int(this.rng, 2, 5)
    const items: Array<{ inl: ReadonlyArray<Inline>; sub: ListBlock | undefined }> = []
    for (let i = 0; i < n; i++) {
      const sub = depth < 2 && chance(this.rng, 0.2) ? this.list(depth + 1) : undefined
      items.push({ inl: this.sentence(pick(this.rng, LIST_SEGMENTS)), sub })
    }
    return { ordered: chance(this.rng, 0.4), items }
  }
  code(): Block {
    const tag = TAGS[pick(this.rng, this.src.tagIndexes)]!
    const snippet = pick(this.rng, tag.snippets)
    return { k: "code", lang: snippet.lang, code: snippet.code.replace(/\{module\}/g, this.src.module) }
  }
  table(): Block {
    const head = pick(this.rng, TABLE_HEADERS)
    const rows: Array<Array<Array<Inline>>> = []
    const n = int(this.rng, 2, 6)
    for (let i = 0; i < n; i++) {
      rows.push([
        [{ k: "code", s: `${this.src.module}.${this.term()}` }],
        [{ k: "text", s: chance(this.rng, 0.5) ? "Yes" : "No" }],
        [{ k: "text", s: pick(this.rng, TABLE_NOTES) }]
      ])
    }
    return { k: "table", head, rows }
  }
  image(n: number): Block {
    return {
      k: "img",
      src: `/sites/default/files/tutorials/${this.src.id}-${n}.png`,
      alt: this.plain(pick(this.rng, ALT_SEGMENTS))
    }
  }
  heading(level: 2 | 3 | 4): Block {
    return { k: "h", level, text: capitalize(this.plain(pick(this.rng, HEADING_SEGMENTS[level]))) }
  }
  note(): Block {
    const label = pick(this.rng, ["Note", "Tip", "Warning"])
    return { k: "note", label, inl: this.sentence(pick(this.rng, SENTENCE_SEGMENTS)) }
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
  if (chance(rng, 0.1)) yield* emit({ k: "style", s: pick(rng, STYLES) })
  yield* emit(w.paragraph())
  if (chance(rng, 0.5)) yield* emit(w.paragraph())
  let images = 0
  while (size < src.targetChars) {
    yield* emit(w.heading(2))
    const paragraphs = int(rng, 1, 3)
    for (let i = 0; i < paragraphs; i++) yield* emit(w.paragraph())
    if (chance(rng, 0.4)) yield* emit({ k: "list", list: w.list(0) })
    if (chance(rng, 0.5)) yield* emit(w.code())
    if (chance(rng, 0.2)) yield* emit(w.table())
    if (chance(rng, 0.25)) yield* emit(w.image(++images))
    if (chance(rng, 0.2)) yield* emit(w.note())
    if (chance(rng, 0.3)) {
      yield* emit(w.heading(3))
      yield* emit(w.paragraph())
      if (chance(rng, 0.4)) yield* emit(w.code())
      if (chance(rng, 0.3)) {
        yield* emit(w.heading(4))
        yield* emit(w.paragraph())
      }
    }
    if (chance(rng, 0.03)) yield* emit({ k: "script", s: pick(rng, SCRIPTS) })
  }
  yield { k: "h", level: 2, text: "Further your understanding" }
  const related: Array<{ inl: ReadonlyArray<Inline>; sub: ListBlock | undefined }> = []
  for (let i = 0; i < 3; i++) related.push({ inl: [w.internalLink()], sub: undefined })
  yield { k: "list", list: { ordered: false, items: related } }
  yield { k: "p", inl: [{ k: "copy" }, { k: "text", s: ` ${2019 + (src.id % 7)} Drupalize.Me` }] }
}

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : "&quot;"))

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
        out += `<a href="${escapeHtml(i.href)}">${escapeHtml(i.s)}</a>`
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

const renderHtml = (b: Block): string => {
  switch (b.k) {
    case "h":
      return `<h${b.level}>${escapeHtml(b.text)}</h${b.level}>\n`
    case "p":
      return `<p>${inlineHtml(b.inl)}</p>\n`
    case "list":
      return listHtml(b.list)
    case "code":
      return `<pre><code class="language-${b.lang}">${escapeHtml(b.code)}</code></pre>\n`
    case "table":
      return `<table>\n<thead>\n<tr>${b.head.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr>\n</thead>\n<tbody>\n${
        b.rows.map((r) => `<tr>${r.map((c) => `<td>${inlineHtml(c)}</td>`).join("")}</tr>\n`).join("")
      }</tbody>\n</table>\n`
    case "img":
      return `<p><img src="${escapeHtml(b.src)}" alt="${escapeHtml(b.alt)}" width="800" height="450" loading="lazy"></p>\n`
    case "note":
      return `<div class="tutorial-callout"><p><strong>${b.label}:</strong> ${inlineHtml(b.inl)}</p></div>\n`
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

const renderMarkdown = (b: Block): string => {
  switch (b.k) {
    case "h":
      return `${"#".repeat(b.level)} ${escapeMd(b.text)}\n\n`
    case "p":
      return `${inlineMd(b.inl)}\n\n`
    case "list":
      return listMd(b.list, "") + "\n"
    case "code":
      return "```" + b.lang + "\n" + b.code + "\n```\n\n"
    case "table": {
      const cell = (s: string) => s.replace(/\|/g, "\\|")
      return `| ${b.head.map(cell).join(" | ")} |\n|${b.head.map(() => " --- |").join("")}\n${
        b.rows.map((r) => `| ${r.map((c) => cell(inlineMd(c))).join(" | ")} |\n`).join("")
      }\n`
    }
    case "img":
      return `![${escapeMd(b.alt)}](${b.src})\n\n`
    case "note":
      return `> **${b.label}:** ${inlineMd(b.inl)}\n\n`
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
