/**
 * Content search and retrieval over the site's content methods: validated and normalised
 * questions in, checked results out. The caller's credentials travel with every call, so Drupal
 * applies the caller's access level.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Credentials } from "../drupal/Credentials.js"
import { DrupalRpc } from "../drupal/DrupalRpc.js"
import { ContentItem, decodeResult, SearchResult } from "./ContentModel.js"
import { type SearchQuery, toRpcParams } from "./SearchQuery.js"

/** How an item is asked for. */
export interface GetOptions {
  readonly includeContent: boolean
  readonly format: "html" | "markdown"
}

const decodeSearch = decodeResult(SearchResult, "content.search")
const decodeItem = decodeResult(ContentItem, "content.get_tutorial")

/** Search and retrieval. */
export class Content extends Effect.Service<Content>()("accelerator/Content", {
  effect: Effect.gen(function*() {
    const rpc = yield* DrupalRpc
    return {
      /** Runs a normalised search as the caller. */
      search: Effect.fn("Content.search")(function*(query: SearchQuery, credentials: Credentials) {
        return yield* decodeSearch(yield* rpc.call("content.search", toRpcParams(query), credentials))
      }),
      /** One item as the caller, with or without its body. */
      get: Effect.fn("Content.get")(function*(id: number, credentials: Credentials, options: GetOptions) {
        const params = { id, include_content: options.includeContent, format: options.format }
        return yield* decodeItem(yield* rpc.call("content.get_tutorial", params, credentials))
      })
    }
  })
}) {}
