"""{{name}}: a chainsink audit sink written in Python.

Build it into a component (see README.md):

    componentize-py -d wit -w audit-sink componentize app -o {{name}}.wasm

`chainsink_sdk.py` (next to this file) does the contract: canonical records,
the hash chain, resume, durability. Override what is yours below.
"""

import chainsink_sdk


class AppSink(chainsink_sdk.ChainSink):
    """Records every event as chainsink's default sink does."""

    name = "{{name}}"
    version = "0.1.0"

    def payload(self, event, payload):
        # Change what is recorded here: e.g. drop a field before it is chained.
        # payload.pop("program", None)
        return payload


# componentize-py exports these two classes as the `sink` and `verifier` interfaces.
Sink, Verifier = chainsink_sdk.export(AppSink())
