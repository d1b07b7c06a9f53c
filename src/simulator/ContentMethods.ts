/**
 * The site-specific methods of the simulated Drupalize.Me-style site: `content.search`,
 * `content.get_tutorial` and the assumed `user.access_context` plugin.
 *
 * Visibility: free items for everyone with `access content`; subscriber items only for callers
 * with `access subscriber content` (subscribers, administrators). Search lists only what the
 * caller may read; fetching a subscriber item without the permission is a per-item
 * `Access Denied`.
 *
 * @since 0.1.0
 */
import { CONTENT_TYPES, type CorpusItem, type DrupalVersion } from "./Corpus.js"
import {
  accessReason,
  fail,
  type MethodDefinition,
  type MethodOutcome,
  ok,
  PAGINATION_FACTORY,
  RpcErrors,
  type Upcast,
  type Site
} from "./Methods.js"
import { LazyString, type LengthMemo } from "./ReplyWriter.js"
import type { SearchSort } from "./Search.js"
import type { SiteUser } from "./Users.js"

/** Page size of `content.search` when `page.limit` is absent. */
export const DEFAULT_SEARCH_LIMIT = 20
/** Largest page `content.search` returns; a larger `page.limit` is capped (reported in `limit`). */
export const MAX_SEARCH_LIMIT = 100
/** Data of the error for an item id that does not exist (the entity factory's message). */
export const ITEM_NOT_FOUND = "The requested entity could not be found."

/** Whether the user may read the item. */
export const canRead = (site: Site, user: SiteUser, item: CorpusItem): boolean =>
  item.access === "free" || site.roles.has(user, "access subscriber content")

const summaryOf = (site: Site, item: CorpusItem) => ({
  id: item.id,
  title: item.title,
  summary: item.summary,
  url: `${site.state.siteUrl}/tutorial/${item.id}`,
  metadata: {
    drupal_version: item.drupalVersion,
    difficulty: item.difficulty,
    tags: item.tags,
    updated: item.updated,
    langcode: item.langcode
  }
})

const page = (value: unknown): { limit: number | undefined; offset: number } => {
  const p = (value ?? {}) as { limit?: number; offset?: number }
  return { limit: p.limit, offset: p.offset ?? 0 }
}

const search: MethodDefinition = {
  id: "content.search",
  usage: "Search tutorials.",
  access: ["access content"],
  backend: "search_api_solr",
  params: {
    query: { description: "Search terms", required: true, schema: { type: "string", minLength: 1 } },
    drupal_version: { description: "Drupal major version", schema: { type: "string", enum: ["9", "10", "11"] } },
    tags: { description: "Only items carrying all of these tags", schema: { type: "array", items: { type: "string" } } },
    content_type: {
      description: "Kind of content",
      schema: { type: "string", enum: ["all", ...CONTENT_TYPES], default: "all" }
    },
    access_level: {
      description: "Subscription level of the items",
      schema: { type: "string", enum: ["free", "subscriber", "all"], default: "all" }
    },
    sort: { description: "Sort order", schema: { type: "string", enum: ["relevance", "date", "title"], default: "relevance" } },
    page: { description: "Pagination (default limit 20)", factory: PAGINATION_FACTORY }
  },
  execute: ({ params, site, user }) => {
    const { limit: askedLimit, offset } = page(params.page)
    const limit = Math.min(askedLimit ?? DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT)
    const result = site.index.search({
      query: params.query as string,
      drupalVersion: params.drupal_version as DrupalVersion | undefined,
      tags: params.tags as ReadonlyArray<string> | undefined,
      contentType: (params.content_type as string | undefined) ?? "all",
      accessLevel: (params.access_level as "free" | "subscriber" | "all" | undefined) ?? "all",
      sort: (params.sort as SearchSort | undefined) ?? "relevance",
      limit,
      offset
    }, (item) => canRead(site, user, item))
    return ok({ results: result.items.map((item) => summaryOf(site, item)), total: result.total, limit, offset })
  }
}

const upcastItem = (value: unknown, site: Site): Upcast => {
  if (site.switches.missingItem === "item") return { _tag: "Value", value }
  const item = site.corpus.get(value as number)
  return item === undefined ? { _tag: "Invalid", data: ITEM_NOT_FOUND } : { _tag: "Value", value: item.id }
}

const getTutorial: MethodDefinition = {
  id: "content.get_tutorial",
  usage: "Get one tutorial, with its content.",
  access: ["access content"],
  backend: "database",
  params: {
    id: { description: "Tutorial id", required: true, schema: { type: "integer", minimum: 1 }, upcast: upcastItem },
    include_content: { description: "Include the body", schema: { type: "boolean", default: true } },
    format: { description: "Format of the body", schema: { type: "string", enum: ["markdown", "html"], default: "html" } }
  },
  execute: ({ params, site, user }): MethodOutcome => {
    const item = site.corpus.get(params.id as number)
    if (item === undefined) return fail(RpcErrors.invalidParams(ITEM_NOT_FOUND))
    if (!canRead(site, user, item)) return fail(RpcErrors.accessDenied(accessReason(["access subscriber content"])))
    const format = (params.format as "markdown" | "html" | undefined) ?? "html"
    const includeContent = (params.include_content as boolean | undefined) ?? true
    const base = {
      ...summaryOf(site, item),
      content_type: item.contentType,
      access_level: item.access,
      format
    }
    if (!includeContent) return ok(base)
    const content = item.targetChars > site.streamThresholdChars
      ? new LazyString(() => site.corpus.chunks(item, format, site.streamChunkChars), lengthMemo(site.corpus, `${item.id}/${format}`))
      : site.corpus.bodyText(item, format)
    return ok({ ...base, content })
  }
}

/** Most bodies whose encoded length is kept per corpus (a few bytes each); beyond it the memo starts over. */
const MAX_MEMO_ENTRIES = 4096

const encodedLengths = new WeakMap<object, Map<string, number>>()

/** The memo of a streamed body's encoded length: a corpus generates the same body every time. */
const lengthMemo = (corpus: object, key: string): LengthMemo => {
  let lengths = encodedLengths.get(corpus)
  if (lengths === undefined) {
    lengths = new Map()
    encodedLengths.set(corpus, lengths)
  }
  const memo = lengths
  return {
    get: () => memo.get(key),
    set: (length) => {
      if (memo.size >= MAX_MEMO_ENTRIES) memo.clear()
      memo.set(key, length)
    }
  }
}

const accessContext: MethodDefinition = {
  id: "user.access_context",
  usage: "Describe what the calling user may read: access level, roles and a hash of the permission set.",
  access: ["use jsonrpc services"],
  execute: ({ site, user }) => ok(site.roles.accessContext(user))
}

/** The site's content methods; `user.access_context` only when the switch is on. */
export const contentMethods = (withAccessContext: boolean): ReadonlyArray<MethodDefinition> =>
  withAccessContext ? [search, getTutorial, accessContext] : [search, getTutorial]
