/**
 * Search questions as the gateway accepts them, and their normal form. Two questions that
 * Drupal answers identically normalise to the same `SearchQuery`, hence the same cache key:
 * the query text is Unicode-normalised (NFKC), trimmed, its white space collapsed and case-folded
 * (the site's search is case-insensitive); tags are trimmed, case-folded, de-duplicated and
 * sorted (the tag filter is an AND of tags, so order carries no meaning); defaults are filled in.
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Schema } from "effect"

/** Most results one page may ask for. */
export const MAX_LIMIT = 100
/** Deepest offset a caller may page to. */
export const MAX_OFFSET = 10_000
/** Longest query text accepted, in characters after normalisation. */
export const MAX_QUERY_LENGTH = 256
/** Most tags one question may filter on. */
export const MAX_TAGS = 20

const DrupalVersion = Schema.Literal("9", "10", "11")
const Sort = Schema.Literal("relevance", "date", "title")
const AccessLevel = Schema.Literal("free", "subscriber", "all")

/** A normalised search question: the params of `content.search`. */
export class SearchQuery extends Schema.Class<SearchQuery>("SearchQuery")({
  query: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(MAX_QUERY_LENGTH)),
  drupal_version: Schema.optional(DrupalVersion),
  tags: Schema.Array(Schema.String),
  content_type: Schema.String,
  access_level: Schema.optional(AccessLevel),
  sort: Sort,
  limit: Schema.Int.pipe(Schema.between(1, MAX_LIMIT)),
  offset: Schema.Int.pipe(Schema.between(0, MAX_OFFSET))
}) {}

/** A search question as it arrives (query string or JSON), before normalisation. */
export interface SearchInput {
  readonly q?: string | undefined
  readonly drupal_version?: string | undefined
  /** Comma-separated list, or repeated values. */
  readonly tags?: string | ReadonlyArray<string> | undefined
  readonly content_type?: string | undefined
  readonly access_level?: string | undefined
  readonly sort?: string | undefined
  readonly limit?: string | number | undefined
  readonly offset?: string | number | undefined
}

/** Why a search question was refused; `field` names the offending input. */
export class InvalidSearch extends Schema.TaggedError<InvalidSearch>()("InvalidSearch", {
  field: Schema.String,
  message: Schema.String
}) {}

const foldText = (s: string): string => s.normalize("NFKC").replace(/\s+/gu, " ").trim().toLocaleLowerCase("en-US")

const toInt = (field: string, value: string | number | undefined, fallback: number): Either.Either<number, InvalidSearch> => {
  if (value === undefined || value === "") return Either.right(fallback)
  const n = typeof value === "number" ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN
  return Number.isSafeInteger(n) ? Either.right(n) : Either.left(new InvalidSearch({ field, message: `${field} must be a whole number` }))
}

const splitTags = (tags: SearchInput["tags"]): Array<string> => {
  if (tags === undefined) return []
  const list = typeof tags === "string" ? [tags] : tags
  return list.flatMap((t) => t.split(",")).map(foldText).filter((t) => t.length > 0)
}

const decode = Schema.decodeUnknownEither(SearchQuery)

/**
 * Validates and normalises a search question. Fails with `InvalidSearch` naming the field and
 * the rule; never throws.
 */
export const normalizeSearch = (input: SearchInput): Either.Either<SearchQuery, InvalidSearch> =>
  Either.gen(function*() {
    const query = foldText(input.q ?? "")
    if (query.length === 0) return yield* Either.left(new InvalidSearch({ field: "q", message: "q is required and must not be blank" }))
    if (query.length > MAX_QUERY_LENGTH) {
      return yield* Either.left(new InvalidSearch({ field: "q", message: `q must be at most ${MAX_QUERY_LENGTH} characters` }))
    }
    const tags = [...new Set(splitTags(input.tags))].sort()
    if (tags.length > MAX_TAGS) return yield* Either.left(new InvalidSearch({ field: "tags", message: `at most ${MAX_TAGS} tags` }))
    const limit = yield* toInt("limit", input.limit, 20)
    const offset = yield* toInt("offset", input.offset, 0)
    const contentType = foldText(input.content_type ?? "") || "all"
    const candidate = {
      query,
      tags,
      content_type: contentType,
      sort: input.sort === undefined || input.sort === "" ? "relevance" : input.sort.trim().toLowerCase(),
      limit,
      offset,
      ...(input.drupal_version ? { drupal_version: input.drupal_version.trim() } : {}),
      ...(input.access_level ? { access_level: input.access_level.trim().toLowerCase() } : {})
    }
    return yield* Either.mapLeft(decode(candidate), (error) => {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
      const field = String(issue?.path[0] ?? "query")
      return new InvalidSearch({ field: field === "query" ? "q" : field, message: `${field === "query" ? "q" : field}: ${issue?.message ?? "invalid"}` })
    })
  })

/** The `content.search` params of a normalised question (defaults included, so keys are stable). */
export const toRpcParams = (q: SearchQuery): Record<string, unknown> => ({
  query: q.query,
  ...(q.drupal_version !== undefined ? { drupal_version: q.drupal_version } : {}),
  ...(q.tags.length > 0 ? { tags: q.tags } : {}),
  content_type: q.content_type,
  ...(q.access_level !== undefined ? { access_level: q.access_level } : {}),
  sort: q.sort,
  page: { limit: q.limit, offset: q.offset }
})

/** A canonical string of the question: equal questions give equal strings (used in cache keys). */
export const searchKey = (q: SearchQuery): string =>
  [
    q.query,
    q.drupal_version ?? "",
    q.tags.join(","),
    q.content_type,
    q.access_level ?? "",
    q.sort,
    q.limit,
    q.offset
  ].map((part) => encodeURIComponent(String(part))).join("|")
