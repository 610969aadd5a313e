// The API example of README.md ("API"): run by crates/cli/tests/all/polyglot.rs
// next to host.js, in a directory holding sink.wasm.
import fs from 'node:fs';
import { loadComponent, LogFile, Sink } from './host.js';
const component = await loadComponent(fs.readFileSync('sink.wasm'));  // checks the world; component.version: '0.2.0'
const sink = new Sink(component, new LogFile('audit.jsonl'), { durability: 'always' });
const receipt = sink.emit({
  timestamp: '2026-06-04T15:30:45.123456+00:00', eventType: 'deploy.started', workflowId: 'wf-1',
  actor: { hostId: 'build-1', user: 'alice' }, payload: '{"service": "api"}',
});
sink.close();
