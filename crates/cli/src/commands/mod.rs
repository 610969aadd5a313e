//! One module per `chainsink` subcommand: its flags and what it does.

pub(crate) mod completions;
pub(crate) mod emit;
pub(crate) mod export_sink;
pub(crate) mod inspect;
pub(crate) mod run;
pub(crate) mod show;
pub(crate) mod stats;
pub(crate) mod tail;
pub(crate) mod validate;
pub(crate) mod verify;
