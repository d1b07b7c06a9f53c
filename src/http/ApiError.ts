/**
 * The errors the gateway answers clients with. Every one has the same JSON body,
 * `{ "error": { "code": "<stable code>", "message": "<human text>" } }`, and its own HTTP
 * status; clients switch on `code`, which never changes meaning.
 *
 * In the program each is a `Schema.TaggedError` (one class per status, so the `HttpApi` encoder
 * tells them apart by `_tag`); on the wire each is the plain body above, through a transform
 * that carries the status annotation. Create them with {@link apiError}.
 *
 * @since 0.1.0
 */
import { type HttpApi, type HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"
import type { ClientError } from "./ClientError.js"

/** The body of every error. */
export const ErrorBody = Schema.Struct({
  code: Schema.String,
  message: Schema.String
})

const fields = { code: Schema.String, message: Schema.String }

/** 400: the request is malformed or its arguments are invalid. */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", fields) {}
/** 401: the upstream requires (other) credentials. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", fields) {}
/** 403: the caller may not do or see this. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", fields) {}
/** 404: unknown item, method or route. */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", fields) {}
/** 413: the request body is larger than allowed. */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", fields) {}
/** 500: a bug in the gateway; details are in its log. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", fields) {}
/** 502: the upstream answered something unusable. */
export class BadUpstreamReply extends Schema.TaggedError<BadUpstreamReply>()("BadUpstreamReply", fields) {}
/** 503: the upstream is unavailable (circuit open, overloaded). */
export class UpstreamUnavailable extends Schema.TaggedError<UpstreamUnavailable>()("UpstreamUnavailable", fields) {}
/** 504: the upstream did not answer in time. */
export class UpstreamTimeout extends Schema.TaggedError<UpstreamTimeout>()("UpstreamTimeout", fields) {}

type ErrorClass = typeof BadRequest | typeof Unauthorized | typeof Forbidden | typeof NotFound | typeof PayloadTooLarge | typeof InternalError | typeof BadUpstreamReply | typeof UpstreamUnavailable | typeof UpstreamTimeout

/** The wire schema of an error class: the plain body, with the status annotation. */
const wire = <C extends ErrorClass>(cls: C, status: number) =>
  Schema.transform(Schema.Struct({ error: ErrorBody }), Schema.typeSchema(cls as unknown as Schema.Schema<InstanceType<C>>), {
    strict: true,
    decode: ({ error }) => new cls(error) as InstanceType<C>,
    encode: (e) => ({ error: { code: e.code, message: e.message } })
  }).annotations(HttpApiSchema.annotations({ status }))

/** Every error's wire schema, for `HttpApi.addError`. */
export const wireErrors = [
  wire(BadRequest, 400),
  wire(Unauthorized, 401),
  wire(Forbidden, 403),
  wire(NotFound, 404),
  wire(PayloadTooLarge, 413),
  wire(InternalError, 500),
  wire(BadUpstreamReply, 502),
  wire(UpstreamUnavailable, 503),
  wire(UpstreamTimeout, 504)
] as const

/** `api` declaring every one of the gateway's errors (any endpoint may answer any of them). */
export const withGatewayErrors = <Id extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R>(
  api: HttpApi.HttpApi<Id, Groups, E, R>
) =>
  api
    .addError(wireErrors[0])
    .addError(wireErrors[1])
    .addError(wireErrors[2])
    .addError(wireErrors[3])
    .addError(wireErrors[4])
    .addError(wireErrors[5])
    .addError(wireErrors[6])
    .addError(wireErrors[7])
    .addError(wireErrors[8])

/** Any of the gateway's client errors. */
export type ApiError = InstanceType<ErrorClass>

const byStatus = {
  400: BadRequest,
  401: Unauthorized,
  403: Forbidden,
  404: NotFound,
  413: PayloadTooLarge,
  500: InternalError,
  502: BadUpstreamReply,
  503: UpstreamUnavailable,
  504: UpstreamTimeout
} as const

/** The status codes the gateway answers errors with. */
export type ErrorStatus = keyof typeof byStatus

/** The error for a status, code and message. */
export const apiError = (status: ErrorStatus, code: string, message: string): ApiError =>
  new byStatus[status]({ code, message })

/** The error for a mapped upstream failure (see `toClientError`). */
export const fromClientError = (error: ClientError): ApiError => apiError(error.status, error.code, error.message)

/** The JSON body of an error, for responses written outside `HttpApi` (raw routes, fast path). */
export const errorJson = (code: string, message: string): string => JSON.stringify({ error: { code, message } })
