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

/** The jsonrpc 2.x releases whose wire behaviour differs, as far as the simulator models it. */
export const MODULE_VERSIONS = ["2.0.0", "2.0.1", "2.0.2", "2.0.3", "2.0.4", "2.0.5"] as const
/** A jsonrpc module release. */
export type ModuleVersion = typeof MODULE_VERSIONS[number]

/**
 * What a real site can differ in. Each default follows the jsonrpc module's 2.x source and the
 * site's documented methods (`drupal-jsonrpc.md`).
 */
export interface Switches {
  /**
   * The module release. Envelope failures and malformed JSON: 2.0.0–2.0.4 let the schema's
   * `TypeError` escape (Drupal's HTML 500 page); 2.0.5 catches it (HTTP 400, -32603, id null).
   */
  readonly moduleVersion: ModuleVersion
  /** Whether the site has the `user.access_context` method plugin (else: -32601). */
  readonly accessContext: boolean
  /**
   * A tutorial id that does not exist. `item` (default): `content.get_tutorial` takes a plain
   * integer id (no entity parameter factory, so nothing is loaded at parse stage) and the method
   * itself answers -32602 per item, id null, HTTP 200. `parse`: a site whose `id` parameter is
   * upcast to an entity at parse stage: -32602 with id null fails the whole request, HTTP 400.
   */
  readonly missingItem: "parse" | "item"
}

/** Default switches: the module's 2.0.5 source and the site's documented methods. */
export const defaultSwitches: Switches = {
  moduleVersion: "2.0.5",
  accessContext: true,
  missingItem: "item"
}

/** Whether envelope failures are Drupal's HTML 500 page (before 2.0.5) or a JSON-RPC 400. */
export const envelopeAsHtml500 = (switches: Switches): boolean => switches.moduleVersion !== "2.0.5"

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
