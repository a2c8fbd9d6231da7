// Lint rules for the Worker, its tests and the dev runner: typescript-eslint's type-aware
// recommended set, so promises are awaited or handed to ctx.waitUntil, never dropped.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".wrangler/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        project: ["./tsconfig.json", "./tsconfig.scripts.json"],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      eqeqeq: "error",
    },
  },
  { files: ["eslint.config.js", "vitest.config.ts"], ...tseslint.configs.disableTypeChecked },
);
