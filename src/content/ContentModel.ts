/**
 * The shapes of the site's content methods' results, as the gateway checks them before
 * answering or caching: a reply that does not fit is a `bad_upstream_reply`, never a cache
 * entry. Unknown extra fields of items are kept (sites add fields).
 *
 * @since 0.1.0
 */
import { Effect, ParseResult, Schema } from "effect"
import { DrupalDecodeError } from "../drupal/DrupalError.js"

/** Item metadata. */
export const ContentMetadata = Schema.Struct({
  drupal_version: Schema.optional(Schema.String),
  difficulty: Schema.optional(Schema.String),
  tags: Schema.optional(Schema.Array(Schema.String)),
  updated: Schema.optional(Schema.String)
}, Schema.Record({ key: Schema.String, value: Schema.Unknown }))

/** One search hit. */
export const SearchHit = Schema.Struct({
  id: Schema.Union(Schema.Number, Schema.String),
  title: Schema.String,
  summary: Schema.optional(Schema.String),
  url: Schema.String,
  metadata: Schema.optional(ContentMetadata)
}, Schema.Record({ key: Schema.String, value: Schema.Unknown }))

/** The result of `content.search`. */
export const SearchResult = Schema.Struct({
  results: Schema.Array(SearchHit),
  total: Schema.Number,
  limit: Schema.Number,
  offset: Schema.Number
})
export type SearchResult = typeof SearchResult.Type

/** The result of `content.get_tutorial`. */
export const ContentItem = Schema.Struct({
  id: Schema.Union(Schema.Number, Schema.String),
  title: Schema.String,
  url: Schema.String,
  summary: Schema.optional(Schema.String),
  metadata: Schema.optional(ContentMetadata),
  content: Schema.optional(Schema.String),
  format: Schema.optional(Schema.String)
}, Schema.Record({ key: Schema.String, value: Schema.Unknown }))
export type ContentItem = typeof ContentItem.Type

/** Decodes an upstream result, failing with `DrupalDecodeError` (`unexpected_result`) when it does not fit. */
export const decodeResult = <A, I>(schema: Schema.Schema<A, I>, method: string) => {
  const decode = Schema.decodeUnknown(schema)
  return (result: unknown): Effect.Effect<A, DrupalDecodeError> =>
    Effect.mapError(decode(result), (error) =>
      new DrupalDecodeError({
        reason: "unexpected_result",
        detail: ParseResult.TreeFormatter.formatErrorSync(error).slice(0, 300),
        method
      }))
}
