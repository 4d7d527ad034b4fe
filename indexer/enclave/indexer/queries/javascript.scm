; inherits: ecmascript
; JavaScript: definitions and imports for the Enclave chunker (captures: see indexer/langspec.py).

(class_declaration name: (identifier) @name) @definition.class
