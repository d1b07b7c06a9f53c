/**
 * A caller's credentials as the gateway carries them to Drupal: the `Authorization` header,
 * kept redacted, and a keyed one-way fingerprint of it. The fingerprint, never the token, is what
 * may appear in batch grouping, cache keys, logs and metrics.
 *
 * The fingerprint is an HMAC-SHA-256 keyed with the deployment's `FINGERPRINT_SECRET` (see
 * `access/AccessScope.ts`, which builds the key and hands out credentials): without the key, a
 * fingerprint found in Redis or PostgreSQL cannot be checked against guessed tokens or passwords.
 * Code that builds credentials without the deployment key gets {@link processKey}, random per
 * process.
 *
 * @since 0.1.0
 */
import { Option, Redacted } from "effect"
import { createHmac, createSecretKey, type KeyObject, randomBytes } from "node:crypto"

/** The key of the fingerprint HMAC. */
export type FingerprintKey = KeyObject

/** The key from a secret (its UTF-8 bytes). */
export const fingerprintKey = (secret: string | Uint8Array): FingerprintKey =>
  createSecretKey(typeof secret === "string" ? Buffer.from(secret, "utf8") : secret)

/** A key drawn at random when the module loads: fingerprints that only this process can match. */
export const processKey: FingerprintKey = fingerprintKey(randomBytes(32))

/** The credentials of one caller. */
export interface Credentials {
  /** The header to send upstream, or none for an anonymous caller. */
  readonly authorization: Option.Option<Redacted.Redacted<string>>
  /** `"anonymous"`, or `"t:" + HMAC-SHA-256(key, header)` truncated to 128 bits (hex). */
  readonly fingerprint: string
}

/** The anonymous caller. */
export const anonymous: Credentials = { authorization: Option.none(), fingerprint: "anonymous" }

/** Longest `Authorization` header accepted; longer ones are refused before hashing. */
export const MAX_AUTHORIZATION_LENGTH = 8192

/** HMAC-SHA-256 of a secret under `key`, hex, truncated to 128 bits: tells callers apart, useless without the key. */
export const keyedHash = (key: FingerprintKey, secret: string): string =>
  createHmac("sha256", key).update(secret).digest("hex").slice(0, 32)

/**
 * Credentials from an incoming `Authorization` header value, fingerprinted under `key`. A missing
 * or blank header is the anonymous caller. The header is passed upstream as is (Bearer or Basic);
 * Drupal decides.
 */
export const fromAuthorizationHeader = (header: string | undefined, key: FingerprintKey = processKey): Credentials => {
  const value = header?.trim()
  if (value === undefined || value.length === 0) return anonymous
  return { authorization: Option.some(Redacted.make(value)), fingerprint: `t:${keyedHash(key, value)}` }
}

/** Credentials for a bearer token (library callers and tests). */
export const bearer = (token: string, key: FingerprintKey = processKey): Credentials =>
  fromAuthorizationHeader(`Bearer ${token}`, key)
