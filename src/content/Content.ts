/**
 * Content search and retrieval over the site's content methods: validated and normalised
 * questions in, checked results out. The caller's credentials travel with every call, so Drupal
 * applies the caller's access level.
 *
 * @since 0.1.0
 */
import { Effect, Either, Option, type Scope, Stream } from "effect"
import type { Credentials } from "../drupal/Credentials.js"
import { DrupalEndpoint } from "../drupal/DrupalEndpoint.js"
import { DrupalDecodeError, type DrupalError, DrupalRpcError } from "../drupal/DrupalError.js"
import { DrupalRpc, type OpenedBody, type UpstreamValidator } from "../drupal/DrupalRpc.js"
import { frontMatter, htmlToMarkdown, makeConverter } from "../markdown/HtmlToMarkdown.js"
import { type JsonRpcResultError, resultEvents, wholeResult } from "../markdown/JsonRpcResultStream.js"
import * as LargeJson from "../markdown/LargeJson.js"
import { ContentItem, decodeResult, SearchResult } from "./ContentModel.js"
import { type SearchQuery, toRpcParams } from "./SearchQuery.js"
import * as Traced from "../telemetry/Traced.js"

/** An item's document from {@link Content.documentOpen}: whole, or its reply still to convert. */
export type OpenedDocument =
  | {
    readonly _tag: "Whole"
    readonly markdown: string
    /** The reply's `result`, body in place: what the JSON route's call of the item gives. */
    readonly result: unknown
  }
  | { readonly _tag: "Streaming"; readonly reply: Stream.Stream<Uint8Array, DrupalError> }

/** How an item is asked for. */
export interface GetOptions {
  readonly includeContent: boolean
  readonly format: "html" | "markdown"
}

const decodeSearch = decodeResult(SearchResult, "content.search")

const fromResultError = (error: DrupalError | JsonRpcResultError): DrupalError =>
  error._tag !== "JsonRpcReplyError" && error._tag !== "JsonRpcDecodeError"
    ? error
    : error._tag === "JsonRpcReplyError"
    ? new DrupalRpcError({ code: error.code, message: error.message, data: error.data, method: "content.get_tutorial", id: error.id })
    : new DrupalDecodeError({
      reason: error.reason === "invalid_envelope" ? "invalid_envelope" : "invalid_json",
      detail: `${error.reason}: ${error.detail}`,
      method: "content.get_tutorial"
    })
const decodeItem = decodeResult(ContentItem, "content.get_tutorial")

