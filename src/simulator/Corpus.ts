/**
 * The simulated site's content: a deterministic corpus of Drupal tutorials built from a seed.
 *
 * Metadata for every item is generated eagerly at start (cheap: a few hundred bytes per item);
 * bodies are generated lazily, chunk by chunk, from a per-item seed, so the corpus never holds a
 * body. Same seed and options → byte-identical metadata and bodies.
 *
 * @since 0.1.0
 */
import { type BodyFormat, bodyChunks, type BodySource, capitalize, titleCase } from "./Body.js"
import { chance, int, makeRng, mixSeed, normal, pick, type Rng, sample } from "./Random.js"
import {
  LANGUAGES,
  type Langcode,
  SUMMARY_TEMPLATES,
  TAGS,
  TITLE_ASPECTS,
  TITLE_TEMPLATES,
  TITLE_VERBS,
  tokenize
} from "./Vocabulary.js"

/** Who may read an item: everyone, or subscribers (and administrators) only. */
export type ItemAccess = "free" | "subscriber"
/** Kind of content. */
export type ContentType = "tutorial" | "video" | "course"
/** Difficulty level. */
export type Difficulty = "beginner" | "intermediate" | "advanced"
/** Drupal major version an item targets. */
export type DrupalVersion = "9" | "10" | "11"

/** The content types, for the `content_type` parameter. */
export const CONTENT_TYPES: ReadonlyArray<ContentType> = ["tutorial", "video", "course"]

/** Metadata of one item (everything but the body). */
export interface CorpusItem {
  /** 1-based node id. */
  readonly id: number
  readonly title: string
  readonly summary: string
  readonly contentType: ContentType
  readonly access: ItemAccess
  readonly drupalVersion: DrupalVersion
  readonly difficulty: Difficulty
  /**
   * Language of the item (Drupal's `langcode`): mostly `en`; about 15 % are German, French or
   * Spanish, with title, summary and body in that language.
   */
  readonly langcode: Langcode
  /** Tag machine names (1 to 3). */
  readonly tags: ReadonlyArray<string>
  /** Indexes into `TAGS`, same order as `tags`. */
  readonly tagIndexes: ReadonlyArray<number>
  /** Last update, ISO 8601. */
  readonly updated: string
  readonly updatedMs: number
  /** Topic words the body is written with. */
  readonly terms: ReadonlyArray<string>
  /** Topic phrases the body is written with. */
  readonly topics: ReadonlyArray<string>
  /** Module machine name the body's code uses. */
  readonly module: string
  /** Length the HTML body reaches (characters ≈ bytes); the body ends with the first block past it. */
  readonly targetChars: number
  /** Whether the item is one of the large ones (1–30 MB, or the huge item). */
  readonly large: boolean
  /** Seed of the item's body. */
  readonly seed: number
}

/** Options of {@link makeCorpus}. */
export interface CorpusOptions {
  /** Number of items (ids 1..size). */
  readonly size: number
  readonly seed: number
  /** Share of items (0..1) whose body is 1–30 MB. */
  readonly largeShare: number
  /** Id of an item forced free, with a body of `hugeItemChars`; 0 or absent for none. */
  readonly hugeItemId?: number | undefined
  /** Target HTML size of the huge item (default 50 MiB). */
  readonly hugeItemChars?: number | undefined
}

/** Read access to the corpus. All functions are synchronous and safe to call concurrently. */
export interface Corpus {
  readonly seed: number
  readonly size: number
  /** All items, `items[id - 1]`. */
  readonly items: ReadonlyArray<CorpusItem>
  /** The item with that id, if any. */
  readonly get: (id: number) => CorpusItem | undefined
  /** The huge item's id, when configured. */
  readonly hugeItemId: number | undefined
  /** The body as chunks of about `chunkSize` characters, generated as they are pulled. */
  readonly chunks: (item: CorpusItem, format: BodyFormat, chunkSize: number) => Generator<string>
  /** The whole body as one string: only for small items (tests, inline replies). */
  readonly bodyText: (item: CorpusItem, format: BodyFormat) => string
  /**
   * Every distinct token of the item's own text (title, summary, terms, topics, module), i.e.
   * what the search index holds for it.
   */
  readonly itemTokens: (item: CorpusItem) => ReadonlyArray<string>
}

const MB = 1024 * 1024
const DAY = 86_400_000
const VERSION_RANGES: Record<DrupalVersion, readonly [number, number]> = {
  "9": [Date.UTC(2020, 5, 1), Date.UTC(2023, 10, 1)],
  "10": [Date.UTC(2022, 11, 15), Date.UTC(2025, 8, 30)],
  "11": [Date.UTC(2024, 7, 1), Date.UTC(2025, 9, 31)]
}
const MODULE_SUFFIXES = ["tools", "extras", "demo", "example", "helper", "kit", "custom"]

const weighted = <A>(rng: Rng, entries: ReadonlyArray<readonly [A, number]>): A => {
  let r = rng.next()
  for (const [value, weight] of entries) {
    if (r < weight) return value
    r -= weight
  }
  return entries[entries.length - 1]![0]
}

