/**
 * The one parser of request values, shared by the handlers and the memory-hit path, so both
 * accept and refuse exactly the same requests (and the hit path can never answer a request the
 * handlers would refuse): content ids, the content options, the search question's fields.
 *
 * @since 0.1.0
 */
import { Either } from "effect"
import type { SearchInput } from "../content/SearchQuery.js"

/** A request value the handler refused (a path or query parameter). */
export class BadInput {
  readonly _tag = "BadInput"
  constructor(readonly field: string, readonly message: string) {}
}

/** A content id from the path: a positive whole number, at most 16 digits and a safe integer. */
export const parseId = (raw: string): Either.Either<number, BadInput> =>
  /^[1-9]\d{0,15}$/.test(raw) && Number.isSafeInteger(Number(raw))
    ? Either.right(Number(raw))
    : Either.left(new BadInput("id", "id must be a positive whole number"))

/** A boolean query value: absent or empty → `fallback`; `true`/`1`, `false`/`0`; anything else is refused. */
export const parseBoolean = (field: string, raw: string | undefined, fallback: boolean): Either.Either<boolean, BadInput> => {
  if (raw === undefined || raw === "") return Either.right(fallback)
  if (raw === "true" || raw === "1") return Either.right(true)
  if (raw === "false" || raw === "0") return Either.right(false)
  return Either.left(new BadInput(field, `${field} must be true or false`))
}

/** The `format` of a content item: absent, empty or `html` → `html`; `markdown`; anything else is refused. */
export const parseFormat = (raw: string | undefined): Either.Either<"html" | "markdown", BadInput> =>
  raw === undefined || raw === "" || raw === "html" || raw === "markdown"
    ? Either.right(raw === "markdown" ? "markdown" : "html")
    : Either.left(new BadInput("format", "format must be html or markdown"))

/** The options of `GET /content/:id` (`include_content`, `format`). */
export const parseContentOptions = (
  params: { readonly include_content?: string | undefined; readonly format?: string | undefined }
): Either.Either<{ readonly includeContent: boolean; readonly format: "html" | "markdown" }, BadInput> =>
  Either.flatMap(parseBoolean("include_content", params.include_content, true), (includeContent) =>
    Either.map(parseFormat(params.format), (format) => ({ includeContent, format })))

/** Query parameters that may be given more than once (lists); every other one at most once. */
export const LIST_PARAMS: ReadonlySet<string> = new Set(["tags"])

/**
 * Whether a query string repeats a parameter that is not a list: the one rule for repeated
 * parameters. The app answers such a request 400 `bad_request` (its schema takes one value);
 * the hit path never serves it, so the two cannot disagree.
 */
export const repeatsSingleParam = (params: URLSearchParams): boolean => {
  const seen = new Set<string>()
  for (const key of params.keys()) {
    if (LIST_PARAMS.has(key)) continue
    if (seen.has(key)) return true
    seen.add(key)
  }
  return false
}

/** The search question's fields from a query string, as the `search` route declares them (`tags` may repeat). */
export const searchInputOf = (params: URLSearchParams): SearchInput => {
  const tags = params.getAll("tags")
  return {
    q: params.get("q") ?? undefined,
    drupal_version: params.get("drupal_version") ?? undefined,
    tags: tags.length === 0 ? undefined : tags.length === 1 ? tags[0] : tags,
    content_type: params.get("content_type") ?? undefined,
    access_level: params.get("access_level") ?? undefined,
    sort: params.get("sort") ?? undefined,
    limit: params.get("limit") ?? undefined,
    offset: params.get("offset") ?? undefined
  }
}
