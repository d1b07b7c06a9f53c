/**
 * The workload of the fault programs: Zipf-ish ids over the simulator's corpus (rebuilt here from
 * the same seed, so the bench knows every item's access level without asking), search questions
 * drawn from the corpus' topics, mixed callers, and the checker that proves no response carried
 * content of another access level.
 */
import { type Corpus, makeCorpus } from "../../src/simulator/Corpus.js"
import { Either } from "effect"
import { normalizeSearch, searchKey } from "../../src/content/SearchQuery.js"
import { parseContentOptions, searchInputOf } from "../../src/http/RequestParams.js"

export const CALLERS = [
  { name: "anonymous", level: "anonymous", authorization: undefined },
  { name: "free", level: "free", authorization: "Bearer demo-free-token" },
  { name: "subscriber", level: "subscriber", authorization: "Bearer demo-subscriber-token" }
] as const
export type Caller = (typeof CALLERS)[number]
export const KINDS = ["content", "markdown", "search"] as const
export type Kind = (typeof KINDS)[number]

export interface CorpusSettings {
  readonly size: number
  readonly seed: number
  readonly largeShare: number
  readonly hugeItemId: number
  readonly hugeItemBytes: number
}

export const simulatorEnv = (c: CorpusSettings): Record<string, string> => ({
  SIM_CORPUS_SIZE: String(c.size),
  SIM_SEED: String(c.seed),
  SIM_LARGE_SHARE: String(c.largeShare),
  ...(c.hugeItemId > 0 ? { SIM_HUGE_ITEM_ID: String(c.hugeItemId), SIM_HUGE_ITEM_BYTES: String(c.hugeItemBytes) } : {})
})

export const buildCorpus = (c: CorpusSettings): Corpus =>
  makeCorpus({ size: c.size, seed: c.seed, largeShare: c.largeShare, hugeItemId: c.hugeItemId, hugeItemChars: c.hugeItemBytes })

/** Zipf(s) sampler over 1..n by inverse CDF (binary search). */
export const zipf = (n: number, s: number) => {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / Math.pow(i + 1, s)
  for (let i = 0; i < n; i++) cdf[i]! /= sum
  return (): number => {
    const u = Math.random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    return lo + 1
  }
}

export interface Workload {
  readonly corpus: Corpus
  /** The next request: path, caller, kind. */
  readonly next: () => { readonly path: string; readonly caller: Caller; readonly kind: Kind; readonly id: number }
}

/** 40 % `/content/{id}`, 20 % `/content/{id}/markdown`, 40 % `/search`; ids Zipf(1.1) over `ids` items, ids in `exclude` skipped. */
export const makeWorkload = (corpus: Corpus, options: { readonly ids: number; readonly questions: number; readonly exclude?: ReadonlySet<number> }): Workload => {
  const pickId = zipf(Math.min(options.ids, corpus.size), 1.1)
  const pickQuestion = zipf(options.questions, 1.1)
  // A fixed permutation so popular ids are spread over the corpus, not 1, 2, 3.
  const stride = 7919
  const idAt = (rank: number) => ((rank * stride) % corpus.size) + 1
  const questions = Array.from({ length: options.questions }, (_, i) => {
    const item = corpus.items[(i * 104_729) % corpus.size]!
    return i % 2 === 0 ? item.topics[0]! : `${item.terms[0]} ${item.terms[1] ?? ""}`.trim()
  })
  return {
    corpus,
    next: () => {
      const caller = CALLERS[Math.floor(Math.random() * CALLERS.length)]!
      const r = Math.random()
      let id = idAt(pickId())
      while (options.exclude?.has(id)) id = idAt(pickId())
      if (r < 0.4) return { path: `/content/${id}`, caller, kind: "content", id }
      if (r < 0.6) return { path: `/content/${id}/markdown`, caller, kind: "markdown", id }
      const q = questions[pickQuestion() - 1]!
      return { path: `/search?q=${encodeURIComponent(q)}&limit=10`, caller, kind: "search", id: 0 }
    }
  }
}

const canRead = (level: string, access: string) => access === "free" || level === "subscriber" || level === "admin"

/**
 * Checks one 200 answer against the caller's level and the item asked for. Returns a violation
 * ("wrong_level": content the caller may not read; "wrong_item": another item's content;
 * "bad_body": a 200 whose body is not what the route promises) or undefined.
 */
export const checkAnswer = (
  corpus: Corpus,
  kind: Kind,
  id: number,
  level: string,
  body: string
): "wrong_level" | "wrong_item" | "bad_body" | undefined => {
  if (kind === "markdown") {
    const item = corpus.get(id)
    if (item === undefined) return "wrong_item"
    if (!canRead(level, item.access)) return "wrong_level"
    const m = /^---\n[\s\S]*?\nid: (\d+)\n/.exec(body)
    if (m === null) return "bad_body"
    return Number(m[1]) === id ? undefined : "wrong_item"
  }
  let json: any
  try {
    json = JSON.parse(body)
  } catch {
    return "bad_body"
  }
  if (kind === "content") {
    const item = corpus.get(id)
    if (item === undefined || json?.id !== id) return "wrong_item"
    if (json.access_level !== item.access) return "wrong_level"
    return canRead(level, item.access) ? undefined : "wrong_level"
  }
  if (!Array.isArray(json?.results)) return "bad_body"
  for (const r of json.results) {
    const item = corpus.get(r?.id)
    if (item === undefined) return "wrong_item"
    if (!canRead(level, item.access)) return "wrong_level"
  }
  return undefined
}

/**
 * The cached question a request path asks, as the gateway keys it after the partition (see
 * `src/content/CacheKeys.ts`): `content` `<id>:<1|0>:<format>`, `markdown` `<id>`, `search` the
 * normalised question. `undefined` for other paths and questions the gateway refuses.
 */
export const questionOf = (path: string): { readonly namespace: string; readonly question: string } | undefined => {
  const url = new URL(path, "http://bench.invalid")
  const markdown = /^\/content\/(\d+)\/markdown$/.exec(url.pathname)
  if (markdown !== null) return { namespace: "markdown", question: String(Number(markdown[1])) }
  const content = /^\/content\/(\d+)$/.exec(url.pathname)
  if (content !== null) {
    const options = parseContentOptions({ include_content: url.searchParams.get("include_content") ?? undefined, format: url.searchParams.get("format") ?? undefined })
    if (Either.isLeft(options)) return undefined
    return { namespace: "content", question: `${Number(content[1])}:${options.right.includeContent ? 1 : 0}:${options.right.format}` }
  }
  if (url.pathname === "/search") {
    const query = normalizeSearch(searchInputOf(url.searchParams))
    return Either.isRight(query) ? { namespace: "search", question: searchKey(query.right) } : undefined
  }
  return undefined
}
