//! `Secret` lives in kite-wire (the sandbox carries secrets too); this path stays for the
//! rest of the tool.

pub use kite_wire::Secret;
