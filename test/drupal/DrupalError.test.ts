import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { InvalidArguments } from "../../src/discovery/ArgumentValidator.js"
import {
  BODY_EXCERPT_MAX,
  CircuitOpenError,
  DrupalDecodeError,
  type DrupalError,
  DrupalHttpError,
  DrupalRpcError,
  DrupalTimeoutError,
  DrupalTransportError,
  excerpt,
  isBackendFailure,
  isDrupalError,
  isRefusal,
  isTransient,
  isTransientUnknown,
  transportReason
} from "../../src/drupal/DrupalError.js"
import { toClientError } from "../../src/http/ClientError.js"

const rpc = (code: number, data: unknown, message = "Error", id: string | number | null = 1) =>
  new DrupalRpcError({ code, message, data, method: "content.search", id })

const parseStage = (code: number, message: string, data: unknown) =>
  new DrupalHttpError({
    status: 400,
    bodyExcerpt: JSON.stringify({ jsonrpc: "2.0", id: 7, error: { code, message, data } }),
    rpcError: { code, message, data },
    id: 7,
    method: "content.search"
  })

describe("DrupalError: the upstream's error table", () => {
  // One case per row of the table in drupal-jsonrpc.md, plus the retry-rule rows below it.
  const rows: ReadonlyArray<{
    readonly situation: string
    readonly error: DrupalError
    readonly transient: boolean
    readonly status: number
    readonly code: string
  }> = [
    {
      situation: "unknown method (parse stage, HTTP 400, whole batch)",
      error: parseStage(-32601, "Method Not Found", "The method 'x' does not exist/is not available."),
      transient: false,
      status: 404,
      code: "method_not_found"
    },
    {
      situation: "missing or invalid param (parse stage, HTTP 400)",
      error: parseStage(-32602, "Invalid Params", "Missing required parameter: query"),
      transient: false,
      status: 400,
      code: "invalid_params"
    },
    {
      situation: "batch item without jsonrpc (HTTP 400)",
      error: parseStage(-32600, "Invalid Request", "The request is missing the 'jsonrpc' member."),
      transient: false,
      status: 400,
      code: "bad_request"
    },
    {
      situation: "user lacks the method's permission (per item, HTTP 200, id null)",
      error: rpc(-32600, "Access Denied: The 'administer site configuration' permission is required.", "Invalid Request", null),
      transient: false,
      status: 403,
      code: "forbidden"
    },
    {
      situation: "the method raises a JSON-RPC error itself (per item, id null), even -32603",
      error: rpc(-32603, "SQLSTATE[HY000] [2002] Connection refused", "Internal Error", null),
      transient: false,
      status: 502,
      code: "bad_upstream_reply"
    },
    {
      situation: "exception inside the method (per item, the request's id): a bug cannot be told from an outage",
      error: rpc(-32603, "Call to a member function getTitle() on null", "Internal Error"),
      transient: true,
      status: 502,
      code: "bad_upstream_reply"
    },
    {
      situation: "exception inside the method (per item): the database it needs is down",
      error: rpc(-32603, "SQLSTATE[HY000] [2002] Connection refused", "Internal Error"),
      transient: true,
      status: 502,
      code: "bad_upstream_reply"
    },
    {
      situation: "malformed JSON answered by a generic HTTP 500 page (2.x)",
      error: new DrupalHttpError({ status: 500, bodyExcerpt: "<html><h1>The website encountered an unexpected error.</h1>" }),
      transient: true,
      status: 502,
      code: "bad_upstream_reply"
    },
    {
      situation: "malformed JSON answered by -32700 at 400 (3.x)",
      error: parseStage(-32700, "Parse Error", "Syntax error"),
      transient: false,
      status: 400,
      code: "bad_request"
    },
    {
      situation: "no route permission: non-JSON-RPC 401 page",
      error: new DrupalHttpError({ status: 401, bodyExcerpt: "<html>Unauthorized</html>" }),
      transient: false,
      status: 401,
      code: "unauthorized"
    },
    {
      situation: "no route permission: non-JSON-RPC 403 page",
      error: new DrupalHttpError({ status: 403, bodyExcerpt: "<html>Access denied</html>" }),
      transient: false,
      status: 403,
      code: "forbidden"
    },
    {
      situation: "unknown discovery method: 404",
      error: new DrupalHttpError({ status: 404, bodyExcerpt: "Not Found", method: "discovery" }),
      transient: false,
      status: 404,
      code: "not_found"
    },
    {
      situation: "502 from a proxy",
      error: new DrupalHttpError({ status: 502, bodyExcerpt: "Bad Gateway" }),
      transient: true,
      status: 502,
      code: "bad_upstream_reply"
    },
    {
      situation: "503",
      error: new DrupalHttpError({ status: 503, bodyExcerpt: "Service Unavailable" }),
      transient: true,
      status: 503,
      code: "upstream_unavailable"
    },
    {
      situation: "504 from a proxy",
      error: new DrupalHttpError({ status: 504, bodyExcerpt: "Gateway Timeout" }),
      transient: true,
      status: 504,
      code: "upstream_timeout"
    },
    {
      situation: "another 5xx (507)",
      error: new DrupalHttpError({ status: 507, bodyExcerpt: "" }),
      transient: true,
      status: 502,
      code: "bad_upstream_reply"
    },
    {
      situation: "429: not in the retry rules, so not retried",
      error: new DrupalHttpError({ status: 429, bodyExcerpt: "" }),
      transient: false,
      status: 503,
      code: "upstream_unavailable"
    },
    {
      situation: "connection refused",
      error: new DrupalTransportError({ reason: "connection_refused", cause: new Error("connect ECONNREFUSED") }),
      transient: true,
      status: 502,
      code: "bad_upstream_reply"
    },
    {
      situation: "connection reset",
      error: new DrupalTransportError({ reason: "connection_reset", cause: null }),
      transient: true,
      status: 502,
      code: "bad_upstream_reply"
    },
    {
      situation: "DNS failure",
      error: new DrupalTransportError({ reason: "dns", cause: null }),
      transient: true,
      status: 502,
      code: "bad_upstream_reply"
    },
    {
      situation: "connect timeout",
      error: new DrupalTimeoutError({ phase: "connect", timeout: Duration.seconds(2) }),
      transient: true,
      status: 504,
      code: "upstream_timeout"
    },
    {
      situation: "headers timeout",
      error: new DrupalTimeoutError({ phase: "headers", timeout: Duration.seconds(10) }),
      transient: true,
      status: 504,
      code: "upstream_timeout"
    },
    {
      situation: "call timeout",
      error: new DrupalTimeoutError({ phase: "call", timeout: Duration.seconds(30), method: "content.search" }),
      transient: true,
      status: 504,
      code: "upstream_timeout"
    },
    {
      situation: "reply that is not JSON-RPC",
      error: new DrupalDecodeError({ reason: "invalid_envelope", detail: "no jsonrpc member" }),
      transient: false,
      status: 502,
      code: "bad_upstream_reply"
    },
    {
      situation: "circuit open",
      error: new CircuitOpenError({ upstream: "drupal", retryAfter: Duration.millis(1500) }),
      transient: false,
      status: 503,
      code: "upstream_unavailable"
    }
  ]

  for (const row of rows) {
    it(`${row.situation}: transient=${row.transient}, ${row.status} ${row.code}`, () => {
      assert.strictEqual(isTransient(row.error), row.transient)
      assert.strictEqual(isTransientUnknown(row.error), row.transient)
      const client = toClientError(row.error)
      assert.strictEqual(client.status, row.status)
      assert.strictEqual(client.code, row.code)
    })
  }

  it("a parse-stage 400 is never transient, whatever its JSON-RPC object says", () => {
    const backendWords = parseStage(-32603, "Internal Error", "SQLSTATE[HY000] [2002] Connection refused")
    assert.isFalse(isTransient(backendWords))
    assert.isFalse(isTransient(new DrupalHttpError({ status: 400, bodyExcerpt: "bad" })))
  })

  it("per-item errors other than a backend -32603 are not transient", () => {
    assert.isFalse(isTransient(rpc(-32602, "Missing required parameter: query")))
    assert.isFalse(isTransient(rpc(-32601, "The method 'x' does not exist/is not available.")))
    assert.isFalse(isTransient(rpc(-32000, "SQLSTATE[HY000] [2002] Connection refused")))
    assert.isFalse(isTransient(rpc(1, { retryable: true })))
    assert.isFalse(isTransient(rpc(-32602, "The requested entity could not be found.", "Invalid Params", null)))
  })

  it("refusals (the cache never serves stale over them): 401/403/404, access denied, a gone method, a not-found", () => {
    for (const status of [401, 403, 404]) assert.isTrue(isRefusal(new DrupalHttpError({ status, bodyExcerpt: "<html>" })))
    assert.isTrue(isRefusal(rpc(-32600, "Access Denied: The 'access subscriber content' permission is required.", "Invalid Request", null)))
    assert.isTrue(isRefusal(rpc(-32601, "The method 'x' does not exist/is not available.")))
    assert.isTrue(isRefusal(rpc(-32602, "The requested entity could not be found.", "Invalid Params", null)))
    assert.isTrue(isRefusal(parseStage(-32601, "Method Not Found", "The method 'x' does not exist/is not available.")))
    // Transient and other failures are not refusals: a stale copy may stand in for them.
    assert.isFalse(isRefusal(new DrupalHttpError({ status: 503, bodyExcerpt: "busy" })))
    assert.isFalse(isRefusal(new DrupalHttpError({ status: 500, bodyExcerpt: "<html>" })))
    assert.isFalse(isRefusal(rpc(-32603, "anything at all")))
    assert.isFalse(isRefusal(rpc(-32602, "Missing required parameter: query")))
    assert.isFalse(isRefusal(new DrupalTimeoutError({ phase: "call", timeout: Duration.seconds(1), method: "content.search" })))
    assert.isFalse(isRefusal("not an error"))
  })

  it("a -32603 with the request's id is transient unless its structured data says otherwise", () => {
    assert.isTrue(isTransient(rpc(-32603, "anything at all")))
    assert.isTrue(isTransient(rpc(-32603, { retryable: true })))
    assert.isFalse(isTransient(rpc(-32603, { retryable: false, message: "SQLSTATE[HY000] [2002] Connection refused" })))
    assert.isFalse(isTransient(rpc(-32603, { transient: false })))
  })
})

