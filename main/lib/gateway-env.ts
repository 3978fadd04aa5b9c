// The environment the desktop shell starts the gateway with (main.ts, utilityProcess.fork): the
// shell's own, the data dir, the admin-origin proof key (lib/admin-proof.ts), and
// MALLOC_ARENA_MAX=1 unless the environment already sets it — as the server bundle's launcher
// does (gateway/ops/package-server.ts). On glibc (Linux) each thread that allocates gets its own
// malloc arena, and the gateway's threads (the writer thread, V8's helpers, libuv's pool) keep
// ~10 MB resident in theirs after start-up; one arena for all keeps the idle gateway ~10 MB
// smaller at the same throughput (bench/RESULTS.md). Elsewhere the variable means nothing.
export const MALLOC_ARENA_MAX_DEFAULT = '1';

export function gatewayEnv(base: NodeJS.ProcessEnv, dataDir: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...base, MALLOC_ARENA_MAX: base.MALLOC_ARENA_MAX ?? MALLOC_ARENA_MAX_DEFAULT, AIRLOCK_DATA_DIR: dataDir, ...extra };
}
