/**
 * Values the global setup (`test/support/globalSetup.ts`) provides to every spec through
 * vitest's `inject`, e.g. `inject("redisUrl")`.
 */
declare module "vitest" {
  export interface ProvidedContext {
    /** `redis://127.0.0.1:<port>` of the shared redis-server. */
    readonly redisUrl: string
    /** `postgres://postgres@127.0.0.1:<port>/accelerator` of the shared PostgreSQL. */
    readonly databaseUrl: string
    /** redis-server version in use, e.g. `7.0.15`. */
    readonly redisVersion: string
    /** PostgreSQL version in use, e.g. `15.18`. */
    readonly postgresVersion: string
  }
}

export {}
