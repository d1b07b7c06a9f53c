/**
 * Where the Drupal JSON-RPC upstream is: the configured `DRUPAL_URL`, or the built-in
 * simulator when none is configured. Everything that talks to Drupal reads it from here.
 *
 * @since 0.1.0
 */
import { Context, Layer } from "effect"

/** The upstream's base URL (the API is at `url + "/jsonrpc"`) and where it came from. */
export interface DrupalEndpoint {
  readonly url: URL
  /** `true` when the upstream is the in-process simulator. */
  readonly embedded: boolean
}

/** Tag of the upstream location. */
export const DrupalEndpoint = Context.GenericTag<DrupalEndpoint>("accelerator/DrupalEndpoint")

/** A fixed endpoint. */
export const layer = (url: string | URL, embedded = false): Layer.Layer<DrupalEndpoint> =>
  Layer.succeed(DrupalEndpoint, { url: new URL(url), embedded })

/** `base + path` without doubling or losing the slash between them. */
export const endpointUrl = (base: URL, path: string): string =>
  base.href.replace(/\/+$/, "") + (path.startsWith("/") ? path : `/${path}`)
