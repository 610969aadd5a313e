// {{name}}: a chainsink audit sink written in JavaScript.
//
// Build it into a component (see README.md): npm ci && npm run build
//
// chainsink-sdk.js (next to this file) does the contract: canonical records,
// the hash chain, resume, durability. Override what is yours below.
import * as logFile from 'chainsink:audit/log-file@0.2.0';
import * as digest from 'chainsink:audit/digest@0.2.0';
import * as diagnostics from 'chainsink:audit/diagnostics@0.2.0';
import { ChainSink, exportSink } from './chainsink-sdk.js';

class AppSink extends ChainSink {
  name = '{{name}}';
  version = '0.1.0';

  payload(event, payload) {
    // Change what is recorded here: e.g. drop a field before it is chained.
    // delete payload.program;
    return payload;
  }
}

// componentize-js exports these two objects as the `sink` and `verifier` interfaces.
export const { sink, verifier } = exportSink(new AppSink(), { logFile, digest, diagnostics });
