/**
 * The simulated Drupal site of one simulator instance: its corpus and search index, its role
 * table, its registry of JSON-RPC methods, the switches for behaviour that is only assumed of
 * the real site, and the little mutable state methods change (maintenance mode).
 *
 * @since 0.1.0
 */
import { contentMethods } from "./ContentMethods.js"
import { coreMethods } from "./CoreMethods.js"
import { makeCorpus } from "./Corpus.js"
import { makeRegistry, type Site, type Switches } from "./Methods.js"
import { makeSearchIndex } from "./Search.js"
import { makeRoleTable } from "./Users.js"

// `Site` and `Switches` live beside the method registry: a site holds its registry, and every
// method runs against its site.
export { MODULE_VERSIONS, type ModuleVersion, type Site, type Switches } from "./Methods.js"

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
