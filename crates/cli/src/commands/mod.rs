//! One module per `chainsink` subcommand: its flags and what it does.

pub(crate) mod checkpoint;
pub(crate) mod completions;
pub(crate) mod emit;
pub(crate) mod export_sink;
pub(crate) mod inspect;
pub(crate) mod keygen;
pub(crate) mod new_sink;
pub(crate) mod prove;
pub(crate) mod run;
pub(crate) mod show;
pub(crate) mod stats;
pub(crate) mod tail;
pub(crate) mod test_sink;
pub(crate) mod validate;
pub(crate) mod verify;
pub(crate) mod verify_consistency;
pub(crate) mod verify_proof;
pub(crate) mod witness;