describe("DrupalError: backend failure detection for -32603", () => {
  const backend = [
    "SQLSTATE[HY000] [2002] Connection refused",
    "SQLSTATE[HY000] [2006] MySQL server has gone away",
    "SQLSTATE[08006] [7] could not connect to server",
    "SQLSTATE[40001]: Serialization failure: 1213 Deadlock found when trying to get lock",
    "cURL error 28: Operation timed out after 5000 milliseconds",
    "cURL error 7: Failed to connect to solr port 8983: Connection refused",
    "Solr HTTP error: HTTP request failed, Connection refused (0)",
    "Server error: `GET http://search/api` resulted in a `503 Service Unavailable` response",
    "Search backend unavailable",
    "The content service is down",
    "Backend failure: the search_api_solr backend did not respond (simulated fault)."
  ]
  const notBackend = [
    "Call to a member function getTitle() on null",
    "Division by zero",
    "The entity could not be found",
    "Undefined array key \"results\"",
    "",
    "SQLSTATE[42S02]: Base table or view not found"
  ]
  // The retry rule does not read the wording: transient with the request's id, never with id null.
  for (const data of backend) {
    it(`backend: ${data}`, () => {
      assert.isTrue(isBackendFailure(data))
      assert.isTrue(isTransient(rpc(-32603, data)))
      assert.isFalse(isTransient(rpc(-32603, data, "Internal Error", null)))
    })
  }
  for (const data of notBackend) {
    it(`not backend: ${JSON.stringify(data)}`, () => {
      assert.isFalse(isBackendFailure(data))
      assert.isTrue(isTransient(rpc(-32603, data)))
      assert.isFalse(isTransient(rpc(-32603, data, "Internal Error", null)))
    })
  }

  it("structured data decides by its flag, and falls back to its message", () => {
    assert.isTrue(isBackendFailure({ retryable: true, message: "anything" }))
    assert.isFalse(isBackendFailure({ retryable: false, message: "SQLSTATE[HY000] [2002] Connection refused" }))
    assert.isTrue(isBackendFailure({ transient: true }))
    assert.isTrue(isBackendFailure({ message: "cURL error 7: Failed to connect" }))
    assert.isFalse(isBackendFailure({ message: "nope" }))
    assert.isFalse(isBackendFailure(null))
    assert.isFalse(isBackendFailure(42))
    assert.isFalse(isBackendFailure(["Connection refused"]))
  })
})

