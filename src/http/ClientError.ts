/**
 * From an upstream failure to what the gateway answers a client: the stable JSON error `code`
 * and the HTTP status ({@link toClientError}). The Drupal errors stay inside the gateway; this is
 * the one table that turns them into client errors.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"
import type { InvalidArguments } from "../discovery/ArgumentValidator.js"
import { type DrupalError, excerpt, JsonRpcCode } from "../drupal/DrupalError.js"

/** The stable `code` of the gateway's JSON error body. Clients switch on it; never rename one. */
export type ClientErrorCode =
  | "bad_request"
  | "invalid_params"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_found"
  | "bad_upstream_reply"
  | "upstream_unavailable"
  | "upstream_busy"
  | "upstream_timeout"

/** What the gateway answers a client for an error: status, stable code and a safe message. */
export interface ClientError {
  readonly status: 400 | 401 | 403 | 404 | 502 | 503 | 504
  readonly code: ClientErrorCode
  /** Human message; carries upstream text only where the client can act on it (bad params). */
  readonly message: string
  /** Whole seconds for a `Retry-After` header (503 from an open circuit or a busy pool only). */
  readonly retryAfterSeconds?: number
}

const rpcDetail = (rpc: { readonly message: string; readonly data?: unknown }): string =>
  typeof rpc.data === "string" && rpc.data.length > 0 ? excerpt(rpc.data) : rpc.message

const fromRpc = (rpc: { readonly code: number; readonly message: string; readonly data?: unknown }): ClientError => {
  switch (rpc.code) {
    case JsonRpcCode.InvalidParams:
      return { status: 400, code: "invalid_params", message: rpcDetail(rpc) }
    case JsonRpcCode.MethodNotFound:
      return { status: 404, code: "method_not_found", message: rpcDetail(rpc) }
    case JsonRpcCode.InvalidRequest:
      return typeof rpc.data === "string" && /access denied/i.test(rpc.data)
        ? { status: 403, code: "forbidden", message: "Access Denied" }
        : { status: 400, code: "bad_request", message: rpcDetail(rpc) }
    case JsonRpcCode.ParseError:
      return { status: 400, code: "bad_request", message: rpc.message }
    default:
      return { status: 502, code: "bad_upstream_reply", message: "The upstream method failed" }
  }
}

/**
 * Maps an error to the gateway's JSON error (one function, one table; the `message` never
 * contains an upstream body, only a JSON-RPC `data` string where it tells the client what to fix):
 *
 * | error | status | code |
 * | --- | --- | --- |
 * | `InvalidArguments` (gateway-side validation) | 400 | `invalid_params` |
 * | HTTP 400 / per-item error with -32602 | 400 | `invalid_params` |
 * | HTTP 400 / per-item error with -32600 (not access denied), -32700, or no JSON-RPC object | 400 | `bad_request` |
 * | HTTP 401 | 401 | `unauthorized` |
 * | HTTP 403; per-item -32600 with data `Access Denied` | 403 | `forbidden` |
 * | HTTP 404 | 404 | `not_found` |
 * | HTTP 400 / per-item error with -32601 | 404 | `method_not_found` |
 * | per-item -32603 and other codes; HTTP 5xx other than 503/504; other statuses; `DrupalDecodeError`; `DrupalTransportError` | 502 | `bad_upstream_reply` |
 * | HTTP 503, HTTP 429 | 503 | `upstream_unavailable` |
 * | `CircuitOpenError` | 503 | `upstream_unavailable` (+ `retryAfterSeconds`, rounded up, ≥ 1) |
 * | `DrupalTimeoutError` waiting for a free connection (phase `pool`) | 503 | `upstream_busy` (+ `retryAfterSeconds` 1) |
 * | `DrupalTimeoutError`; HTTP 504 | 504 | `upstream_timeout` |
 *
 * Pure and total.
 */
export const toClientError = (error: DrupalError | InvalidArguments): ClientError => {
  switch (error._tag) {
    case "InvalidArguments":
      return { status: 400, code: "invalid_params", message: error.message }
    case "DrupalHttpError": {
      switch (error.status) {
        case 400:
          return error.rpcError === undefined
            ? { status: 400, code: "bad_request", message: "The upstream rejected the request" }
            : fromRpc(error.rpcError)
        case 401:
          return { status: 401, code: "unauthorized", message: "The upstream requires authentication" }
        case 403:
          return { status: 403, code: "forbidden", message: "The upstream refused access" }
        case 404:
          return { status: 404, code: "not_found", message: "Not found upstream" }
        case 429:
        case 503:
          return { status: 503, code: "upstream_unavailable", message: "The upstream is unavailable" }
        case 504:
          return { status: 504, code: "upstream_timeout", message: "The upstream timed out" }
        default:
          return { status: 502, code: "bad_upstream_reply", message: `The upstream answered HTTP ${error.status}` }
      }
    }
    case "DrupalRpcError":
      return fromRpc(error)
    case "DrupalTransportError":
      return { status: 502, code: "bad_upstream_reply", message: "The upstream could not be reached" }
    case "DrupalDecodeError":
      return { status: 502, code: "bad_upstream_reply", message: "The upstream sent an unexpected reply" }
    case "DrupalTimeoutError":
      return error.phase === "pool"
        ? { status: 503, code: "upstream_busy", message: "Every upstream connection for this kind of call is busy", retryAfterSeconds: 1 }
        : { status: 504, code: "upstream_timeout", message: "The upstream timed out" }
    case "CircuitOpenError":
      return {
        status: 503,
        code: "upstream_unavailable",
        message: "The upstream is unavailable",
        retryAfterSeconds: Math.max(1, Math.ceil(Duration.toMillis(error.retryAfter) / 1000))
      }
  }
}
