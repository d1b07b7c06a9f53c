/**
 * The simulated Drupal site of one simulator instance: its corpus and search index, its role
 * table, its registry of JSON-RPC methods, the switches for behaviour that is only assumed of
 * the real site, and the little mutable state methods change (maintenance mode).
 *
 * @since 0.1.0
 */
import { contentMethods } from "./ContentMethods.js"
import { coreMethods } from "./CoreMethods.js"
import { type Corpus, makeCorpus } from "./Corpus.js"
import { makeRegistry, type MethodRegistry } from "./Methods.js"
import { makeSearchIndex, type SearchIndex } from "./Search.js"
import { makeRoleTable, type RoleTable } from "./Users.js"

/**
 * Switches for behaviour of the real site that is uncertain (*assumed* in the API notes).
 * Each default follows the API notes.
 */
export interface Switches {
  /** Malformed JSON: a generic HTML 500 page (jsonrpc 2.x) or a -32700 error object (3.x). */
  readonly malformedJson: "html500" | "jsonrpc"
  /** Whether the site has the `user.access_context` method plugin (else: -32601). */
  readonly accessContext: boolean
  /** A missing tutorial id: parse-stage -32602 for the whole request, or a per-item -32602 at HTTP 200. */
  readonly missingItem: "parse" | "execute"
  /**
   * Id of a parse-stage error object: `item` = always the failing item's id (API notes);
   * `module` = as the jsonrpc 2.x source does: `null` for envelope, schema and entity failures,
   * the item's id for unknown methods and missing required params.
   */
  readonly parseErrorId: "item" | "module"
  /**
   * A `params` member sent to a method that declares no params: `ignore` it (API notes), or
   * `reject` it with -32602 "The <method> method does not accept parameters." (jsonrpc 2.x source,
   * even for `"params": {}`).
   */
  readonly paramsOnParamless: "ignore" | "reject"
}

/** Default switches (as the API notes describe the site). */
export const defaultSwitches: Switches = {
  malformedJson: "html500",
  accessContext: true,
  missingItem: "parse",
  parseErrorId: "item",
  paramsOnParamless: "ignore"
}

/** Options of {@link makeSite}. */
export interface SiteOptions {
  readonly corpusSize: number
  readonly seed: number
  readonly largeShare: number
  readonly hugeItemId?: number | undefined
  readonly hugeItemChars?: number | undefined
  readonly switches: Switches
  /** Bodies longer than this (HTML characters) are streamed instead of inlined. */
  readonly streamThresholdChars: number
  /** Size of the streamed body chunks, in characters. */
  readonly streamChunkChars: number
  /** Base of tutorial URLs; `undefined`: the simulator's own base URL, once listening. */
  readonly siteUrl?: string | undefined
}

/** The site: read-mostly, used from the event loop only. */
export interface Site {
  readonly corpus: Corpus
  readonly index: SearchIndex
  readonly roles: RoleTable
  readonly registry: MethodRegistry
  readonly switches: Switches
  readonly streamThresholdChars: number
  readonly streamChunkChars: number
  readonly state: {
    /** Base of tutorial URLs, without trailing slash. */
    siteUrl: string
    maintenanceMode: boolean
  }
}

/** Builds the site: the corpus metadata and the search index are built here, eagerly. */
export const makeSite = (options: SiteOptions): Site => {
  const corpus = makeCorpus({
    size: options.corpusSize,
    seed: options.seed,
    largeShare: options.largeShare,
    hugeItemId: options.hugeItemId,
    hugeItemChars: options.hugeItemChars
  })
  return {
    corpus,
    index: makeSearchIndex(corpus),
    roles: makeRoleTable(),
    registry: makeRegistry([...coreMethods, ...contentMethods(options.switches.accessContext)]),
    switches: options.switches,
    streamThresholdChars: options.streamThresholdChars,
    streamChunkChars: options.streamChunkChars,
    state: { siteUrl: (options.siteUrl ?? "").replace(/\/+$/, ""), maintenanceMode: false }
  }
}
