/**
 * Cache keys and tags of the content API, in one place: the Effect routes and the synchronous
 * hit path must build byte-identical keys. Every key starts with its namespace, then the caller's
 * partition (so no caller ever reads a value cached for another access level), then the
 * normalised question. No token, only partitions derived from Drupal's answer or a token hash.
 *
 * @since 0.1.0
 */
import { type SearchQuery, searchKey } from "./SearchQuery.js"

/** The cache namespaces of the gateway. */
export const NAMESPACES = ["search", "content", "markdown", "discovery", "scope"] as const
export type Namespace = (typeof NAMESPACES)[number]

/** `search:<partition>:<normalised question>`. */
export const searchCacheKey = (partition: string, query: SearchQuery): string => `search:${partition}:${searchKey(query)}`

/** `content:<partition>:<id>:<with body?>:<format>`. */
export const contentCacheKey = (partition: string, id: number, includeContent: boolean, format: string): string =>
  `content:${partition}:${id}:${includeContent ? 1 : 0}:${format}`

/** `markdown:<partition>:<id>`. */
export const markdownCacheKey = (partition: string, id: number): string => `markdown:${partition}:${id}`

/** `discovery:<partition>:<methods|tools>`. */
export const discoveryCacheKey = (partition: string, view: "methods" | "tools"): string => `discovery:${partition}:${view}`

/** The tag every cached form of content item `id` carries (its JSON, its Markdown, search pages listing it). */
export const itemTag = (id: number | string): string => `item:${id}`

/** Carried by every search page: a new item can change any of them. */
export const SEARCH_TAG = "search"

/** Carried by every discovery answer. */
export const DISCOVERY_TAG = "discovery"

/** Content type of a cached not-found answer (served with HTTP 404). */
export const NOT_FOUND_CONTENT_TYPE = "application/json; negative=404"

/** Content type of a cached denial (served with HTTP 403): kept per partition, as every key is. */
export const DENIED_CONTENT_TYPE = "application/json; negative=403"

/** The HTTP status and the content type to send for a cached entry's content type. */
export const responseOf = (contentType: string): { readonly status: number; readonly contentType: string } =>
  contentType === NOT_FOUND_CONTENT_TYPE
    ? { status: 404, contentType: "application/json" }
    : contentType === DENIED_CONTENT_TYPE
    ? { status: 403, contentType: "application/json" }
    : { status: 200, contentType }