describe("DrupalError: client mapping details", () => {
  it("invalid params carry the upstream's data text; internal errors do not leak it", () => {
    assert.strictEqual(
      toClientError(parseStage(-32602, "Invalid Params", "Missing required parameter: query")).message,
      "Missing required parameter: query"
    )
    const internal = toClientError(rpc(-32603, "SQLSTATE[HY000] secret host db-7.internal"))
    assert.notInclude(internal.message, "db-7")
  })

  it("circuit open gives a Retry-After in whole seconds, at least 1", () => {
    assert.strictEqual(
      toClientError(new CircuitOpenError({ upstream: "drupal", retryAfter: Duration.millis(1500) })).retryAfterSeconds,
      2
    )
    assert.strictEqual(
      toClientError(new CircuitOpenError({ upstream: "drupal", retryAfter: Duration.zero })).retryAfterSeconds,
      1
    )
    assert.isUndefined(toClientError(new DrupalHttpError({ status: 503, bodyExcerpt: "" })).retryAfterSeconds)
  })

  it("a 400 without a JSON-RPC object is bad_request", () => {
    const client = toClientError(new DrupalHttpError({ status: 400, bodyExcerpt: "<html>Bad Request</html>" }))
    assert.deepStrictEqual([client.status, client.code], [400, "bad_request"])
  })

  it("gateway-side InvalidArguments is 400 invalid_params with its message", () => {
    const error = new InvalidArguments({
      method: "content.search",
      issues: [{ path: "query", rule: "required", message: "query: is required" }],
      total: 1
    })
    assert.deepStrictEqual(toClientError(error), { status: 400, code: "invalid_params", message: "query: is required" })
  })
})

