/**
 * A caller's credentials as the gateway carries them to Drupal: the `Authorization` header,
 * kept redacted, and a one-way fingerprint of it. The fingerprint, never the token, is what may
 * appear in batch grouping, cache keys, logs and metrics.
 *
 * @since 0.1.0
 */
import { Option, Redacted } from "effect"
import { createHash } from "node:crypto"

/** The credentials of one caller. */
export interface Credentials {
  /** The header to send upstream, or none for an anonymous caller. */
  readonly authorization: Option.Option<Redacted.Redacted<string>>
  /** `"anonymous"`, or `"t:" + sha256(header)` truncated to 128 bits (hex). */
  readonly fingerprint: string
}

/** The anonymous caller. */
export const anonymous: Credentials = { authorization: Option.none(), fingerprint: "anonymous" }

/** Longest `Authorization` header accepted; longer ones are refused before hashing. */
export const MAX_AUTHORIZATION_LENGTH = 8192

/** sha256 of a secret, hex, truncated to 128 bits: enough to tell callers apart, useless to an attacker. */
export const hashSecret = (secret: string): string => createHash("sha256").update(secret).digest("hex").slice(0, 32)

/**
 * Credentials from an incoming `Authorization` header value. A missing or blank header is the
 * anonymous caller. The header is passed upstream as is (Bearer or Basic); Drupal decides.
 */
export const fromAuthorizationHeader = (header: string | undefined): Credentials => {
  const value = header?.trim()
  if (value === undefined || value.length === 0) return anonymous
  return { authorization: Option.some(Redacted.make(value)), fingerprint: `t:${hashSecret(value)}` }
}

/** Credentials for a bearer token (library callers and tests). */
export const bearer = (token: string): Credentials => fromAuthorizationHeader(`Bearer ${token}`)
