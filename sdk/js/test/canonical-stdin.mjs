// Reads JSON texts, one a line, from stdin; writes `canonical(parseJson(line))`
// for each, or `ERROR: <message>` when it is refused. Used by the differential
// test against python3 (crates/cli/tests/all/polyglot_sinks.rs).
import { readFileSync } from 'node:fs';
import { canonical, parseJson } from '../chainsink-sdk.js';

const input = readFileSync(0, 'utf8');
const out = [];
for (const line of input.split('\n')) {
  if (!line) continue;
  try {
    out.push(canonical(parseJson(line)));
  } catch (e) {
    out.push(`ERROR: ${e.message}`);
  }
}
process.stdout.write(out.map((l) => l + '\n').join(''));
