/**
 * Runs in every vitest worker (`setupFiles`). When the main vitest process dies without ending
 * its fork workers (SIGKILL, or a SIGINT/SIGTERM sent to it alone, after which it exits at once),
 * the workers' IPC channel closes and they would run on as orphans, busy. This makes such a
 * worker end itself on `disconnect`. Servers the worker started are killed first by the
 * `disconnect` listener that `services.ts` prepends, and in any case by their watchdogs.
 */
const guard = Symbol.for("drupal-accelerator/orphan-guard")
const worker = process as NodeJS.Process & { [guard]?: true }

if (worker.channel !== undefined && worker[guard] === undefined) {
  worker[guard] = true
  process.once("disconnect", () => process.kill(process.pid, "SIGKILL"))
}
