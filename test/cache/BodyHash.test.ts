/**
 * The body hash (the ETag): computed once per body, in steps for large bodies, shared by
 * concurrent askers, and taken as given from an envelope.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import cryptoModule, { createHash } from "node:crypto"
import { syncBuiltinESMExports } from "node:module"
import { vi } from "vitest"
import * as BodyHash from "../../src/cache/BodyHash.js"

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("base64url").slice(0, BodyHash.HASH_LENGTH)

describe("BodyHash", () => {
  it.effect("concurrent prepares of one large body (a load's answer and its remote write) hash it once", () =>
    Effect.gen(function*() {
      const body = new Uint8Array(BodyHash.HASH_STEP_BYTES * 4 + 5).map((_, i) => (i * 7) % 255)
      const expected = sha(body)
      const spy = vi.spyOn(cryptoModule, "createHash")
      syncBuiltinESMExports()
      try {
        yield* Effect.all([BodyHash.prepare(body), BodyHash.prepare(body), BodyHash.prepare(body)], { concurrency: "unbounded" })
        assert.strictEqual(spy.mock.calls.length, 1)
        // Done: later prepares and hashOf take the kept hash.
        yield* BodyHash.prepare(body)
        assert.strictEqual(BodyHash.hashOf(body), expected)
        assert.strictEqual(spy.mock.calls.length, 1)
      } finally {
        spy.mockRestore()
        syncBuiltinESMExports()
      }
    }))

  it("remember keeps a hash of the right shape only, and never replaces a kept one", () => {
    const body = new Uint8Array([1, 2, 3])
    BodyHash.remember(body, "not a hash")
    assert.isUndefined(BodyHash.known(body))
    BodyHash.remember(body, "A".repeat(27))
    assert.strictEqual(BodyHash.known(body), "A".repeat(27))
    BodyHash.remember(body, "B".repeat(27))
    assert.strictEqual(BodyHash.known(body), "A".repeat(27))
  })
})