describe("DrupalError: bodies and causes", () => {
  it("the body excerpt is bounded and whitespace-collapsed", () => {
    const error = new DrupalHttpError({ status: 500, bodyExcerpt: `<html>\n\n  <body>${"x".repeat(100_000)}</body>` })
    assert.isAtMost(error.bodyExcerpt.length, BODY_EXCERPT_MAX)
    assert.isTrue(error.bodyExcerpt.startsWith("<html> <body>xxx"))
    assert.isTrue(error.bodyExcerpt.endsWith("…"))
    assert.strictEqual(excerpt(error.bodyExcerpt), error.bodyExcerpt)
  })

  it("the body excerpt never keeps a token", () => {
    const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"
    const body = [
      "Authorization: Bearer abcDEF123.secret-token_value",
      "access_token=s3cr3tvalue&x=1",
      `{"refresh_token":"r3fr3sh","password": "hunter2"}`,
      `token ${jwt}`,
      "Basic dXNlcjpwYXNz"
    ].join(" ")
    const text = new DrupalHttpError({ status: 401, bodyExcerpt: body }).bodyExcerpt
    for (const secret of ["abcDEF123", "s3cr3tvalue", "r3fr3sh", "hunter2", "eyJhbGci", "dXNlcjpwYXNz"]) {
      assert.notInclude(text, secret)
    }
    assert.include(text, "Bearer [redacted]")
    assert.include(text, "access_token=[redacted]")
  })

  it("transport reasons come from Node and undici codes, nested causes included", () => {
    const sys = (code: string) => Object.assign(new Error(code), { code })
    assert.strictEqual(transportReason(sys("ECONNREFUSED")), "connection_refused")
    assert.strictEqual(transportReason(sys("ECONNRESET")), "connection_reset")
    assert.strictEqual(transportReason(sys("ENOTFOUND")), "dns")
    assert.strictEqual(transportReason(sys("EAI_AGAIN")), "dns")
    assert.strictEqual(transportReason(sys("UND_ERR_SOCKET")), "socket_closed")
    assert.strictEqual(transportReason(sys("ERR_TLS_CERT_ALTNAME_INVALID")), "tls")
    assert.strictEqual(transportReason(new TypeError("fetch failed", { cause: sys("ECONNREFUSED") })), "connection_refused")
    assert.strictEqual(transportReason("weird"), "other")
    const error = DrupalTransportError.fromCause(sys("ECONNRESET"), "content.search")
    assert.strictEqual(error.reason, "connection_reset")
    assert.strictEqual(error.method, "content.search")
    assert.include(error.message, "connection_reset")
  })

  it("isDrupalError recognises the classes and nothing else", () => {
    assert.isTrue(isDrupalError(new DrupalDecodeError({ reason: "invalid_json", detail: "x" })))
    assert.isFalse(isDrupalError(new Error("x")))
    assert.isFalse(isDrupalError({ _tag: "Other" }))
    assert.isFalse(isDrupalError(null))
    assert.isFalse(isTransientUnknown(new Error("ECONNREFUSED")))
  })

  it.effect("the errors are yieldable and keep their tag", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(new DrupalTimeoutError({ phase: "headers", timeout: Duration.seconds(1) }))
      assert.strictEqual(error._tag, "DrupalTimeoutError")
      assert.strictEqual(error.message, "Drupal headers timeout after 1s")
    }))
})