const fill = (template: string, slots: Record<string, () => string>): string =>
  template.replace(/\{([A-Za-z0-9]+)\}/g, (_, name: string) => slots[name]?.() ?? "")

const makeItem = (id: number, options: CorpusOptions): CorpusItem => {
  const seed = mixSeed(options.seed, id)
  const rng = makeRng(seed)
  const tagCount = weighted(rng, [[1, 0.3], [2, 0.45], [3, 0.25]] as const)
  const tagIndexes = sample(rng, TAGS.map((_, i) => i), tagCount)
  const tags = tagIndexes.map((i) => TAGS[i]!)
  const topics = [...new Set(tags.flatMap((t, i) => sample(rng, t.topics, i === 0 ? 2 : 1)))]
  const terms = [...new Set(tags.flatMap((t, i) => sample(rng, t.words, i === 0 ? int(rng, 4, 6) : int(rng, 2, 4))))]
  const module = `${pick(rng, terms)}_${pick(rng, MODULE_SUFFIXES)}`
  const drupalVersion = weighted(rng, [["9", 0.2], ["10", 0.5], ["11", 0.3]] as const)
  const difficulty = weighted(rng, [["beginner", 0.35], ["intermediate", 0.45], ["advanced", 0.2]] as const)
  const contentType = weighted(rng, [["tutorial", 0.7], ["video", 0.2], ["course", 0.1]] as const)
  const huge = options.hugeItemId !== undefined && options.hugeItemId === id
  const access: ItemAccess = chance(rng, 0.3) && !huge ? "subscriber" : "free"
  const [from, to] = VERSION_RANGES[drupalVersion]
  const updatedMs = from + Math.floor(rng.next() * ((to - from) / DAY)) * DAY + int(rng, 0, 86_399) * 1000
  const topic = () => pick(rng, topics)
  const title = fill(pick(rng, TITLE_TEMPLATES), {
    Verb: () => pick(rng, TITLE_VERBS),
    Topic: () => titleCase(topics[0]!),
    Topic2: () => titleCase(topics[topics.length - 1]!),
    v: () => drupalVersion,
    Aspect: () => pick(rng, TITLE_ASPECTS)
  })
  const summary = capitalize(fill(pick(rng, SUMMARY_TEMPLATES), {
    topic,
    topic2: topic,
    verb: () => pick(rng, TITLE_VERBS).toLowerCase(),
    v: () => drupalVersion,
    kind: () => contentType,
    n: () => String(int(rng, 2, 9))
  }))
  // A separate stream, so the language leaves every other property of the item as it was.
  const lang = makeRng(mixSeed(seed, 0x1a9c0de))
  const langcode = huge ? "en" : weighted(lang, [["en", 0.85], ["de", 0.06], ["fr", 0.05], ["es", 0.04]] as const)
  const pack = LANGUAGES[langcode]
  const localTitle = langcode === "en" ? title : fill(pick(lang, pack.titles), {
    Topic: () => titleCase(topics[0]!),
    Topic2: () => titleCase(topics[topics.length - 1]!),
    v: () => drupalVersion
  })
  const localSummary = langcode === "en" ? summary : capitalize(fill(pick(lang, pack.summaries), {
    topic: () => pick(lang, topics),
    topic2: () => pick(lang, topics),
    v: () => drupalVersion,
    n: () => String(int(lang, 2, 9))
  }))
  const large = huge || chance(rng, options.largeShare)
  const targetChars = huge
    ? (options.hugeItemChars ?? 50 * MB)
    : large
    ? Math.round(Math.exp(Math.log(MB) + rng.next() * Math.log(30)))
    : Math.round(Math.min(400_000, Math.max(2048, Math.exp(Math.log(12_000) + 0.9 * normal(rng)))))
  return {
    id,
    title: localTitle,
    summary: localSummary,
    contentType,
    access,
    drupalVersion,
    difficulty,
    langcode,
    tags: tags.map((t) => t.tag),
    tagIndexes,
    updated: new Date(updatedMs).toISOString(),
    updatedMs,
    terms,
    topics,
    module,
    targetChars,
    large,
    seed
  }
}

/** Builds the corpus (metadata only; O(size), about 1 µs–10 µs per item). */
export const makeCorpus = (options: CorpusOptions): Corpus => {
  const items: Array<CorpusItem> = new Array(options.size)
  for (let id = 1; id <= options.size; id++) items[id - 1] = makeItem(id, options)
  const source = (item: CorpusItem): BodySource => ({ ...item, maxId: options.size })
  const hugeItemId = options.hugeItemId !== undefined && options.hugeItemId >= 1 && options.hugeItemId <= options.size
    ? options.hugeItemId
    : undefined
  return {
    seed: options.seed,
    size: options.size,
    items,
    hugeItemId,
    get: (id) => (Number.isInteger(id) && id >= 1 && id <= options.size ? items[id - 1] : undefined),
    chunks: (item, format, chunkSize) => bodyChunks(source(item), format, chunkSize),
    bodyText: (item, format) => [...bodyChunks(source(item), format, 1 << 20)].join(""),
    itemTokens: (item) => [
      ...new Set(
        tokenize([item.title, item.summary, item.terms.join(" "), item.topics.join(" "), item.module].join(" "))
      )
    ]
  }
}
