/**
 * Full-text search over the corpus: an inverted index built once at start over each item's
 * own text (title, summary, topic words and phrases, module name) plus, per tag, the tokens of
 * the tag's code listings. Because bodies are written only from those words and the generic
 * template words ({@link isCommonToken}, which match every item), searching any word that
 * appears in a body finds that body's item.
 *
 * Query semantics: the AND of the query's tokens (case-insensitive, see `tokenize`); generic
 * words and numbers do not narrow the result; a query without any other token matches every
 * item. Scores: title ×3, summary ×2, own terms ×1 per occurrence, a code-listing match 0.5.
 * Cost of a query: the lengths of the postings involved plus one pass over the corpus size.
 *
 * @since 0.1.0
 */
import type { Corpus, CorpusItem, DrupalVersion } from "./Corpus.js"
import { isCommonToken, SNIPPET_TOKENS, TAGS, tokenize } from "./Vocabulary.js"

/** Sort orders of `content.search`. */
export type SearchSort = "relevance" | "date" | "title"

/** A search, with defaults already applied. */
export interface SearchQuery {
  readonly query: string
  readonly drupalVersion?: DrupalVersion | undefined
  /** Every given tag must be on the item. */
  readonly tags?: ReadonlyArray<string> | undefined
  /** `"all"` or one content type. */
  readonly contentType: string
  /** `"all"`, `"free"` or `"subscriber"`; applied on top of what the caller may see. */
  readonly accessLevel: "free" | "subscriber" | "all"
  readonly sort: SearchSort
  readonly limit: number
  readonly offset: number
}

/** One page of results. */
export interface SearchPage {
  readonly items: ReadonlyArray<CorpusItem>
  /** Number of matches across all pages. */
  readonly total: number
}

/** The index; `search` is synchronous and allocation-light. */
export interface SearchIndex {
  /** Runs a query; `canSee` removes what the caller may not read. */
  readonly search: (query: SearchQuery, canSee: (item: CorpusItem) => boolean) => SearchPage
  /** Number of distinct indexed tokens. */
  readonly tokenCount: number
}

interface Posting {
  readonly ids: Int32Array
  readonly scores: Float32Array
}

/** Builds the index over all items of the corpus. */
export const makeSearchIndex = (corpus: Corpus): SearchIndex => {
  const building = new Map<string, { ids: Array<number>; scores: Array<number> }>()
  const perItem = new Map<string, number>()
  const add = (text: string, weight: number) => {
    for (const token of tokenize(text)) {
      if (!isCommonToken(token)) perItem.set(token, (perItem.get(token) ?? 0) + weight)
    }
  }
  const tagItems: Array<Array<number>> = TAGS.map(() => [])
  for (const item of corpus.items) {
    perItem.clear()
    add(item.title, 3)
    add(item.summary, 2)
    add(item.terms.join(" "), 1)
    add(item.topics.join(" "), 1)
    add(item.module, 1)
    for (const [token, score] of perItem) {
      let p = building.get(token)
      if (p === undefined) building.set(token, p = { ids: [], scores: [] })
      p.ids.push(item.id)
      p.scores.push(score)
    }
    for (const t of item.tagIndexes) tagItems[t]!.push(item.id)
  }
  const postings = new Map<string, Posting>()
  for (const [token, p] of building) {
    postings.set(token, { ids: Int32Array.from(p.ids), scores: Float32Array.from(p.scores) })
  }
  const snippetTags = new Map<string, Array<number>>()
  SNIPPET_TOKENS.forEach((tokens, tagIndex) => {
    for (const token of tokens) {
      if (isCommonToken(token)) continue
      let list = snippetTags.get(token)
      if (list === undefined) snippetTags.set(token, list = [])
      list.push(tagIndex)
    }
  })

  const n = corpus.size
  // Scratch arrays reused by every query: `search` is synchronous, so queries never overlap.
  const hits = new Int32Array(n + 1)
  const scores = new Float64Array(n + 1)
  const seen = new Int32Array(n + 1)
  const search = (q: SearchQuery, canSee: (item: CorpusItem) => boolean): SearchPage => {
    const tokens = [...new Set(tokenize(q.query))].filter((t) => !isCommonToken(t))
    hits.fill(0)
    scores.fill(0)
    seen.fill(0)
    tokens.forEach((token, i) => {
      const mark = i + 1
      const p = postings.get(token)
      if (p !== undefined) {
        for (let k = 0; k < p.ids.length; k++) {
          const id = p.ids[k]!
          seen[id] = mark
          hits[id]!++
          scores[id]! += p.scores[k]!
        }
      }
      for (const tagIndex of snippetTags.get(token) ?? []) {
        for (const id of tagItems[tagIndex]!) {
          if (seen[id] === mark) continue
          seen[id] = mark
          hits[id]!++
          scores[id]! += 0.5
        }
      }
    })
    const need = tokens.length
    const matches: Array<CorpusItem> = []
    for (let id = 1; id <= n; id++) {
      if (hits[id] !== need) continue
      const item = corpus.items[id - 1]!
      if (q.drupalVersion !== undefined && item.drupalVersion !== q.drupalVersion) continue
      if (q.contentType !== "all" && item.contentType !== q.contentType) continue
      if (q.accessLevel !== "all" && item.access !== q.accessLevel) continue
      if (q.tags !== undefined && !q.tags.every((t) => item.tags.includes(t))) continue
      if (!canSee(item)) continue
      matches.push(item)
    }
    switch (q.sort) {
      case "relevance":
        matches.sort((a, b) => scores[b.id]! - scores[a.id]! || a.id - b.id)
        break
      case "date":
        matches.sort((a, b) => b.updatedMs - a.updatedMs || a.id - b.id)
        break
      case "title":
        matches.sort((a, b) => {
          const x = a.title.toLowerCase()
          const y = b.title.toLowerCase()
          return x < y ? -1 : x > y ? 1 : a.id - b.id
        })
        break
    }
    return { items: matches.slice(q.offset, q.offset + q.limit), total: matches.length }
  }
  return { search, tokenCount: postings.size }
}
