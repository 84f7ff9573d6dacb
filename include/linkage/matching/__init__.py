"""The linking rules of SPEC §3 as pure functions: documents in, decisions out."""
