/**
 * The errors the gateway answers clients with. Every one has the same JSON body,
 * `{ "error": { "code": "<stable code>", "message": "<human text>" } }`, and its own HTTP
 * status; clients switch on `code`, which never changes meaning. One class per status (so the
 * `HttpApi` encoder can tell them apart), created through {@link apiError}.
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"
import type { ClientError } from "../drupal/DrupalError.js"

/** The body of every error. */
export const ErrorBody = Schema.Struct({
  code: Schema.String,
  message: Schema.String
})

const fields = { error: ErrorBody }

/** 400: the request is malformed or its arguments are invalid. */
export class BadRequest extends Schema.Class<BadRequest>("BadRequest")(fields, HttpApiSchema.annotations({ status: 400 })) {}
/** 401: the upstream requires (other) credentials. */
export class Unauthorized extends Schema.Class<Unauthorized>("Unauthorized")(fields, HttpApiSchema.annotations({ status: 401 })) {}
/** 403: the caller may not do or see this. */
export class Forbidden extends Schema.Class<Forbidden>("Forbidden")(fields, HttpApiSchema.annotations({ status: 403 })) {}
/** 404: unknown item, method or route. */
export class NotFound extends Schema.Class<NotFound>("NotFound")(fields, HttpApiSchema.annotations({ status: 404 })) {}
/** 413: the request body is larger than allowed. */
export class PayloadTooLarge extends Schema.Class<PayloadTooLarge>("PayloadTooLarge")(fields, HttpApiSchema.annotations({ status: 413 })) {}
/** 500: a bug in the gateway; details are in its log, under the request id. */
export class InternalError extends Schema.Class<InternalError>("InternalError")(fields, HttpApiSchema.annotations({ status: 500 })) {}
/** 502: the upstream answered something unusable. */
export class BadUpstreamReply extends Schema.Class<BadUpstreamReply>("BadUpstreamReply")(fields, HttpApiSchema.annotations({ status: 502 })) {}
/** 503: the upstream is unavailable (circuit open, overloaded). */
export class UpstreamUnavailable extends Schema.Class<UpstreamUnavailable>("UpstreamUnavailable")(fields, HttpApiSchema.annotations({ status: 503 })) {}
/** 504: the upstream did not answer in time. */
export class UpstreamTimeout extends Schema.Class<UpstreamTimeout>("UpstreamTimeout")(fields, HttpApiSchema.annotations({ status: 504 })) {}

/** Every error class, for `HttpApi.addError`. */
export const allErrors = [
  BadRequest,
  Unauthorized,
  Forbidden,
  NotFound,
  PayloadTooLarge,
  InternalError,
  BadUpstreamReply,
  UpstreamUnavailable,
  UpstreamTimeout
] as const

/** Any of the gateway's client errors. */
export type ApiError = InstanceType<(typeof allErrors)[number]>

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
  new byStatus[status]({ error: { code, message } })

/** The error for a mapped upstream failure (see `toClientError`). */
export const fromClientError = (error: ClientError): ApiError => apiError(error.status, error.code, error.message)

/** The JSON body of an error, for responses written outside `HttpApi` (raw routes, fast path). */
export const errorJson = (code: string, message: string): string => JSON.stringify({ error: { code, message } })
