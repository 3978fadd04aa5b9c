// Vite config for the admin app. Built into renderer/dist and served by the admin plane
// (gateway/server/static.ts). `npm run build:renderer` from the repository root.
//
// Development: `npx vite --config renderer/vite.config.ts` serves the app with hot reload and
// proxies /admin/api to a running gateway (AIRLOCK_DEV_ADMIN, default http://127.0.0.1:4001).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const adminTarget = process.env.AIRLOCK_DEV_ADMIN ?? 'http://127.0.0.1:4001';

export default defineConfig({
  root: here,
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // No inline scripts (CSP script-src 'self'): the preload polyfill would be bundled anyway,
    // every browser we support has modulepreload.
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    fs: { allow: [repoRoot] },
    proxy: {
      '/admin/api': {
        target: adminTarget,
        changeOrigin: true,
        // the admin plane checks Origin on writes: present the proxied origin
        headers: { origin: adminTarget },
      },
    },
  },
});
