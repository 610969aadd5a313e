// The hand-written Node host of docs/embedding.md ("Node (jco)"): run by
// crates/cli/tests/all/polyglot.rs next to jco, in a directory holding sink.wasm.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { transpile } from '@bytecodealliance/jco';

const { files } = await transpile(fs.readFileSync('sink.wasm'), {
  name: 'sink', instantiation: 'sync', wasiShim: false, nodejsCompat: false, noTypescript: true,
});
const bindings = await import(`data:text/javascript;base64,${Buffer.from(files['sink.js']).toString('base64')}`);
const fd = fs.openSync('audit.jsonl', 'a+');                 // O_RDWR | O_APPEND | O_CREAT
const fail = (what, e) => { throw { payload: `${what}: ${e.message}` }; };  // a `result` error
const size = () => fs.fstatSync(fd, { bigint: true }).size;
const readAt = (offset, len) => {                            // up to len bytes, fewer at the end
  const end = size();
  const n = offset >= end ? 0 : Number(end - offset < BigInt(len) ? end - offset : BigInt(len));
  const buf = Buffer.alloc(n);
  for (let got = 0, k = 1; got < n && k > 0; got += k) k = fs.readSync(fd, buf, got, n - got, offset + BigInt(got));
  return buf;
};
const logFile = {
  append(data) {
    try { for (let w = 0; w < data.length; ) w += fs.writeSync(fd, data, w); return size() - BigInt(data.length); }
    catch (e) { fail('append', e); }
  },
  read(offset, len) { try { return readAt(offset, len); } catch (e) { fail('read', e); } },
  readTail(len) {
    try { const end = size(); const start = end > BigInt(len) ? end - BigInt(len) : 0n; return [start, readAt(start, len)]; }
    catch (e) { fail('read', e); }
  },
  size() { try { return size(); } catch (e) { fail('stat', e); } },
  sync() { try { fs.fdatasyncSync(fd); } catch (e) { fail('sync', e); } },
};
const digest = {                                            // WIT 0.2: SHA-256 by the host, at most 1 MiB a call
  sha256(data) {
    if (data.length > 1048576) throw { payload: `sha256: ${data.length} bytes is more than the limit of 1048576 bytes (1 MiB)` };
    return crypto.createHash('sha256').update(data).digest();
  },
};
const root = bindings.instantiate((path) => new WebAssembly.Module(files[path]), {
  'chainsink:audit/log-file': logFile,                      // jco 1.35 looks imports up unversioned
  'chainsink:audit/diagnostics': { log: (level, msg) => console.error(`sink ${level}: ${msg}`) },
  'chainsink:audit/digest': digest,
  'chainsink:audit/types': {},
});
const sink = root['chainsink:audit/sink@0.2.0'];
const info = sink.describe();                                // once, before open
if (info.format.tag !== 'telemachy-json') throw new Error(`${info.name} writes ${info.format.val}, not telemachy-json`);
sink.open({ hashChain: true, durability: 'always' });
const receipt = sink.emit({
  timestamp: '2026-06-04T15:30:45.123456+00:00', eventType: 'deploy.started', workflowId: 'wf-1',
  actor: { hostId: 'build-1', user: 'alice' }, payload: '{"service": "api"}',
});                                                          // { seq: 1n, hash: '…' }
sink.close();
