// Reads JSON texts, one a line, from stdin; writes `canonical(parseJson(line))`
// for each, or `ERROR: <message>` when it is refused (`--exact`: parseExact). Used by the differential
// test against python3 (crates/cli/tests/all/polyglot_sinks.rs).
import { readFileSync } from 'node:fs';
import { canonical, parseExact, parseJson } from '../chainsink-sdk.js';

// `--exact`: the SDK's own parser only (parseJson tries the native JSON.parse first).
const parse = process.argv[2] === '--exact' ? parseExact : parseJson;

const input = readFileSync(0, 'utf8');
const out = [];
for (const line of input.split('\n')) {
  if (!line) continue;
  try {
    out.push(canonical(parse(line)));
  } catch (e) {
    out.push(`ERROR: ${e.message}`);
  }
}
process.stdout.write(out.map((l) => l + '\n').join(''));
