"""The linking rules of CONTRACT §3 as pure functions: documents in, decisions out."""
