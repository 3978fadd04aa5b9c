// @ts-check
// ESLint (flat config): typescript-eslint's type-checked rules over every TypeScript project of
// the repository (tsconfig.json: gateway/, test/, bench/, main/lib/; main/tsconfig.json: the
// Electron shell; renderer/tsconfig.json: the admin app), and the import boundaries between its
// parts. `npm run lint`; `npm test` runs it first.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';

// ---- import boundaries (matched against the import specifier as written) ----

/** gateway/ is the server: it never reaches into the shell, the admin app, the tests or the benchmarks. */
const gatewayOutside = {
  regex: String.raw`^(\.\./)+(main|renderer|test|bench)/`,
  message: 'gateway/ must not import from main/, renderer/, test/ or bench/.',
};
/** The engine, the store and the schemas are below the HTTP servers: the servers use them, never the reverse. */
const belowServer = [
  {
    regex: String.raw`^\.{1,2}/(\.\./)*(gateway/)?(server/|cli(\.js)?$)`,
    message: 'gateway/engine, gateway/store and gateway/config must not import gateway/server or gateway/cli (the servers depend on them, not the reverse).',
  },
];
/** gateway/config/ is bundled into the admin app: zod and its own files only. */
const configOnly = [
  { regex: '^node:', message: 'gateway/config/ is bundled into the admin app: no Node modules.' },
  { regex: String.raw`^\.\./`, message: 'gateway/config/ is bundled into the admin app: it imports only its own files (and zod).' },
  { regex: String.raw`^(?!zod$|\.|node:)`, message: 'gateway/config/ is bundled into the admin app: the only package it may use is zod.' },
];
/** gateway/wire.ts: type imports of the shared schemas only. */
const wireOnly = [
  {
    regex: String.raw`^(?!\./config/(schema|admin-schema)\.js$)`,
    message: 'gateway/wire.ts may import only (types of) ./config/schema.js and ./config/admin-schema.js.',
  },
  { regex: '.', allowTypeImports: true, message: 'gateway/wire.ts holds types only: use `import type`.' },
];
/** The admin app: from gateway/ only the shared schemas and the wire types (as types). */
const rendererOnly = [
  {
    regex: String.raw`^(\.\./)+gateway/(?!(config/schema|config/admin-schema|wire)(\.js|\.ts)?$)`,
    message: 'The admin app may import from gateway/ only config/schema, config/admin-schema and wire (the rest is server code).',
  },
  { regex: String.raw`^(\.\./)+gateway/wire(\.js|\.ts)?$`, allowTypeImports: true, message: 'gateway/wire holds types only: use `import type`.' },
  { regex: String.raw`^(\.\./)+(main|test|bench)/`, message: 'The admin app must not import from main/, test/ or bench/.' },
  { regex: '^node:', message: 'The admin app runs in a browser: no Node modules.' },
];
/** The Electron shell runs the gateway as a child process and talks to it over IPC and HTTP,
 * validating what it receives (main/lib/supervisor.ts): it needs nothing of the gateway's code.
 * The wire types are allowed, as types, for reading the admin API. */
const mainOnly = [
  {
    regex: String.raw`^(\.\./)+gateway/(?!wire(\.js)?$)`,
    message: 'main/ must not import gateway code: it runs the gateway as a child process (gateway/wire.ts types are allowed).',
  },
  { regex: String.raw`^(\.\./)+gateway/wire(\.js)?$`, allowTypeImports: true, message: 'gateway/wire holds types only: use `import type`.' },
  { regex: String.raw`^(\.\./)+(renderer|test|bench)/`, message: 'main/ must not import from renderer/, test/ or bench/.' },
];
const restrict = (/** @type {object[]} */ ...patterns) => ['error', { patterns }];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'renderer/dist/**',
      'node_modules/**',
      'test-artifacts/**',
      'bench/out/**',
      '.airlock-dev/**',
    ],
  },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },

  // ---- every TypeScript file of a tsconfig: the type-checked rules ----
  {
    files: ['gateway/**/*.ts', 'main/**/*.ts', 'main/**/*.cts', 'renderer/src/**/*.ts', 'renderer/src/**/*.tsx', 'test/**/*.ts', 'bench/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        // The three programs, explicitly: one type-check of each (projectService was ~1.5x slower here).
        project: ['./tsconfig.json', './main/tsconfig.json', './renderer/tsconfig.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // A promise nobody awaits loses its error (an unhandled rejection ends the gateway).
      // node:test's test()/describe() are awaited by the runner.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { args: 'after-used', argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // `any` switches the type checker off; untrusted JSON is `unknown` and narrowed.
      '@typescript-eslint/no-explicit-any': 'error',
      // An async function without await is legitimate (Fastify handlers, interfaces that return
      // promises, a throw that must become a rejection); the rule only flags style.
      '@typescript-eslint/require-await': 'off',
      // `return promise` inside try/catch skips the catch; elsewhere return it as it is.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },

  // ---- boundaries, per part (later entries win for the files they match) ----
  { files: ['gateway/**/*.ts'], rules: { '@typescript-eslint/no-restricted-imports': restrict(gatewayOutside) } },
  {
    files: ['gateway/engine/**/*.ts', 'gateway/store/**/*.ts', 'gateway/version.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': restrict(gatewayOutside, ...belowServer) },
  },
  { files: ['gateway/config/**/*.ts'], rules: { '@typescript-eslint/no-restricted-imports': restrict(gatewayOutside, ...belowServer, ...configOnly) } },
  {
    files: ['gateway/wire.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': restrict(...wireOnly),
      'no-restricted-syntax': [
        'error',
        {
          selector:
            "Program > :not(ImportDeclaration[importKind='type'], ExportNamedDeclaration[exportKind='type'], TSInterfaceDeclaration, TSTypeAliasDeclaration)",
          message: 'gateway/wire.ts holds types only (export type / export interface): the admin app imports it.',
        },
      ],
    },
  },
  { files: ['renderer/src/**/*.ts', 'renderer/src/**/*.tsx'], rules: { '@typescript-eslint/no-restricted-imports': restrict(...rendererOnly) } },
  { files: ['main/**/*.ts', 'main/**/*.cts'], rules: { '@typescript-eslint/no-restricted-imports': restrict(...mainOnly) } },

  // ---- the admin app: React's rules of hooks ----
  {
    files: ['renderer/src/**/*.ts', 'renderer/src/**/*.tsx'],
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'error',
      // React ignores what an event handler returns; every async handler here catches its own
      // errors and shows them. Promises passed anywhere else are still checked.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { attributes: false } }],
    },
  },

  // ---- tests: they read untyped JSON answers and assert on them ----
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },

  // ---- files outside the tsconfigs: syntax-level rules only ----
  {
    files: ['renderer/vite.config.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
  },
  {
    files: ['eslint.config.js', 'bin/**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { globals: { process: 'readonly', URL: 'readonly', setTimeout: 'readonly', console: 'readonly' } },
  },
);