/** Search and retrieval. */
export class Content extends Effect.Service<Content>()("accelerator/Content", {
  effect: Effect.gen(function*() {
    const rpc = yield* DrupalRpc
    const endpoint = yield* DrupalEndpoint
    const get = Traced.fn("Content.get")(function*(id: number, credentials: Credentials, options: GetOptions) {
      const params = { id, include_content: options.includeContent, format: options.format }
      return yield* decodeItem(yield* rpc.call("content.get_tutorial", params, credentials))
    })
    /**
     * One item revalidated with the validators of an earlier reply: `NotModified` when the origin
     * says so (a 304, no body), else the item and its reply's validators. Anonymous reads only
     * carry validators (see `DrupalRpc.callConditional`); a client without it loads plainly.
     */
    const getConditional = Traced.fn("Content.getConditional")(function*(
      id: number,
      credentials: Credentials,
      options: GetOptions,
      validator: UpstreamValidator | undefined
    ) {
      const params = { id, include_content: options.includeContent, format: options.format }
      if (rpc.callConditional === undefined) {
        return { _tag: "Modified", item: yield* get(id, credentials, options), validator: undefined } as const
      }
      const reply = yield* rpc.callConditional("content.get_tutorial", params, credentials, validator)
      if (reply._tag === "NotModified") return { _tag: "NotModified", validator: reply.validator } as const
      return { _tag: "Modified", item: yield* decodeItem(reply.result), validator: reply.validator } as const
    })

    /** A search revalidated with the validators of an earlier reply, as {@link getConditional}. */
    const searchConditional = Traced.fn("Content.searchConditional")(function*(
      query: SearchQuery,
      credentials: Credentials,
      validator: UpstreamValidator | undefined
    ) {
      if (rpc.callConditional === undefined) {
        return { _tag: "Modified", result: yield* decodeSearch(yield* rpc.call("content.search", toRpcParams(query), credentials)), validator: undefined } as const
      }
      const reply = yield* rpc.callConditional("content.search", toRpcParams(query), credentials, validator)
      if (reply._tag === "NotModified") return { _tag: "NotModified", validator: reply.validator } as const
      return { _tag: "Modified", result: yield* decodeSearch(reply.result), validator: reply.validator } as const
    })

    const bodyParams = (id: number) => ({ id, include_content: true, format: "html" })
    /** The document's URL (the converter's base for relative links) and its front matter. */
    const documentHead = (item: ContentItem) => {
      const url = new URL(item.url, endpoint.url).href
      const head = frontMatter({
        title: item.title,
        url,
        id: item.id,
        drupal_version: item.metadata?.drupal_version,
        difficulty: item.metadata?.difficulty,
        tags: item.metadata?.tags,
        updated: item.metadata?.updated
      })
      return { url, head }
    }
    /** The front matter, then the reply's HTML body converted as it streams. */
    const streamedMarkdown = (item: ContentItem, reply: Stream.Stream<Uint8Array, DrupalError>): Stream.Stream<string, DrupalError> => {
      const { head, url } = documentHead(item)
      const html = reply.pipe(
        resultEvents(),
        Stream.mapError(fromResultError),
        Stream.filterMap((event) => event._tag === "ContentChunk" ? Option.some(event.chunk) : Option.none()),
        // One upstream chunk converted per step, the event loop served between steps: a 30 MB
        // body never converts in one go.
        Stream.rechunk(1),
        Stream.tap(() => LargeJson.yieldToEventLoop)
      )
      return Stream.concat(Stream.make(head), htmlToMarkdown(html, { baseUrl: url }))
    }
    /** The front matter, then `html` converted in one step (a small body). */
    const wholeDocument = (item: ContentItem, html: string | undefined): string => {
      const { head, url } = documentHead(item)
      const converter = makeConverter({ baseUrl: url })
      return head + (html === undefined ? "" : converter.write(html)) + converter.end()
    }
    const markdownOf = (id: number, item: ContentItem, credentials: Credentials): Stream.Stream<string, DrupalError> =>
      streamedMarkdown(item, rpc.stream("content.get_tutorial", bodyParams(id), credentials))

    /**
     * Item `id`'s document in one call when its reply is small: the full item opened first, in
     * the caller's scope. A reply of at most `wholeBelow` bytes carries the metadata and the body:
     * decoded and converted in one step (`Whole`, the whole document; the upstream connection
     * already released). A longer one is `Streaming`: the reply's bytes, to convert with
     * {@link streamedMarkdown} once the item's metadata is known. With `wholeBelow <= 0` (or a
     * client without `openBody`) nothing is opened: `Streaming` over a lazy stream. Failing to
     * open, a refusal (denied, not found) or an undecodable small reply fail the effect.
     */
    const documentOpen = (
      id: number,
      credentials: Credentials,
      wholeBelow: number
    ): Effect.Effect<OpenedDocument, DrupalError, Scope.Scope> => {
      // A client without `openBody` (a spec's stand-in) streams lazily, as `openBody` does with 0.
      const opening = rpc.openBody === undefined
        ? Effect.succeed<OpenedBody>({ _tag: "Streaming", stream: rpc.stream("content.get_tutorial", bodyParams(id), credentials) })
        : rpc.openBody("content.get_tutorial", bodyParams(id), credentials, wholeBelow)
      return Effect.flatMap(opening, (opened) => {
        if (opened._tag === "Streaming") return Effect.succeed<OpenedDocument>({ _tag: "Streaming", reply: opened.stream })
        return Effect.suspend(() => {
          const whole = wholeResult(opened.chunks)
          if (Either.isLeft(whole)) return Effect.fail(fromResultError(whole.left))
          return Effect.map(decodeItem(whole.right.result), (item): OpenedDocument => ({
            _tag: "Whole",
            markdown: wholeDocument(item, whole.right.content),
            result: whole.right.result
          }))
        })
      })
    }
    /**
     * Item `found`'s document (front matter, then its body converted in one step), from an item
     * read before, e.g. the JSON route's cached answer: a small one, as `documentOpen`'s `Whole`.
     * Fails with a decode error when `found` is not an item.
     */
    const documentOfItem = (found: unknown): Effect.Effect<string, DrupalError> =>
      Effect.map(decodeItem(found), (item) => {
        const html = (found as { readonly content?: unknown }).content
        return wholeDocument(item, typeof html === "string" ? html : undefined)
      })
    return {
      getConditional,
      searchConditional,
      /** Runs a normalised search as the caller. */
      search: Traced.fn("Content.search")(function*(query: SearchQuery, credentials: Credentials) {
        return yield* decodeSearch(yield* rpc.call("content.search", toRpcParams(query), credentials))
      }),
      /** One item as the caller, with or without its body. */
      get,
      /**
       * One item as RAG-ready Markdown: YAML front matter, then the HTML body converted as it
       * streams from upstream. The effect checks the item first (metadata call: access denied
       * or unknown ids fail here, before anything is sent to the client); the stream then holds
       * at most one upstream chunk and the converter's bounded buffers, whatever the body size.
       * A failure mid-body fails the stream (the client sees a cut response, never a short one
       * presented as whole).
       */
      markdown: Traced.fn("Content.markdown")(function*(id: number, credentials: Credentials) {
        const item = yield* get(id, credentials, { includeContent: false, format: "html" })
        return markdownOf(id, item, credentials)
      }),
      /**
       * {@link markdown} for an item whose metadata the caller already has (e.g. from the cache):
       * no metadata call, only the streamed body.
       */
      markdownOf,
      documentOpen,
      documentOfItem,
      streamedMarkdown
    }
  })
}) {}
