"""Letters: bytes -> text (extract, isolated native code) -> a `Letter` (pure parse) and the record types."""
