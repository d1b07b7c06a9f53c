import { defineConfig } from "vitest/config"
import { SummaryLineReporter } from "./test/support/SummaryLineReporter.js"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One shared redis-server and PostgreSQL for the run; specs read them with inject(...).
    globalSetup: ["./test/support/globalSetup.ts"],
    // Workers end themselves if the main process dies without ending them.
    setupFiles: ["./test/support/workerSetup.ts"],
    // Specs talk to real servers (and some restart them): generous, but bounded.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    // 2 cores: child processes (not threads) so native handles and signals are isolated, at most 2.
    pool: "forks",
    poolOptions: { forks: { minForks: 1, maxForks: 2 } },
    reporters: ["default", new SummaryLineReporter()]
  }
})
